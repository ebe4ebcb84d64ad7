//! Membership over real sockets on 127.0.0.1: joining, metadata, crashes, leaving, quorum.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use vigil_cluster::{Cluster, ClusterConfig, ClusterError, KeyringOp, MembershipEvent};
use vigil_gossip::{Health, MemberState, Role};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_join_through_one_seed_and_share_metadata() {
    let api: SocketAddr = "127.0.0.1:8080".parse().expect("addr");
    let mut seed_config = config("a", &[]);
    seed_config.role = Role::Voter;
    seed_config.api_addr = Some(api);
    seed_config.tags = BTreeMap::from([("zone".to_owned(), "east".to_owned())]);
    let a = start(seed_config).await;
    let mut events = a.subscribe();
    let b = start(config("b", &[a.local_addr()])).await;
    let c = start(config("c", &[a.local_addr()])).await;

    converge(&[&a, &b, &c], &["a", "b", "c"]).await;
    wait_event(
        &mut events,
        "b up on a",
        |e| matches!(e, MembershipEvent::Up(m) if m.id == "b"),
    )
    .await;

    // What a published at start reached the others.
    for other in [&b, &c] {
        let view = other.view();
        let seen = view.member("a").expect("a in view");
        assert_eq!(seen.role, Role::Voter);
        assert_eq!(seen.api_addr, Some(api));
        assert_eq!(seen.tags.get("zone").map(String::as_str), Some("east"));
        assert_eq!(seen.addr, a.local_addr());
        assert_eq!(view.member("b").map(|m| m.role), Some(Role::Member));
    }

    // A health change spreads, and shows up as an update event.
    b.set_health(Health::Degraded, 72);
    for other in [&a, &c] {
        wait_view(other, "b degraded at 72", |v| {
            v.member("b")
                .is_some_and(|m| m.health == Health::Degraded && m.score == 72)
        })
        .await;
    }
    let updated = wait_event(
        &mut events,
        "b updated on a",
        |e| matches!(e, MembershipEvent::Updated(m) if m.id == "b" && m.health == Health::Degraded),
    )
    .await;
    assert_eq!(updated.member().score, 72);
    let own = b.view();
    let me = own.local().expect("b sees itself");
    assert_eq!((me.health, me.score), (Health::Degraded, 72));
    assert!(me.last_heard.is_some());

    // Observers have phi and last-heard times for what they watch (everyone, at three nodes), and
    // heartbeats arrive (the first ones a heartbeat interval after the join, which the gossip
    // above may well have beaten).
    let view = wait_view(&a, "phi of b and c, and heartbeats", |v| {
        v.stats.heartbeats_received > 0
            && ["b", "c"]
                .iter()
                .all(|id| v.member(id).is_some_and(|m| m.phi.is_some()))
    })
    .await;
    assert!(view.member("b").is_some_and(|m| m.last_heard.is_some()));

    // The JSON a dashboard reads.
    let json = serde_json::to_value(&*view).expect("view serializes");
    assert_eq!(json["localId"], "a");
    assert_eq!(json["members"].as_array().map(Vec::len), Some(3));
    assert_eq!(json["members"][0]["state"], "alive");
    assert_eq!(json["members"][0]["role"], "voter");
    assert_eq!(json["members"][0]["apiAddr"], "127.0.0.1:8080");
    assert!(json["stats"]["heartbeatsReceived"]
        .as_u64()
        .is_some_and(|n| n > 0));
    assert_eq!(json["hasQuorum"], true);
    assert_eq!(
        serde_json::to_value(&updated).expect("event serializes")["type"],
        "member_updated"
    );

    // Without encryption there is no keyring to manage.
    assert!(matches!(
        a.keyring(KeyringOp::List).await,
        Err(ClusterError::NotEncrypted)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_node_is_declared_down() {
    let a = start(config("a", &[])).await;
    let b = start(config("b", &[a.local_addr()])).await;
    let c = start(config("c", &[a.local_addr()])).await;
    converge(&[&a, &b, &c], &["a", "b", "c"]).await;
    let mut on_a = a.subscribe();
    let mut on_b = b.subscribe();

    c.shutdown_now().await;

    for events in [&mut on_a, &mut on_b] {
        wait_event(
            events,
            "c down",
            |e| matches!(e, MembershipEvent::Down(m) if m.id == "c"),
        )
        .await;
    }
    for survivor in [&a, &b] {
        let view = wait_view(survivor, "c dead", |v| {
            state_of(v, "c") == Some(MemberState::Dead)
        })
        .await;
        assert_eq!(state_of(&view, "a"), Some(MemberState::Alive));
        assert_eq!(state_of(&view, "b"), Some(MemberState::Alive));
    }
    // A stopped node can no longer be steered.
    assert!(matches!(
        c.keyring(KeyringOp::List).await,
        Err(ClusterError::Stopped)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_leave_is_seen_as_left() {
    let a = start(config("a", &[])).await;
    let b = start(config("b", &[a.local_addr()])).await;
    let c = start(config("c", &[a.local_addr()])).await;
    converge(&[&a, &b, &c], &["a", "b", "c"]).await;
    let mut on_a = a.subscribe();
    let mut on_b = b.subscribe();

    c.leave(Duration::from_secs(3)).await;

    for events in [&mut on_a, &mut on_b] {
        // The snapshot is published before its events are sent, so the news of c joining may
        // still arrive after `converge`; only what comes after it tells a leave from a failure.
        let left = wait_event(events, "c left", |e| {
            e.member().id == "c"
                && !matches!(e, MembershipEvent::Up(_) | MembershipEvent::Updated(_))
        })
        .await;
        assert!(
            matches!(left, MembershipEvent::Left(_)),
            "expected member_left, got {left:?}"
        );
    }
    for survivor in [&a, &b] {
        wait_view(survivor, "c left", |v| {
            state_of(v, "c") == Some(MemberState::Left)
        })
        .await;
    }
    // The leaver's last snapshot shows itself gone; leaving again is harmless.
    assert_eq!(state_of(&c.view(), "c"), Some(MemberState::Left));
    c.leave(Duration::from_secs(1)).await;
    assert!(matches!(
        c.keyring(KeyringOp::List).await,
        Err(ClusterError::Stopped)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_follows_reachable_voters() {
    let voters: Vec<String> = ["q1", "q2", "q3"].iter().map(|s| s.to_string()).collect();
    let voter = |id: &str, seeds: &[SocketAddr]| {
        let mut config = config(id, seeds);
        config.role = Role::Voter;
        config.voters = voters.clone();
        config
    };
    let q1 = start(voter("q1", &[])).await;
    let q2 = start(voter("q2", &[q1.local_addr()])).await;
    let q3 = start(voter("q3", &[q1.local_addr()])).await;
    converge(&[&q1, &q2, &q3], &["q1", "q2", "q3"]).await;
    for node in [&q1, &q2, &q3] {
        let view = node.view();
        assert!(view.has_quorum);
        assert_eq!((view.voters_total, view.voters_reachable), (3, 3));
    }

    q2.shutdown_now().await;
    q3.shutdown_now().await;

    let view = wait_view(&q1, "quorum lost", |v| !v.has_quorum).await;
    assert_eq!(view.voters_total, 3);
    assert_eq!(view.voters_reachable, 1);
}

#[tokio::test]
async fn configurations_that_cannot_work_are_refused() {
    let wildcard = ClusterConfig::new("w", "0.0.0.0:0".parse().expect("addr"));
    let err = Cluster::start(wildcard)
        .await
        .expect_err("wildcard without advertise");
    assert!(matches!(err, ClusterError::Config(_)), "{err}");

    let first = start(config("first", &[])).await;
    let taken = ClusterConfig::new("second", first.local_addr());
    match Cluster::start(taken).await {
        Err(ClusterError::Bind { addr, .. }) => assert_eq!(addr, first.local_addr()),
        other => panic!("expected a bind error, got {other:?}"),
    }
}
