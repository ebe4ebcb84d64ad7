//! Each protocol rule held to its effect on a bench of two or three nodes in virtual time.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::harness::{Bench, Presence};

const MS: Duration = Duration::from_millis(1);

/// The members, by id and incarnation, of the events in `events` of the kind `kind` makes.
fn about(events: &[Event], kind: fn(Member) -> Event) -> Vec<(NodeId, u64)> {
    let wanted = std::mem::discriminant(&kind(Bench::member(0)));
    events
        .iter()
        .filter(|event| std::mem::discriminant(*event) == wanted)
        .filter_map(|event| match event {
            Event::MemberUp(m)
            | Event::MemberUpdated(m)
            | Event::MemberSuspect(m)
            | Event::MemberAlive(m)
            | Event::MemberDown(m)
            | Event::MemberLeft(m) => Some((m.id.clone(), m.incarnation)),
            Event::Refuted { .. } => None,
        })
        .collect()
}

fn n(i: usize) -> NodeId {
    Bench::id(i)
}

/// Host `i`'s suspicion of `n2`.
fn suspicion(bench: &Bench, i: usize) -> &Suspicion {
    &bench.peek(i).suspicions[&n(2)]
}

/// Longer than any rule below takes to play out.
const SOON: Duration = Duration::from_secs(20);

/// Whether `n0` and `n1` both see `n2` in `state`.
fn both_see(bench: &Bench, state: MemberState) -> bool {
    (0..2).all(|i| bench.state(i, 2) == Some(state))
}

/// Whether `n0` and `n1` both hold a suspicion of `n2`, shown or not.
fn both_suspect(bench: &Bench) -> bool {
    (0..2).all(|i| bench.peek(i).suspicions.contains_key(&n(2)))
}

/// Which of `n0` and `n1` showed `n2` as suspect: its first observer on the ring.
fn shown_suspect_by(bench: &Bench) -> Vec<usize> {
    (0..2)
        .filter(|&i| !about(bench.events(i), Event::MemberSuspect).is_empty())
        .collect()
}

#[test]
fn members_join_through_a_seed_and_see_each_other() {
    let mut bench = Bench::new(3);
    bench.join(1);
    bench.join(2);
    bench.run_for(500 * MS);
    for i in 0..3 {
        let mut seen = about(bench.events(i), Event::MemberUp);
        seen.sort();
        let others: Vec<(NodeId, u64)> = (0..3).filter(|&j| j != i).map(|j| (n(j), 1)).collect();
        assert_eq!(seen, others, "n{i} saw each other member come up once");
        for j in (0..3).filter(|&j| j != i) {
            assert_eq!(bench.state(i, j), Some(MemberState::Alive));
        }
    }
}

#[test]
fn a_silent_member_is_suspected_confirmed_and_declared_dead() {
    let mut bench = Bench::joined(3);
    bench.set_presence(2, Presence::Frozen);
    bench.run_until(SOON, both_suspect);
    // Each observer's own probe fails too and confirms the other's suspicion, which shrinks its
    // timeout from `suspicion_max` to `suspicion_min`.
    let confirmed = |b: &Bench| (0..2).all(|i| suspicion(b, i).confirmations.len() == 2);
    bench.run_until(Config::default().probe_timeout * 2, confirmed);
    let shown = shown_suspect_by(&bench);
    assert_eq!(shown.len(), 1, "only the first observer shows it");
    assert_eq!(
        about(bench.events(shown[0]), Event::MemberSuspect),
        [(n(2), 1)]
    );
    assert_eq!(bench.state(shown[0], 2), Some(MemberState::Suspect));
    assert_eq!(bench.state(1 - shown[0], 2), Some(MemberState::Alive));
    for i in 0..2 {
        let suspicion = suspicion(&bench, i);
        let min = Config::default().suspicion_min;
        assert_eq!(suspicion.deadline, suspicion.started + min, "n{i}");
    }
    let took = bench.run_until(SOON, |b| both_see(b, MemberState::Dead));
    assert!(
        took <= Config::default().suspicion_min + 200 * MS,
        "{took:?}"
    );
    for i in 0..2 {
        assert_eq!(about(bench.events(i), Event::MemberDown), [(n(2), 1)]);
    }
}

#[test]
fn a_member_whose_host_refuses_connections_is_dead_without_suspicion() {
    let mut bench = Bench::joined(3);
    bench.kill(2);
    bench.run_until(SOON, |b| both_see(b, MemberState::Dead));
    for i in 0..2 {
        assert_eq!(about(bench.events(i), Event::MemberDown), [(n(2), 1)]);
        assert!(
            about(bench.events(i), Event::MemberSuspect).is_empty(),
            "n{i}"
        );
    }
}

