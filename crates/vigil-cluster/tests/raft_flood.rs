//! Raft ports under a connection flood from strangers without the key: connections that
//! announce the largest frame and then flood, trickle or say nothing, redialled as soon as they
//! are dropped, against every voter of a three-voter cluster on real sockets. The process's
//! resident memory stays bounded, silent peers are dropped quickly, one address gets no more
//! than its share of connections, and the cluster keeps taking writes throughout.
//!
//! A test binary of its own, so that the memory it measures is this test's alone.

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

mod common;
mod raft_voters;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;
use vigil_cluster::raft::{Command, ServiceInstance, HELLO_WITHIN, MAX_FRAME, MAX_PER_ADDRESS};
use vigil_gossip::crypto::Key;

use raft_voters::one_leader;

const IDS: [&str; 3] = ["f1", "f2", "f3"];
/// Attacking connections held open at once against each voter.
const PER_VOTER: usize = 48;
/// How long the flood lasts: past the hello deadline, so every kind of attacker is dropped and
/// redials at least once.
const FLOOD: Duration = Duration::from_secs(5);
/// What the flood may add to the process's resident memory. Before the frame reader grew with
/// the bytes and waited for an authenticated client hello, each flooding connection alone
/// pinned up to 16 MiB.
const RSS_HEADROOM_KIB: u64 = 64 << 10;

/// How one attacking connection behaves once connected.
#[derive(Clone, Copy, Debug)]
enum Attack {
    /// Sends nothing at all.
    Silent,
    /// Announces the largest frame, then sends nothing.
    Announce,
    /// Announces the largest frame and sends its bytes as fast as they are taken.
    Flood,
    /// Announces a small frame and sends it a byte at a time.
    Trickle,
}

const ATTACKS: [Attack; 4] = [
    Attack::Silent,
    Attack::Announce,
    Attack::Flood,
    Attack::Trickle,
];

/// This process's resident set, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A connection to `target` from the loopback address `from`.
async fn dial_from(from: IpAddr, target: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(target).await
}

