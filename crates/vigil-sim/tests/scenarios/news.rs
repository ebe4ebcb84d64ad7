//! News of a join or a death reaches every member within 2 s, every time, on a lossy network:
//! a member that gossip misses hears it from the membership digest in its observed members'
//! heartbeats, not from the periodic push-pull a minute later.

use std::time::Duration;

use vigil_sim::{Kind, Link, NodeOptions, Sim, SimConfig};

use crate::common::{cluster_with, secs};

/// The longest any member may go without news of a join or a death.
const WITHIN: Duration = Duration::from_secs(2);

/// How long after the first live member reported `kind` about `subject` (at or after `since`)
/// the last one did: how long the news took to spread.
fn spread(sim: &Sim, subject: usize, since: Duration, kind: Kind) -> Duration {
    let first = sim
        .first_seen(subject, since, |r| r.kind == kind)
        .into_iter()
        .filter_map(|(_, t)| t)
        .min()
        .unwrap_or_default();
    let last = sim
        .time_until_all(subject, since, |r| r.kind == kind)
        .unwrap_or_else(|| {
            let missing: Vec<usize> = sim
                .first_seen(subject, since, |r| r.kind == kind)
                .into_iter()
                .filter(|(_, t)| t.is_none())
                .map(|(i, _)| i)
                .collect();
            panic!("{kind:?} of node {subject} never reached {missing:?}")
        });
    last - first
}

/// Does `act` to `subject`, runs the simulation for `settle`, and returns how long the news of
/// `kind` took to spread.
fn news_of(
    sim: &mut Sim,
    subject: usize,
    kind: Kind,
    settle: Duration,
    act: impl FnOnce(&mut Sim, usize),
) -> Duration {
    let since = sim.now();
    act(sim, subject);
    sim.run_for(settle);
    spread(sim, subject, since, kind)
}

#[test]
fn joins_and_deaths_reach_every_member_within_two_seconds_under_loss() {
    let mut config = SimConfig::new(21, 60);
    config.link = Link::LAN.with_loss(0.05);
    let mut sim = cluster_with(config);
    let mut joins = Vec::new();
    for _ in 0..10 {
        let since = sim.now();
        let joined = sim.add_node(NodeOptions {
            join: true,
            ..NodeOptions::default()
        });
        sim.run_for(secs(8));
        joins.push(spread(&sim, joined, since, Kind::Up));
    }
    let mut deaths = Vec::new();
    for victim in [3, 17, 29, 41, 55, 62, 66] {
        deaths.push(news_of(&mut sim, victim, Kind::Down, secs(8), Sim::kill));
    }
    eprintln!("first to last member: joins {joins:?}, deaths {deaths:?}");
    for took in joins.iter().chain(&deaths) {
        assert!(*took <= WITHIN, "joins {joins:?}, deaths {deaths:?}");
    }
}

#[test]
fn deaths_right_after_a_restart_reach_every_member_within_two_seconds_at_250_nodes() {
    // As the membership bench does it: each killed member is restarted under the same name and
    // killed again a few seconds after the cluster took it back, so the members that learned of
    // its return from a digest exchange have only just used one.
    let mut config = SimConfig::new(22, 250);
    config.link = Link::LAN.with_loss(0.05);
    let mut sim = cluster_with(config);
    sim.run_for(secs(5));
    let mut deaths = Vec::new();
    let mut returns = Vec::new();
    for victim in [7, 61, 123, 180, 244] {
        for _ in 0..2 {
            deaths.push(news_of(&mut sim, victim, Kind::Down, secs(5), Sim::kill));
            returns.push(news_of(&mut sim, victim, Kind::Up, secs(4), Sim::restart));
        }
    }
    eprintln!("first to last member: deaths {deaths:?}, returns {returns:?}");
    for took in deaths.iter().chain(&returns) {
        assert!(*took <= WITHIN, "deaths {deaths:?}, returns {returns:?}");
    }
}
