//! Raft among in-process voters on real sockets: one leader, replicated registry writes, Raft
//! frames that only a holder of the cluster key can get through, a lone voter leading itself,
//! a new leader elected when the old one stops, and a voter that was away catching up from a
//! snapshot.

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

mod common;
mod raft_voters;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vigil_cluster::raft::{Command, ServiceInstance};
use vigil_gossip::crypto::{seal, Key, Keyring};

use common::PATIENCE;
use raft_voters::one_leader;

const IDS: [&str; 3] = ["r1", "r2", "r3"];

/// An instance of `api` at port 80.
fn api_instance(id: &str, address: &str, node: &str) -> ServiceInstance {
    ServiceInstance {
        name: "api".into(),
        id: id.into(),
        address: address.into(),
        port: 80,
        tags: vec![],
        node: node.into(),
        ephemeral: false,
        checks: Default::default(),
        deregister_critical_after_ms: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voters_elect_one_leader_and_refuse_frames_without_the_key() {
    let dir = raft_voters::scratch("raft");
    let voters = raft_voters::start(&dir, &IDS, Key::from_bytes([7; 32])).await;
    let (leader, term) = one_leader(&voters).await;

    let instance = api_instance("api-1", "10.0.0.1", "r1");
    let follower = (leader + 1) % 3;
    assert!(
        voters[follower]
            .leadership
            .write(Command::Register(instance.clone()))
            .await
            .is_err(),
        "only the leader writes"
    );
    let applied = voters[leader]
        .leadership
        .write(Command::Register(instance.clone()))
        .await
        .unwrap();
    assert!(applied.changed);
    let read = voters[leader].leadership.read_consistent().await.unwrap();
    assert_eq!(read.registry.services["api"]["api-1"], instance);

    // A vote request for a far higher term, sealed with another key, and one not sealed at all:
    // after its hello, the voter drops the connection and its term does not move.
    let forged = br#"{"Vote":{"vote":{"leader_id":{"term":1000,"node_id":1},"committed":false},"last_log_id":null}}"#;
    let strangers = [
        seal(
            Some(&Keyring::new(Key::from_bytes([9; 32]))),
            forged,
            &mut rand::rng(),
        ),
        seal(None, forged, &mut rand::rng()),
    ];
    for frame in strangers {
        let mut stream = TcpStream::connect(voters[follower].raft_addr)
            .await
            .unwrap();
        let mut hello_len = [0u8; 4];
        stream.read_exact(&mut hello_len).await.unwrap();
        let mut hello = vec![0u8; u32::from_be_bytes(hello_len) as usize];
        stream.read_exact(&mut hello).await.unwrap();
        stream
            .write_all(&(frame.len() as u32).to_be_bytes())
            .await
            .unwrap();
        stream.write_all(&frame).await.unwrap();
        let mut answer = Vec::new();
        let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "the connection closes without an answer"
        );
    }
    let (still, same_term) = one_leader(&voters).await;
    assert_eq!(
        (still, same_term),
        (leader, term),
        "forged frames changed nothing"
    );

    raft_voters::stop(voters, &dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_voter_is_its_own_majority_and_leads() {
    let dir = raft_voters::scratch("raft-lone");
    let voters = raft_voters::start(&dir, &["solo"], Key::from_bytes([8; 32])).await;
    let (leader, _) = one_leader(&voters).await;
    let applied = voters[leader]
        .leadership
        .write(Command::Register(api_instance("api-1", "10.0.0.1", "solo")))
        .await
        .unwrap();
    assert!(applied.changed);
    raft_voters::stop(voters, &dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_leader_stops_the_others_elect_one_of_themselves() {
    let dir = raft_voters::scratch("raft-failover");
    let mut voters = raft_voters::start(&dir, &IDS, Key::from_bytes([6; 32])).await;
    let (leader, term) = one_leader(&voters).await;
    let gone = voters.remove(leader);
    raft_voters::stop_one(&gone).await;
    let stopped = tokio::time::Instant::now();
    let (successor, new_term) = one_leader(&voters).await;
    println!(
        "FIGURE raft failover: {} elected in term {new_term} (was {term}) {:?} after the leader stopped",
        voters[successor].id,
        stopped.elapsed()
    );
    assert!(new_term > term);
    voters[successor]
        .leadership
        .write(Command::Register(api_instance(
            "api-2",
            "10.0.0.2",
            &voters[successor].id,
        )))
        .await
        .unwrap();
    raft_voters::stop(voters, &dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voter_whose_disk_was_replaced_catches_up_from_a_snapshot() {
    let dir = raft_voters::scratch("raft-snapshot");
    let key = Key::from_bytes([5; 32]);
    let mut voters = raft_voters::start(&dir, &IDS, key.clone()).await;
    let (leader, _) = one_leader(&voters).await;
    let away = voters.remove((leader + 1) % 3);
    raft_voters::stop_one(&away).await;
    let away_id = away.id.clone();
    let leader = voters
        .iter()
        .position(|v| v.leadership.status().is_leader)
        .unwrap();

    // Past the snapshot policy (one per thousand entries), so the leader compacts its log and
    // can bring the voter back only with a snapshot.
    const WRITES: usize = 1_300;
    for n in 0..WRITES {
        voters[leader]
            .leadership
            .write(Command::Register(api_instance(
                &format!("api-{n}"),
                "10.0.0.1",
                "r1",
            )))
            .await
            .unwrap();
    }

    // Back with an empty disk, under the same name.
    let replaced = dir.join("replaced");
    let back = raft_voters::restart(
        &replaced,
        &IDS,
        &away_id,
        key,
        &voters.iter().collect::<Vec<_>>(),
    )
    .await;
    let mut registry = back.leadership.watch_registry();
    // The watch's read guard is dropped at once: held, it would keep the state machine from
    // publishing what it applies.
    let caught_up = tokio::time::timeout(
        common::PATIENCE,
        registry.wait_for(|p| p.registry.services.get("api").map_or(0, |api| api.len()) == WRITES),
    )
    .await
    .is_ok();
    let published = back.leadership.registry();
    assert!(
        caught_up,
        "the voter that was away has every instance: it has {:?} at index {:?}",
        published.registry.services.get("api").map(|api| api.len()),
        published.applied_index
    );
    let snapshots: Vec<_> = std::fs::read_dir(replaced.join(&back.id))
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("snapshot-"))
        .collect();
    assert_eq!(snapshots.len(), 1, "one stored snapshot: {snapshots:?}");
    voters.push(back);
    drop(away);
    raft_voters::stop(voters, &dir).await;
}
