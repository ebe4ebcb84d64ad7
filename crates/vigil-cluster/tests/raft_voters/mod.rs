//! Helpers for the Raft tests: in-process voters on real sockets of 127.0.0.0/8, and bounded
//! waits on who leads.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;
use vigil_cluster::raft::{Leadership, RaftConfig, RaftListener, RAFT_TAG};
use vigil_cluster::Cluster;
use vigil_gossip::crypto::{Key, Keyring};
use vigil_gossip::Role;

use crate::common::{self, converge, PATIENCE};

/// The election timeout the tests run Raft with.
pub const ELECTION_TIMEOUT: Duration = Duration::from_millis(500);

/// One in-process voter.
pub struct Voter {
    /// Its node id.
    pub id: String,
    /// Its gossip node.
    pub cluster: Cluster,
    /// Its Raft group.
    pub leadership: Leadership,
    /// Where its Raft port is bound.
    pub raft_addr: SocketAddr,
}

/// Where each voter's Raft port listens, and the address it publishes for it.
pub struct Addresses<'a> {
    /// The IP the voter with this index binds its Raft port on.
    pub bind: &'a dyn Fn(usize) -> IpAddr,
    /// The address published for the voter with this index, given the bound one (a proxy in
    /// front of it, say).
    pub publish: &'a mut dyn FnMut(usize, SocketAddr) -> SocketAddr,
}

/// Every voter on 127.0.0.1, publishing the address it binds.
pub async fn start(dir: &Path, ids: &[&str], key: Key) -> Vec<Voter> {
    start_at(
        dir,
        ids,
        key,
        Addresses {
            bind: &|_| IpAddr::V4(Ipv4Addr::LOCALHOST),
            publish: &mut |_, bound| bound,
        },
    )
    .await
}

/// Starts voters `ids`, sharing `key`, with their Raft ports at `addresses`, and waits until
/// gossip has every one alive everywhere.
pub async fn start_at(dir: &Path, ids: &[&str], key: Key, addresses: Addresses<'_>) -> Vec<Voter> {
    let mut out: Vec<Voter> = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let bind = SocketAddr::new((addresses.bind)(i), 0);
        let seeds: Vec<SocketAddr> = out.iter().map(|v| v.cluster.local_addr()).collect();
        let voter = start_one(dir, ids, id, &key, bind, &seeds, &mut |bound| {
            (addresses.publish)(i, bound)
        })
        .await;
        out.push(voter);
    }
    let clusters: Vec<&Cluster> = out.iter().map(|v| &v.cluster).collect();
    converge(&clusters, ids).await;
    out
}

/// Starts (or restarts, over what `dir` holds of it) the voter `id` of `ids` on 127.0.0.1,
/// joining through `others`, and waits until gossip has every voter alive everywhere.
pub async fn restart(dir: &Path, ids: &[&str], id: &str, key: Key, others: &[&Voter]) -> Voter {
    let seeds: Vec<SocketAddr> = others.iter().map(|v| v.cluster.local_addr()).collect();
    let bind = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
    let voter = start_one(dir, ids, id, &key, bind, &seeds, &mut |bound| bound).await;
    let mut clusters: Vec<&Cluster> = others.iter().map(|v| &v.cluster).collect();
    clusters.push(&voter.cluster);
    converge(&clusters, ids).await;
    voter
}

async fn start_one(
    dir: &Path,
    ids: &[&str],
    id: &str,
    key: &Key,
    bind: SocketAddr,
    seeds: &[SocketAddr],
    publish: &mut dyn FnMut(SocketAddr) -> SocketAddr,
) -> Voter {
    let listener = RaftListener::bind(bind)
        .await
        .unwrap_or_else(|e| panic!("binding {id}'s Raft port: {e}"));
    let raft_addr = listener.local_addr();
    let published = publish(raft_addr);
    let mut config = common::config(id, seeds);
    config.role = Role::Voter;
    config.voters = ids.iter().map(|s| s.to_string()).collect();
    config.keyring = Some(Keyring::new(key.clone()));
    config
        .tags
        .insert(RAFT_TAG.to_owned(), published.to_string());
    let cluster = common::start(config).await;
    let leadership = Leadership::start(
        RaftConfig {
            data_dir: dir.join(id),
            voters: ids.iter().map(|s| s.to_string()).collect(),
            election_timeout: ELECTION_TIMEOUT,
        },
        listener,
        cluster.clone(),
    )
    .await
    .unwrap_or_else(|e| panic!("starting {id}'s Raft: {e}"));
    Voter {
        id: id.to_string(),
        cluster,
        leadership,
        raft_addr,
    }
}

/// Waits until exactly one voter leads and every voter names it with quorum; returns its index
/// and term.
pub async fn one_leader(voters: &[Voter]) -> (usize, u64) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let statuses: Vec<_> = voters.iter().map(|v| v.leadership.status()).collect();
        let leading: Vec<usize> = (0..voters.len())
            .filter(|i| statuses[*i].is_leader)
            .collect();
        if leading.len() == 1 {
            let name = voters[leading[0]].id.as_str();
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

/// Stops every voter and removes `dir`.
pub async fn stop(voters: Vec<Voter>, dir: &Path) {
    for voter in &voters {
        stop_one(voter).await;
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Stops one voter's Raft and gossip, as [`stop`] does.
pub async fn stop_one(voter: &Voter) {
    voter.leadership.shutdown().await;
    voter.cluster.shutdown_now().await;
}

/// A scratch directory for one test's stores.
pub fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("vigil-cluster-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}
