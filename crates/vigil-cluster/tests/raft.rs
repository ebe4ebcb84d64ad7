//! Raft among in-process voters on real sockets: one leader, replicated registry writes, Raft
//! frames that only a holder of the cluster key can get through, a lone voter leading itself,
//! and a new leader elected when the old one stops.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voters_elect_one_leader_and_refuse_frames_without_the_key() {
    let dir = raft_voters::scratch("raft");
    let voters = raft_voters::start(&dir, &IDS, Key::from_bytes([7; 32])).await;
    let (leader, term) = one_leader(&voters).await;

    let instance = ServiceInstance {
        name: "api".into(),
        id: "api-1".into(),
        address: "10.0.0.1".into(),
        port: 80,
        tags: vec![],
        node: "r1".into(),
        ephemeral: false,
        checks: Default::default(),
        deregister_critical_after_ms: None,
    };
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
        .write(Command::Register(ServiceInstance {
            name: "api".into(),
            id: "api-1".into(),
            address: "10.0.0.1".into(),
            port: 80,
            tags: vec![],
            node: "solo".into(),
            ephemeral: false,
            checks: Default::default(),
            deregister_critical_after_ms: None,
        }))
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
    gone.leadership.shutdown().await;
    gone.cluster.shutdown_now().await;
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
        .write(Command::Register(ServiceInstance {
            name: "api".into(),
            id: "api-2".into(),
            address: "10.0.0.2".into(),
            port: 80,
            tags: vec![],
            node: voters[successor].id.clone(),
            ephemeral: false,
            checks: Default::default(),
            deregister_critical_after_ms: None,
        }))
        .await
        .unwrap();
    raft_voters::stop(voters, &dir).await;
}
