//! A follower cut off from the other two voters and then let back, under a steady stream of
//! writes: it must not raise its term while cut off (it cannot reach a majority, so its
//! pre-votes fail), and when the cut heals the healthy majority's leader stays in office and
//! no write fails.
//!
//! The cut is made on the Raft transport, where terms travel: each voter binds its Raft port on
//! a loopback address of its own (127.0.0.11, .12, …), dials from it, and publishes a relay in
//! front of the port. The relay drops everything from or to the cut-off voter's address — it
//! stops forwarding and holds the connections, as a network that loses packets would, and
//! closes them only when the cut heals. Gossip still sees everyone, so this is the harder case:
//! a voter that believes the others alive and still cannot reach them.

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

mod common;
mod raft_voters;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use vigil_cluster::raft::{Command, ServiceInstance};
use vigil_gossip::crypto::Key;

use common::PATIENCE;
use raft_voters::{one_leader, Addresses, ELECTION_TIMEOUT};

const IDS: [&str; 3] = ["p1", "p2", "p3"];
/// How long the follower stays cut off: many election timeouts.
const CUT_FOR: Duration = Duration::from_secs(4);

/// The Raft address voter `i` binds and dials from.
fn voter_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 11 + i as u8))
}

/// Which address is cut off, if any; relays watch it.
type Cut = watch::Sender<Option<IpAddr>>;

/// Whether a connection from `from` to the voter at `to` is cut by `cut`.
fn severed(cut: &Option<IpAddr>, from: IpAddr, to: IpAddr) -> bool {
    cut.is_some_and(|ip| ip == from || ip == to)
}

/// Holds a severed connection, forwarding nothing, until the cut heals; then drops it (bytes
/// were lost, so it cannot go on).
async fn hold(mut cut: watch::Receiver<Option<IpAddr>>) {
    let _ = cut.wait_for(|cut| cut.is_none()).await;
}

/// Relays one connection from `from` to the voter at `upstream`, while it is not cut.
async fn relay(
    mut client: TcpStream,
    from: IpAddr,
    upstream: SocketAddr,
    mut cut: watch::Receiver<Option<IpAddr>>,
) {
    let to = upstream.ip();
    if severed(&cut.borrow(), from, to) {
        return hold(cut).await;
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.split();
    let (mut server_read, mut server_write) = server.split();
    let mut up = vec![0u8; 64 << 10];
    let mut down = vec![0u8; 64 << 10];
    loop {
        tokio::select! {
            read = client_read.read(&mut up) => {
                let Ok(n @ 1..) = read else { return };
                if severed(&cut.borrow(), from, to) {
                    break;
                }
                if server_write.write_all(&up[..n]).await.is_err() {
                    return;
                }
            }
            read = server_read.read(&mut down) => {
                let Ok(n @ 1..) = read else { return };
                if severed(&cut.borrow(), from, to) {
                    break;
                }
                if client_write.write_all(&down[..n]).await.is_err() {
                    return;
                }
            }
            changed = cut.changed() => {
                if changed.is_err() || severed(&cut.borrow(), from, to) {
                    break;
                }
            }
        }
    }
    hold(cut).await;
}

/// Relays every connection to `listener` on to the voter at `upstream`, as `cut` allows.
async fn relay_all(listener: std::net::TcpListener, upstream: SocketAddr, cut: Arc<Cut>) {
    listener.set_nonblocking(true).unwrap();
    let listener = TcpListener::from_std(listener).unwrap();
    while let Ok((client, peer)) = listener.accept().await {
        tokio::spawn(relay(client, peer.ip(), upstream, cut.subscribe()));
    }
}

fn instance(n: usize) -> ServiceInstance {
    ServiceInstance {
        name: "orders".into(),
        id: format!("o{n}"),
        address: "10.0.0.1".into(),
        port: 80,
        tags: vec![],
        node: "p1".into(),
        ephemeral: false,
        checks: Default::default(),
        deregister_critical_after_ms: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_follower_keeps_its_term_and_the_leader_keeps_office() {
    let dir = raft_voters::scratch("raft-partition");
    let cut: Arc<Cut> = Arc::new(watch::channel(None).0);
    // Each voter publishes a relay in front of its Raft port. The relay's port is bound here,
    // so that its address can be published, and served once the voters are up (a dial before
    // that waits in the listen queue).
    let mut relays = Vec::new();
    let mut publish = |_: usize, bound: SocketAddr| {
        let relay = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = relay.local_addr().unwrap();
        relays.push((relay, bound));
        addr
    };
    let voters = raft_voters::start_at(
        &dir,
        &IDS,
        Key::from_bytes([3; 32]),
        Addresses {
            bind: &voter_ip,
            publish: &mut publish,
        },
    )
    .await;
    for (listener, upstream) in relays {
        tokio::spawn(relay_all(listener, upstream, cut.clone()));
    }
    let (leader, term) = one_leader(&voters).await;
    let lone = (leader + 1) % 3;
    let changes = voters[leader].leadership.leader_changes();

    // Writes to the leader, one after another, from before the cut until after it heals.
    let writing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let writer = {
        let leadership = voters[leader].leadership.clone();
        let writing = writing.clone();
        tokio::spawn(async move {
            let (mut written, mut failed) = (0usize, Vec::new());
            while writing.load(std::sync::atomic::Ordering::Relaxed) {
                match leadership.write(Command::Register(instance(written))).await {
                    Ok(_) => written += 1,
                    Err(e) => failed.push(e.to_string()),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (written, failed)
        })
    };

    // Cut the follower off, and watch its term while it stays cut off.
    cut.send_replace(Some(voter_ip(lone)));
    let cut_at = Instant::now();
    let mut lone_terms = term..=term;
    while cut_at.elapsed() < CUT_FOR {
        let seen = voters[lone].leadership.status().term;
        lone_terms = *lone_terms.start().min(&seen)..=*lone_terms.end().max(&seen);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let lost_leader = voters[lone].leadership.status();
    assert!(
        lost_leader.stale_ms.unwrap_or(u64::MAX) > ELECTION_TIMEOUT.as_millis() as u64,
        "the cut held: {lost_leader:?}"
    );

    // Heal, and wait until the follower is back under the same leader.
    cut.send_replace(None);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let status = voters[lone].leadership.status();
        if status.leader_id.as_deref() == Some(IDS[leader]) && status.has_quorum {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the follower rejoins: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Writes go on a little past the heal, where the old leader used to be forced out.
    let healed_at = Instant::now();
    while healed_at.elapsed() < ELECTION_TIMEOUT * 4 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    writing.store(false, std::sync::atomic::Ordering::Relaxed);
    let (written, failed) = writer.await.unwrap();
    let after = one_leader(&voters).await;
    let changed = voters[leader].leadership.leader_changes() - changes;
    println!(
        "FIGURE raft partition: cut-off follower's term {term} → {} over {CUT_FOR:?}; \
         leader before {} term {term}, after {} term {}, leader changes seen by it {changed}; \
         writes {written}, failed {}",
        lone_terms.end(),
        IDS[leader],
        IDS[after.0],
        after.1,
        failed.len()
    );
    assert_eq!(
        *lone_terms.end(),
        term,
        "the cut-off follower raised its term"
    );
    assert_eq!(after, (leader, term), "the leader kept office on heal");
    assert_eq!(changed, 0, "the leader saw no leader change");
    assert!(
        failed.is_empty(),
        "{} writes failed, the first: {:?}",
        failed.len(),
        failed.iter().take(3).collect::<Vec<_>>()
    );
    assert!(written > 20, "only {written} writes");
    raft_voters::stop(voters, &dir).await;
}