#[test]
fn a_cut_off_host_that_answered_before_is_dead_once_a_second_observer_agrees() {
    let mut bench = Bench::joined(3);
    // An observer learns how fast a host answers once it has heard three of its heartbeats.
    bench.run_for(3500 * MS);
    bench.set_presence(2, Presence::CutOff);
    bench.run_until(SOON, |b| {
        (0..2).any(|i| b.peek(i).suspicions.contains_key(&n(2)))
    });
    let took = bench.run_until(SOON, |b| both_see(b, MemberState::Dead));
    // Each observer's connection attempts met silence where the host answered at once before,
    // and the other observer's suspicion confirms it: dead within a probe's time of the first
    // suspicion, where the suspicion path waits `suspicion_min` at least.
    assert!(took <= Config::default().probe_timeout, "{took:?}");
    for i in 0..2 {
        assert_eq!(about(bench.events(i), Event::MemberDown), [(n(2), 1)]);
    }
}

#[test]
fn one_observer_alone_finding_a_host_silent_waits_out_the_suspicion() {
    // Two members: nobody else can confirm what the observer found, which may be its own trouble.
    let mut bench = Bench::joined(2);
    bench.set_presence(1, Presence::CutOff);
    bench.run_until(SOON, |b| b.peek(0).suspicions.contains_key(&n(1)));
    let took = bench.run_until(SOON, |b| b.state(0, 1) == Some(MemberState::Dead));
    assert!(took >= Config::default().suspicion_min, "{took:?}");
}

#[test]
fn a_suspected_member_that_wakes_refutes_with_a_higher_incarnation() {
    let mut bench = Bench::joined(3);
    bench.set_presence(2, Presence::Frozen);
    bench.run_until(SOON, both_suspect);
    let shown = shown_suspect_by(&bench);
    bench.set_presence(2, Presence::Running);
    bench.run_for(500 * MS);
    assert!(bench.events(2).contains(&Event::Refuted { incarnation: 2 }));
    assert!((0..2).all(|i| !bench.peek(i).suspicions.contains_key(&n(2))));
    for i in 0..2 {
        assert_eq!(bench.state(i, 2), Some(MemberState::Alive), "n{i}");
        // Back alive where it was shown suspect; no event where it never stopped being alive.
        let back: &[(NodeId, u64)] = if shown.contains(&i) {
            &[(n(2), 2)]
        } else {
            &[]
        };
        assert_eq!(about(bench.events(i), Event::MemberAlive), back, "n{i}");
        assert!(about(bench.events(i), Event::MemberDown).is_empty(), "n{i}");
    }
}

#[test]
fn a_member_that_leaves_is_seen_as_left_once_its_peers_confirm() {
    let mut bench = Bench::joined(3);
    let now = bench.now;
    bench.node(2).leave(now);
    bench.deliver();
    assert!(bench.departed(2));
    bench.run_for(Duration::from_secs(3));
    for i in 0..2 {
        assert_eq!(bench.state(i, 2), Some(MemberState::Left), "n{i}");
        assert_eq!(about(bench.events(i), Event::MemberLeft), [(n(2), 2)]);
        assert!(
            about(bench.events(i), Event::MemberSuspect).is_empty(),
            "n{i}"
        );
        assert!(about(bench.events(i), Event::MemberDown).is_empty(), "n{i}");
    }
}

#[test]
fn a_dead_member_rejoins_with_a_higher_incarnation() {
    let mut bench = Bench::joined(3);
    bench.kill(2);
    bench.run_until(SOON, |b| both_see(b, MemberState::Dead));
    bench.clear_events();
    bench.start(2, 2);
    bench.join(2);
    bench.run_for(500 * MS);
    for i in 0..2 {
        assert_eq!(bench.state(i, 2), Some(MemberState::Alive), "n{i}");
        assert_eq!(about(bench.events(i), Event::MemberUp), [(n(2), 2)]);
    }
}

#[test]
fn a_metadata_change_reaches_every_member() {
    let mut bench = Bench::joined(3);
    let now = bench.now;
    let meta = Metadata {
        health: crate::member::Health::Healthy,
        score: 42,
        ..Metadata::default()
    };
    bench.node(1).set_metadata(now, meta.clone());
    bench.deliver();
    bench.run_for(500 * MS);
    let advertised = bench.peek(1).metadata().clone();
    assert_eq!(advertised.score, 42);
    assert!(
        advertised.tags.contains_key(crate::version::PROTOCOL_TAG),
        "the protocol versions stay advertised"
    );
    for i in [0, 2] {
        assert_eq!(about(bench.events(i), Event::MemberUpdated), [(n(1), 1)]);
        let member = bench.peek(i).member(&n(1)).expect("known");
        assert_eq!((&member.meta, member.meta_version), (&advertised, 1));
    }
}

