//! Encryption over real sockets: outsiders without the key never get in, and keys rotate on a
//! running cluster without anyone being declared down.

mod common;

use std::time::Duration;

use common::*;
use tokio::sync::broadcast;
use tokio::time::Instant;
use vigil_cluster::{load_key_file, Cluster, ClusterError, KeyInfo, KeyringOp, MembershipEvent};
use vigil_gossip::crypto::{Key, Keyring, KeyringError};
use vigil_gossip::Health;

/// How long outsiders keep trying while the test watches that they never get in. Seeds are
/// redialled every 300 ms, so this covers about ten attempts each.
const OUTSIDER_WINDOW: Duration = Duration::from_secs(3);

fn key(byte: u8) -> Key {
    Key::from_bytes([byte; 32])
}

async fn keyed(id: &str, ring: Option<Keyring>, seeds: &[std::net::SocketAddr]) -> Cluster {
    let mut config = config(id, seeds);
    config.keyring = ring;
    start(config).await
}

fn rejected(cluster: &Cluster) -> u64 {
    cluster.view().stats.rejected
}

/// For [`OUTSIDER_WINDOW`], checks that no insider ever lists an outsider and that outsiders
/// know only themselves.
async fn outsiders_stay_out(insiders: &[&Cluster], outsiders: &[(&str, &Cluster)]) {
    let until = Instant::now() + OUTSIDER_WINDOW;
    while Instant::now() < until {
        for insider in insiders {
            let view = insider.view();
            for (id, _) in outsiders {
                assert!(
                    view.member(id).is_none(),
                    "{} lets {id} in: {view:#?}",
                    view.local_id
                );
            }
        }
        for (id, outsider) in outsiders {
            assert_eq!(
                outsider.view().members.len(),
                1,
                "{id} learnt of other members"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_without_the_key_never_join() {
    let ring = Keyring::new(key(1));
    let a = keyed("a", Some(ring.clone()), &[]).await;
    let b = keyed("b", Some(ring.clone()), &[a.local_addr()]).await;
    let c = keyed("c", Some(ring), &[a.local_addr()]).await;
    converge(&[&a, &b, &c], &["a", "b", "c"]).await;
    let (rejected_a, rejected_b) = (rejected(&a), rejected(&b));

    let plain = keyed("plain", None, &[a.local_addr()]).await;
    let wrong = keyed("wrong", Some(Keyring::new(key(9))), &[b.local_addr()]).await;

    // Their attempts reach the members they were given, which refuse them.
    wait_view(&a, "frames from the unencrypted node rejected", |v| {
        v.stats.rejected >= rejected_a + 2
    })
    .await;
    wait_view(&b, "frames under the wrong key rejected", |v| {
        v.stats.rejected >= rejected_b + 2
    })
    .await;
    outsiders_stay_out(&[&a, &b, &c], &[("plain", &plain), ("wrong", &wrong)]).await;

    assert!(rejected(&a) > rejected_a + 2 && rejected(&b) > rejected_b + 2);
    for insider in [&a, &b, &c] {
        assert!(all_alive(&insider.view(), &["a", "b", "c"]));
    }
}

fn no_down_events(events: &mut broadcast::Receiver<MembershipEvent>, on: &str) {
    loop {
        match events.try_recv() {
            Ok(MembershipEvent::Down(m)) => panic!("{on} saw {} go down during the rotation", m.id),
            Ok(_) => {}
            Err(broadcast::error::TryRecvError::Empty) => return,
            Err(e) => panic!("{on}: event stream: {e}"),
        }
    }
}

/// Changes each node's health and waits until every other node has seen it: proof that
/// datagrams between every pair still decrypt.
async fn traffic_flows(nodes: &[(&str, &Cluster)], score: u8) {
    for (_, node) in nodes {
        node.set_health(Health::Healthy, score);
    }
    for (_, observer) in nodes {
        for (id, _) in nodes {
            wait_view(observer, &format!("{id} at score {score}"), |v| {
                v.member(id)
                    .is_some_and(|m| m.health == Health::Healthy && m.score == score)
            })
            .await;
        }
        assert!(all_alive(&observer.view(), &["a", "b", "c"]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_without_downtime() {
    let (k1, k2) = (key(1), key(2));
    let dir = std::env::temp_dir().join(format!("vigil-cluster-rotation-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let key_file = dir.join("keyring");

    let mut a_config = config("a", &[]);
    a_config.keyring = Some(Keyring::new(k1.clone()));
    a_config.key_file = Some(key_file.clone());
    let a = start(a_config).await;
    let b = keyed("b", Some(Keyring::new(k1.clone())), &[a.local_addr()]).await;
    let c = keyed("c", Some(Keyring::new(k1.clone())), &[a.local_addr()]).await;
    let nodes = [("a", &a), ("b", &b), ("c", &c)];
    converge(&[&a, &b, &c], &["a", "b", "c"]).await;
    let mut events: Vec<_> = nodes.iter().map(|(id, n)| (*id, n.subscribe())).collect();
    let listed = |primary: &Key, other: &Key| {
        vec![
            KeyInfo {
                fingerprint: primary.fingerprint(),
                primary: true,
            },
            KeyInfo {
                fingerprint: other.fingerprint(),
                primary: false,
            },
        ]
    };

    // 1. Install k2 everywhere: accepted, not yet used.
    for (_, node) in nodes {
        let keys = node
            .keyring(KeyringOp::Install(k2.clone()))
            .await
            .expect("install k2");
        assert_eq!(keys, listed(&k1, &k2));
    }
    assert_eq!(load_key_file(&key_file).expect("key file after install"), {
        let mut ring = Keyring::new(k1.clone());
        ring.install(k2.clone());
        ring
    });
    traffic_flows(&nodes, 60).await;

    // 2. Use k2 on one node: it now seals with k2, which the others accept.
    let keys = a
        .keyring(KeyringOp::Use(k2.clone()))
        .await
        .expect("use k2 on a");
    assert_eq!(keys, listed(&k2, &k1));
    traffic_flows(&nodes, 70).await;

    // 3. Then on the others.
    for node in [&b, &c] {
        node.keyring(KeyringOp::Use(k2.clone()))
            .await
            .expect("use k2");
    }
    traffic_flows(&nodes, 80).await;

    // 4. Remove k1 everywhere; k2 alone carries the cluster.
    for (_, node) in nodes {
        let keys = node
            .keyring(KeyringOp::Remove(k1.clone()))
            .await
            .expect("remove k1");
        assert_eq!(
            keys,
            vec![KeyInfo {
                fingerprint: k2.fingerprint(),
                primary: true
            }]
        );
    }
    traffic_flows(&nodes, 90).await;
    assert_eq!(
        load_key_file(&key_file).expect("key file after removal"),
        Keyring::new(k2.clone())
    );
    assert_eq!(
        std::fs::read_to_string(&key_file).expect("key file text"),
        format!("{}\n", k2.to_base64())
    );

    // The keyring refuses what would break it.
    assert!(matches!(
        a.keyring(KeyringOp::Remove(k2.clone())).await,
        Err(ClusterError::Keyring(KeyringError::IsPrimary))
    ));
    assert!(matches!(
        a.keyring(KeyringOp::Use(k1.clone())).await,
        Err(ClusterError::Keyring(KeyringError::NotInstalled))
    ));

    // A node that only has the old key can no longer join.
    let before = rejected(&a);
    let stale = keyed("stale", Some(Keyring::new(k1.clone())), &[a.local_addr()]).await;
    wait_view(&a, "frames under the old key rejected", |v| {
        v.stats.rejected >= before + 2
    })
    .await;
    outsiders_stay_out(&[&a, &b, &c], &[("stale", &stale)]).await;

    for (id, events) in &mut events {
        no_down_events(events, id);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
