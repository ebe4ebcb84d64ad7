//! Helpers for the cluster tests: fast protocol timings, nodes on 127.0.0.1 with free ports, and
//! bounded waits on views and events.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;
use vigil_cluster::{Cluster, ClusterConfig, ClusterView, MemberView, MembershipEvent};
use vigil_gossip::MemberState;

/// Every wait in these tests ends by this bound; a healthy run takes a fraction of it.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// Protocol timings about five times faster than the LAN defaults, so failures are detected
/// within a couple of seconds.
pub fn fast_protocol() -> vigil_gossip::Config {
    vigil_gossip::Config {
        heartbeat_interval: Duration::from_millis(100),
        check_interval: Duration::from_millis(50),
        probe_timeout: Duration::from_millis(200),
        suspicion_min: Duration::from_millis(300),
        suspicion_max: Duration::from_millis(1500),
        gossip_interval: Duration::from_millis(50),
        push_pull_interval: Duration::from_secs(2),
        seed_redial_interval: Duration::from_millis(300),
        reap_after: Duration::from_secs(120),
        ..vigil_gossip::Config::default()
    }
}

/// A config for node `id` on a free port of 127.0.0.1, joining through `seeds`.
pub fn config(id: &str, seeds: &[SocketAddr]) -> ClusterConfig {
    let mut config = ClusterConfig::new(id, SocketAddr::from(([127, 0, 0, 1], 0)));
    config.seeds = seeds.to_vec();
    config.protocol = fast_protocol();
    config
}

pub async fn start(config: ClusterConfig) -> Cluster {
    let id = config.node_id.clone();
    Cluster::start(config)
        .await
        .unwrap_or_else(|e| panic!("starting {id}: {e}"))
}

/// Polls `cluster.view()` until `pred` holds, panicking with `what` and the last view after
/// [`PATIENCE`].
pub async fn wait_view(
    cluster: &Cluster,
    what: &str,
    pred: impl Fn(&ClusterView) -> bool,
) -> Arc<ClusterView> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let view = cluster.view();
        if pred(&view) {
            return view;
        }
        if Instant::now() >= deadline {
            panic!(
                "{}: gave up waiting for {what}; last view: {:#?}",
                view.local_id,
                summary(&view)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for an event matching `pred` on `events`, panicking after [`PATIENCE`].
pub async fn wait_event(
    events: &mut broadcast::Receiver<MembershipEvent>,
    what: &str,
    pred: impl Fn(&MembershipEvent) -> bool,
) -> MembershipEvent {
    let outcome = tokio::time::timeout(PATIENCE, async {
        loop {
            match events.recv().await {
                Ok(event) if pred(&event) => return event,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => {
                    panic!("event stream closed waiting for {what}")
                }
            }
        }
    })
    .await;
    outcome.unwrap_or_else(|_| panic!("gave up waiting for {what}"))
}

/// Whether `view` holds exactly `ids`, all alive.
pub fn all_alive(view: &ClusterView, ids: &[&str]) -> bool {
    view.members.len() == ids.len()
        && ids.iter().all(|id| {
            view.member(id)
                .is_some_and(|m| m.state == MemberState::Alive)
        })
}

/// The state `view` gives member `id`.
pub fn state_of(view: &ClusterView, id: &str) -> Option<MemberState> {
    view.member(id).map(|m| m.state)
}

/// Waits until each cluster sees exactly `ids`, all alive.
pub async fn converge(clusters: &[&Cluster], ids: &[&str]) {
    for cluster in clusters {
        wait_view(cluster, &format!("{ids:?} all alive"), |v| {
            all_alive(v, ids)
        })
        .await;
    }
}

fn summary(view: &ClusterView) -> Vec<String> {
    view.members.iter().map(describe).collect()
}

fn describe(m: &MemberView) -> String {
    format!(
        "{} {} {:?} inc {} {:?}/{}",
        m.id, m.addr, m.state, m.incarnation, m.health, m.score
    )
}
