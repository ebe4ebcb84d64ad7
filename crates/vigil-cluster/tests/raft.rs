//! Raft among three in-process voters on real sockets: one leader, replicated registry writes,
//! and Raft frames that only a holder of the cluster key can get through.

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use vigil_cluster::raft::{
    Command, Leadership, RaftConfig, RaftListener, ServiceInstance, RAFT_TAG,
};
use vigil_cluster::Cluster;
use vigil_gossip::crypto::{seal, Key, Keyring};
use vigil_gossip::Role;

use common::{converge, PATIENCE};

const IDS: [&str; 3] = ["r1", "r2", "r3"];

struct Voter {
    cluster: Cluster,
    leadership: Leadership,
    raft_addr: SocketAddr,
}

async fn voters(dir: &std::path::Path, key: Key) -> Vec<Voter> {
    let mut out: Vec<Voter> = Vec::new();
    for id in IDS {
        let listener = RaftListener::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let raft_addr = listener.local_addr();
        let seeds: Vec<SocketAddr> = out.iter().map(|v| v.cluster.local_addr()).collect();
        let mut config = common::config(id, &seeds);
        config.role = Role::Voter;
        config.voters = IDS.iter().map(|s| s.to_string()).collect();
        config.keyring = Some(Keyring::new(key.clone()));
        config
            .tags
            .insert(RAFT_TAG.to_owned(), raft_addr.to_string());
        let cluster = common::start(config).await;
        let leadership = Leadership::start(
            RaftConfig {
                data_dir: dir.join(id),
                voters: config_voters(),
                election_timeout: Duration::from_millis(500),
            },
            listener,
            cluster.clone(),
        )
        .await
        .unwrap();
        out.push(Voter {
            cluster,
            leadership,
            raft_addr,
        });
    }
    out
}

fn config_voters() -> Vec<String> {
    IDS.iter().map(|s| s.to_string()).collect()
}

/// Waits until exactly one voter leads and every voter names it; returns its index and term.
async fn one_leader(voters: &[Voter]) -> (usize, u64) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let statuses: Vec<_> = voters.iter().map(|v| v.leadership.status()).collect();
        let leading: Vec<usize> = (0..voters.len())
            .filter(|i| statuses[*i].is_leader)
            .collect();
        if leading.len() == 1 {
            let name = IDS[leading[0]];
            if statuses
                .iter()
                .all(|s| s.leader_id.as_deref() == Some(name) && s.has_quorum)
            {
                return (leading[0], statuses[leading[0]].term);
            }
        }
        assert!(Instant::now() < deadline, "one leader: {statuses:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voters_elect_one_leader_and_refuse_frames_without_the_key() {
    let dir = std::env::temp_dir().join(format!("vigil-cluster-raft-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let voters = voters(&dir, Key::from_bytes([7; 32])).await;
    let clusters: Vec<&Cluster> = voters.iter().map(|v| &v.cluster).collect();
    converge(&clusters, &IDS).await;
    let (leader, term) = one_leader(&voters).await;

    let instance = ServiceInstance {
        name: "api".into(),
        id: "api-1".into(),
        address: "10.0.0.1".into(),
        port: 80,
        tags: vec![],
        node: "r1".into(),
        ephemeral: false,
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

    for voter in &voters {
        voter.leadership.shutdown().await;
        voter.cluster.shutdown_now().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