#[test]
fn a_rolling_upgrade_moves_the_cluster_to_the_new_version_once_all_speak_it() {
    use crate::version::{Versions, PROTOCOL_MAX, PROTOCOL_MIN};
    let old = Config {
        versions: Versions::pinned(PROTOCOL_MIN).expect("a version this build speaks"),
        ..Config::default()
    };
    let mut bench = Bench::new(3);
    for i in 0..3 {
        bench.start_with(i, 1, old.clone());
    }
    for i in 1..3 {
        bench.join(i);
    }
    bench.run_for(2000 * MS);
    for (step, upgraded) in [0usize, 1, 2].into_iter().enumerate() {
        // Restarted on the new build: a new process, a new incarnation, joining through another.
        bench.start(upgraded, 2 + step as u64);
        bench.join_through(upgraded, (upgraded + 1) % 3);
        bench.run_for(3000 * MS);
        for i in 0..3 {
            for j in (0..3).filter(|&j| j != i) {
                assert_eq!(
                    bench.state(i, j),
                    Some(MemberState::Alive),
                    "n{i} sees n{j}"
                );
            }
            let expected = if step == 2 {
                PROTOCOL_MAX
            } else {
                PROTOCOL_MIN
            };
            assert_eq!(
                bench.node(i).protocol_version(),
                expected,
                "n{i} after step {step}"
            );
            assert_eq!(bench.peek(i).stats().rejected, 0, "n{i} read every frame");
            assert!(
                !bench
                    .events(i)
                    .iter()
                    .any(|e| matches!(e, Event::MemberDown(_))),
                "no false death at n{i}"
            );
        }
    }
}

fn lone(now: Instant) -> Node {
    let identity = Identity {
        id: NodeId::new("lone"),
        addr: SocketAddr::from(([127, 0, 0, 1], 6999)),
        incarnation: 1,
    };
    Node::new(
        identity,
        Metadata::default(),
        Config::default(),
        None,
        [9; 32],
        now,
    )
}

fn exchanges(node: &mut Node) -> Vec<Exchange> {
    std::iter::from_fn(|| node.poll())
        .filter_map(|output| match output {
            Output::Exchange(exchange) => Some(exchange),
            _ => None,
        })
        .collect()
}

#[test]
fn one_exchange_per_peer_and_a_bounded_number_in_flight() {
    let now = Instant::now();
    let mut node = lone(now);
    let seed = Bench::addr(0);
    node.join(now, &[seed]);
    node.join(now, &[seed]);
    let first = exchanges(&mut node);
    assert_eq!(first.len(), 1, "a second exchange with the same peer waits");
    node.handle_sync_failed(now, first[0].id);
    node.join(now, &[seed]);
    assert_eq!(
        exchanges(&mut node).len(),
        1,
        "once the first ended, another may start"
    );

    let mut node = lone(now);
    let seeds: Vec<SocketAddr> = (0..50)
        .map(|i| SocketAddr::from(([127, 0, 0, 1], 8000 + i)))
        .collect();
    node.join(now, &seeds);
    assert_eq!(exchanges(&mut node).len(), MAX_EXCHANGES);
}

#[test]
fn a_leave_is_confirmed_by_fanout_peers_of_the_seeded_choice() {
    let mut bench = Bench::joined(3);
    let now = bench.now;
    let node = bench.node(0);
    node.leave(now);
    let outputs: Vec<Output> = std::iter::from_fn(|| node.poll()).collect();
    let asked: Vec<Exchange> = outputs
        .iter()
        .filter_map(|output| match output {
            Output::Exchange(exchange) => Some(*exchange),
            _ => None,
        })
        .collect();
    assert_eq!(asked.len(), 2, "both peers, fewer than the fanout of 3");
    assert!(
        !outputs.contains(&Output::Departed),
        "waits for their answers"
    );
    node.handle_sync_failed(now, asked[0].id);
    assert_eq!(node.poll(), None);
    node.handle_sync_failed(now, asked[1].id);
    assert_eq!(node.poll(), Some(Output::Departed));
    node.handle_sync_failed(now, asked[1].id);
    assert_eq!(node.poll(), None, "departed once");
}

#[test]
fn a_member_that_missed_a_join_learns_it_from_a_heartbeats_digest() {
    let mut bench = Bench::new(4);
    bench.join(1);
    bench.join(2);
    bench.run_for(500 * MS);
    // n3 joins while n2 hears nothing, for less than it takes to suspect n2: by the time n2
    // hears again, the news has been gossiped its few times and is gone from every queue, and
    // the next periodic push-pull is 15 s or more away.
    bench.set_presence(2, Presence::Frozen);
    bench.join(3);
    bench.run_for(1000 * MS);
    assert_eq!(bench.state(2, 3), None, "n2 missed the join");
    assert!((0..4).all(|i| bench.peek(i).pending_updates() == 0));
    bench.set_presence(2, Presence::Running);
    let took = bench.run_until(2000 * MS, |b| b.state(2, 3) == Some(MemberState::Alive));
    let syncs: u64 = (0..4).map(|i| bench.peek(i).stats().digest_syncs).sum();
    assert!(syncs >= 1, "the digests set off a push-pull");
    assert!(took <= 1500 * MS, "{took:?}");
}

#[test]
fn nodes_that_know_the_same_members_agree_on_the_digest_and_start_no_exchange() {
    let mut bench = Bench::joined(4);
    bench.run_for(Duration::from_secs(10));
    let digests: Vec<u32> = (0..4).map(|i| bench.node(i).digest()).collect();
    assert!(digests.iter().all(|d| *d == digests[0]), "{digests:?}");
    let syncs: u64 = (0..4).map(|i| bench.peek(i).stats().digest_syncs).sum();
    assert_eq!(syncs, 0);
}