/// Runs `attack` against `target` from `from` until `until`, dialling again whenever the voter
/// drops the connection; counts the drops.
async fn attacker(
    from: IpAddr,
    target: SocketAddr,
    attack: Attack,
    until: Instant,
    junk: Arc<Vec<u8>>,
    dropped: Arc<AtomicUsize>,
) {
    while Instant::now() < until {
        let Ok(Ok(mut stream)) = tokio::time::timeout_at(until, dial_from(from, target)).await
        else {
            continue;
        };
        let run = async {
            match attack {
                Attack::Silent => {}
                Attack::Announce | Attack::Flood => {
                    stream
                        .write_all(&u32::try_from(MAX_FRAME).unwrap().to_be_bytes())
                        .await?;
                    if matches!(attack, Attack::Flood) {
                        let mut sent = 0;
                        while sent + junk.len() < MAX_FRAME {
                            stream.write_all(&junk).await?;
                            sent += junk.len();
                        }
                    }
                }
                Attack::Trickle => {
                    stream.write_all(&200u32.to_be_bytes()).await?;
                    for _ in 0..200 {
                        stream.write_all(&[0]).await?;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            // Hold the connection until the voter drops it.
            let mut sink = [0u8; 512];
            while stream.read(&mut sink).await? > 0 {}
            std::io::Result::Ok(())
        };
        if tokio::time::timeout_at(until, run).await.is_ok() {
            dropped.fetch_add(1, Ordering::Relaxed);
            // A dropped attacker comes straight back, as a real one would, but not in a hot loop
            // that would only measure how the test's own two cores share out.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn instance(n: usize) -> ServiceInstance {
    ServiceInstance {
        name: "flood".into(),
        id: format!("w{n}"),
        address: "10.0.0.1".into(),
        port: 80,
        tags: vec![],
        node: "f1".into(),
        ephemeral: false,
        checks: Default::default(),
        deregister_critical_after_ms: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_pins_no_memory_and_stops_no_write() {
    let dir = raft_voters::scratch("raft-flood");
    let voters = raft_voters::start(&dir, &IDS, Key::from_bytes([5; 32])).await;
    let (leader, term) = one_leader(&voters).await;
    let junk = Arc::new(vec![0x5a_u8; 64 << 10]);
    let before = rss_kib();

    // Strangers on four loopback addresses of their own, so that the voters' own connections
    // (from 127.0.0.1) are not held to the strangers' share; on a runtime of their own, so
    // that they stand for other processes rather than crowd the voters' tasks.
    let until = Instant::now() + FLOOD;
    let dropped = Arc::new(AtomicUsize::new(0));
    let targets: Vec<SocketAddr> = voters.iter().map(|v| v.raft_addr).collect();
    let flood = {
        let dropped = dropped.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let mut attackers = Vec::new();
                for target in targets {
                    for n in 0..PER_VOTER {
                        let from = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (n % 4) as u8));
                        attackers.push(tokio::spawn(attacker(
                            from,
                            target,
                            ATTACKS[n % ATTACKS.len()],
                            until,
                            junk.clone(),
                            dropped.clone(),
                        )));
                    }
                }
                for attacker in attackers {
                    attacker.await.unwrap();
                }
            })
        })
    };

    // Writes to the leader all along, and the resident set sampled as they go.
    let mut written = 0;
    let mut failed = Vec::new();
    let mut peak = before;
    while Instant::now() < until {
        match voters[leader]
            .leadership
            .write(Command::Register(instance(written)))
            .await
        {
            Ok(_) => written += 1,
            Err(e) => failed.push(e.to_string()),
        }
        peak = peak.max(rss_kib());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::task::spawn_blocking(move || flood.join().unwrap())
        .await
        .unwrap();
    peak = peak.max(rss_kib());
    println!(
        "FIGURE raft flood: resident set before = {before} KiB, peak during = {peak} KiB, \
         writes = {written}, failed writes = {}, attacking connections dropped = {}",
        failed.len(),
        dropped.load(Ordering::Relaxed)
    );
    assert!(
        failed.is_empty(),
        "{} writes failed under the flood, the first: {:?}",
        failed.len(),
        failed.iter().take(3).collect::<Vec<_>>()
    );
    assert!(written > 20, "only {written} writes in {FLOOD:?}");
    assert!(
        peak < before + RSS_HEADROOM_KIB,
        "the flood pinned memory: resident set {before} KiB before, {peak} KiB at its peak"
    );
    assert!(
        dropped.load(Ordering::Relaxed) >= voters.len() * PER_VOTER,
        "every attacking connection is dropped within the flood"
    );

    // One address gets its share of connections and no more: the others are closed at once,
    // before a hello.
    let target = voters[(leader + 1) % 3].raft_addr;
    let from = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 6));
    let mut streams = Vec::new();
    for _ in 0..100 {
        streams.push(dial_from(from, target).await.unwrap());
    }
    let mut greeted = 0;
    for stream in &mut streams {
        let mut header = [0u8; 4];
        let read = tokio::time::timeout(common::PATIENCE, stream.read_exact(&mut header)).await;
        if matches!(read, Ok(Ok(_))) {
            greeted += 1;
        }
    }
    assert!(
        (1..=MAX_PER_ADDRESS).contains(&greeted),
        "{greeted} of 100 connections from one address were served"
    );

    // A connection that says nothing after the hello is dropped soon after the hello deadline.
    drop(streams);
    let mut silent = dial_from(from, target).await.unwrap();
    let opened = Instant::now();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(common::PATIENCE, silent.read_to_end(&mut rest)).await;
    assert!(
        matches!(closed, Ok(Ok(_)) | Ok(Err(_))),
        "a silent connection is dropped"
    );
    assert!(
        opened.elapsed() < HELLO_WITHIN + Duration::from_secs(3),
        "a silent connection was held {:?}",
        opened.elapsed()
    );

    // The cluster is whole: same leader, same term, and a write reaches every voter.
    assert_eq!(one_leader(&voters).await, (leader, term));
    voters[leader]
        .leadership
        .write(Command::Register(instance(usize::MAX)))
        .await
        .unwrap();
    for voter in &voters {
        let deadline = Instant::now() + common::PATIENCE;
        let last = instance(usize::MAX).id;
        while !voter
            .leadership
            .registry()
            .registry
            .services
            .get("flood")
            .is_some_and(|instances| instances.contains_key(&last))
        {
            assert!(Instant::now() < deadline, "{} caught up", voter.id);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    raft_voters::stop(voters, &dir).await;
}
