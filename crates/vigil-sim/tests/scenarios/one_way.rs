//! A one-way partition: a group whose datagrams and connections cannot reach the rest, while the
//! rest still reach it (a broken outbound route or firewall rule).
//!
//! What is sane, and asserted:
//! - the rest, which cannot hear the group, declares every node of it dead: acks and refutations
//!   cannot get out, and push-pull needs both directions;
//! - having done so the rest stops heartbeating and gossiping to the group, so the group in turn
//!   stops hearing the rest and declares it dead: the one-way cut ends as a clean split into two
//!   working clusters, rather than a group that believes in members that ignore it;
//! - the rest, which hears everyone, never declares one of its own dead. The group may, briefly:
//!   before the rest stops talking to it, the rest gossips "X is dead" about group members to
//!   the group; X refutes, but a group member the refutation misses keeps X's tombstone until
//!   its next push-pull. Each side ends whole, and then nothing flaps;
//! - once the route returns, the whole cluster reconverges, all alive.

use vigil_gossip::MemberState;
use vigil_sim::{Kind, Sim};

use crate::common::{assert_none, cluster, ms, secs};

#[test]
fn a_group_that_cannot_send_is_dead_to_the_rest_and_recovers_when_the_route_returns() {
    let mut sim = cluster(6, 40);
    let group: Vec<usize> = (30..40).collect();
    let rest: Vec<usize> = (0..30).collect();
    let since = sim.now();
    let rule = sim.block(&group, &rest);
    let sees_dead = |sim: &Sim, from: &[usize], to: &[usize]| {
        from.iter().all(|&i| {
            to.iter()
                .all(|&j| sim.view(i, j) == Some(MemberState::Dead))
        })
    };
    let took = sim
        .run_until_true(secs(60), ms(250), |sim| sees_dead(sim, &rest, &group))
        .expect("the rest sees the mute group dead");
    eprintln!("the rest saw the mute group dead after {took:?}");
    let took = sim
        .run_until_true(secs(90), ms(250), |sim| sees_dead(sim, &group, &rest))
        .expect("the group, no longer spoken to, sees the rest dead");
    eprintln!("and the group saw the rest dead {took:?} later");

    // The side that can send never accused one of its own.
    let own: Vec<_> = sim
        .records()
        .iter()
        .filter(|r| r.at >= since && r.kind == Kind::Down)
        .filter(|r| rest.contains(&r.observer) && r.subject.is_some_and(|s| rest.contains(&s)))
        .copied()
        .collect();
    assert_none("members of the rest declared dead by the rest", &own);
    let whole = |sim: &Sim| {
        [&group, &rest].iter().all(|side| {
            side.iter().all(|&i| {
                side.iter()
                    .all(|&j| i == j || sim.view(i, j) == Some(MemberState::Alive))
            })
        })
    };
    let took = sim
        .run_until_true(secs(120), ms(250), whole)
        .expect("each side ends whole");
    eprintln!("both sides whole {took:?} later");

    // Nothing flaps once split.
    let settled = sim.now();
    sim.run_for(secs(60));
    let flaps: Vec<_> = sim
        .records()
        .iter()
        .filter(|r| {
            r.at >= settled && matches!(r.kind, Kind::Up | Kind::Down | Kind::Suspect | Kind::Alive)
        })
        .copied()
        .collect();
    assert_none("membership changes after the split settled", &flaps);

    sim.unblock(rule);
    let healed = sim
        .run_until_true(secs(60), ms(250), Sim::all_alive)
        .unwrap_or_else(|| {
            panic!(
                "not reconverged 60 s after the route returned: {:?}",
                sim.unconverged()
            )
        });
    eprintln!("reconverged {healed:?} after the route returned");
}
