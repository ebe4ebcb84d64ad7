//! `sim-bench`: the membership protocol's figures at 1,000 nodes (or any n), in virtual time.
//!
//! ```text
//! cargo run -p vigil-sim --release --bin sim-bench [-- --seed S] [--nodes N] [--window SECS]
//! ```
//!
//! Prints, against the targets the protocol is held to:
//! - dissemination of one metadata change to 99 % of n members (target < 3 s);
//! - detection of a failed member by every other member, p50/p99 over observers and several
//!   failures: a host gone silent (target p99 < 5 s) and a process killed on a live host;
//! - bytes sent per node per second over a steady window long enough to include push-pull
//!   (target: flat, not growing with n): at 100, 300 and 1,000 nodes by default, at 1,000 and n
//!   when `--nodes` names another n;
//! - false positives under 5 % loss with random 1 s pauses (n / 10 nodes, at least 100, for 10
//!   minutes).
//!
//! `--nodes` (default 1,000) scales the cluster, the failed and updated members (the same
//! fractions of n) and the false-positive cluster; `--window` (default 1,200 s) is the bandwidth
//! window. Every figure is virtual time and deterministic for a seed; wall-clock times are
//! printed only to show what the run cost.

use std::process::ExitCode;
use std::str::FromStr;
use std::time::{Duration, Instant};

use vigil_gossip::Metadata;
use vigil_sim::{percentile, Kind, Link, Sim, SimConfig};

const SECOND: Duration = Duration::from_secs(1);

/// The cluster size the bench's members are chosen against: with `--nodes n`, member `x` of the
/// default run becomes member `x × n / 1,000`.
const DEFAULT_NODES: usize = 1000;

/// The value after `--name` on the command line, `Ok(None)` if the flag is absent.
fn flag<T: FromStr>(name: &str) -> Result<Option<T>, String> {
    let mut args = std::env::args().skip_while(|a| a != name);
    if args.next().is_none() {
        return Ok(None);
    }
    let value = args.next().ok_or_else(|| format!("{name} needs a value"))?;
    value
        .parse()
        .map(Some)
        .map_err(|_| format!("{name}: cannot read {value:?} as a number"))
}

/// Member `x` of the default 1,000-node run, in a cluster of `n`.
fn scaled(x: usize, n: usize) -> usize {
    x * n / DEFAULT_NODES
}

fn main() -> ExitCode {
    let args = (|| {
        Ok::<_, String>((
            flag("--seed")?.unwrap_or(1),
            flag("--nodes")?.unwrap_or(DEFAULT_NODES),
            flag("--window")?.unwrap_or(1200),
        ))
    })();
    let (seed, n, window) = match args {
        Ok((_, n, _)) if n < 10 => {
            eprintln!("--nodes must be at least 10");
            return ExitCode::FAILURE;
        }
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let wall = Instant::now();
    println!("vigil-sim bench, seed {seed}, {n} nodes; all times virtual unless marked wall");
    println!();

    let mut rows = Vec::new();
    let mut sim = join(seed, n, &mut rows);
    dissemination(&mut sim, &mut rows);
    kills(&mut sim, &mut rows);
    drop(sim);
    let sizes = if n == DEFAULT_NODES {
        vec![100, 300, 1000]
    } else {
        vec![DEFAULT_NODES, n]
    };
    bandwidth(seed, &sizes, window * SECOND, &mut rows);
    false_positives(seed, (n / 10).max(100), &mut rows);

    println!();
    println!(
        "| {:<52} | {:<14} | {:<30} |",
        "figure", "target", "measured"
    );
    println!("|{:-<54}|{:-<16}|{:-<32}|", "", "", "");
    for (figure, target, measured) in &rows {
        println!("| {figure:<52} | {target:<14} | {measured:<30} |");
    }
    println!();
    println!("total wall time {:.1?}", wall.elapsed());
    ExitCode::SUCCESS
}

type Rows = Vec<(String, String, String)>;

fn join(seed: u64, n: usize, rows: &mut Rows) -> Sim {
    let wall = Instant::now();
    let mut config = SimConfig::new(seed, n);
    config.join_spread = 5 * SECOND;
    let mut sim = Sim::new(config);
    let took = sim.run_until_true(120 * SECOND, SECOND / 2, Sim::all_alive);
    let measured = took.map_or("not converged in 120 s".to_owned(), |t| {
        format!("{t:.1?} (spread over 5 s)")
    });
    println!(
        "join: {n} nodes through 3 seeds converged after {measured}; wall {:.1?}",
        wall.elapsed()
    );
    rows.push((
        format!("join + converge, {n} nodes through 3 seeds"),
        "bounded".into(),
        measured,
    ));
    // Let the join's updates finish their retransmissions before measuring anything else.
    sim.run_for(30 * SECOND);
    sim
}

fn dissemination(sim: &mut Sim, rows: &mut Rows) {
    let wall = Instant::now();
    let mut p99s = Vec::new();
    let mut alls = Vec::new();
    let n = sim.len();
    for (k, x) in [17, 250, 501, 777, 999].into_iter().enumerate() {
        let x = scaled(x, n);
        let mut meta = Metadata::default();
        meta.tags.insert("rev".into(), k.to_string());
        let since = sim.now();
        sim.set_metadata(x, meta);
        sim.run_for(10 * SECOND);
        let updated = |r: &vigil_sim::Record| r.kind == Kind::Updated;
        p99s.push(
            sim.time_until_fraction(x, since, 0.99, updated)
                .unwrap_or(Duration::MAX),
        );
        alls.push(
            sim.time_until_all(x, since, updated)
                .unwrap_or(Duration::MAX),
        );
    }
    println!(
        "dissemination: to 99% {p99s:.2?}; to all {alls:.2?}; wall {:.1?}",
        wall.elapsed()
    );
    let worst = p99s.iter().max().copied().unwrap_or_default();
    rows.push((
        format!("metadata change reaches 99% of {n} (worst of 5)"),
        "< 3 s".into(),
        format!(
            "{worst:.2?} (100%: {:.2?})",
            alls.iter().max().copied().unwrap_or_default()
        ),
    ));
}

fn kills(sim: &mut Sim, rows: &mut Rows) {
    struct Failure {
        what: &'static str,
        fail: fn(&mut Sim, usize),
        target: &'static str,
        victims: [usize; 5],
    }
    let failures = [
        Failure {
            what: "host silent",
            fail: Sim::crash,
            target: "< 5 s",
            victims: [3, 123, 456, 789, 900],
        },
        Failure {
            what: "process killed",
            fail: Sim::kill,
            target: "",
            victims: [7, 222, 555, 666, 999],
        },
    ];
    let n = sim.len();
    for Failure {
        what,
        fail,
        target,
        victims,
    } in failures
    {
        let victims = victims.map(|x| scaled(x, n));
        let wall = Instant::now();
        let mut per_observer = Vec::new();
        let mut everyone = Vec::new();
        for x in victims {
            let since = sim.now();
            fail(sim, x);
            sim.run_for(20 * SECOND);
            let seen = sim.first_seen(x, since, |r| r.kind == Kind::Down);
            per_observer.extend(seen.iter().map(|(_, t)| t.unwrap_or(Duration::MAX)));
            everyone.push(
                sim.time_until_all(x, since, |r| r.kind == Kind::Down)
                    .unwrap_or(Duration::MAX),
            );
        }
        let p50 = percentile(&per_observer, 50.0).unwrap_or_default();
        let p99 = percentile(&per_observer, 99.0).unwrap_or_default();
        let wrong = sim.wrongly_down(Duration::ZERO).len();
        println!(
            "failure detection ({what}): per observer p50 {p50:.2?} p99 {p99:.2?}; by everyone {everyone:.2?}; live nodes wrongly down {wrong}; wall {:.1?}",
            wall.elapsed()
        );
        rows.push((
            format!("failure ({what}) seen by every member, p50"),
            "".into(),
            format!("{p50:.2?}"),
        ));
        rows.push((
            format!("failure ({what}) seen by every member, p99"),
            target.into(),
            format!(
                "{p99:.2?} (last member: {:.2?})",
                everyone.iter().max().copied().unwrap_or_default()
            ),
        ));
    }
}

fn bandwidth(seed: u64, sizes: &[usize], window: Duration, rows: &mut Rows) {
    for &n in sizes {
        let wall = Instant::now();
        let mut config = SimConfig::new(seed, n);
        config.join_spread = 5 * SECOND;
        let mut sim = Sim::new(config);
        sim.run_until_true(120 * SECOND, SECOND / 2, Sim::all_alive);
        sim.run_for(60 * SECOND);
        let before: Vec<_> = (0..n).map(|i| sim.traffic(i)).collect();
        sim.run_for(window);
        let secs = window.as_secs_f64();
        let mut datagrams = 0;
        let mut syncs = 0;
        let mut exchanges = 0;
        let mut max_node = 0;
        for (i, b) in before.iter().enumerate() {
            let t = sim.traffic(i);
            datagrams += t.bytes_sent - b.bytes_sent;
            syncs += t.sync_bytes_sent - b.sync_bytes_sent;
            exchanges += t.syncs_opened - b.syncs_opened;
            max_node = max_node.max(t.total_sent() - b.total_sent());
        }
        let per_node = |bytes: u64| bytes as f64 / n as f64 / secs;
        println!(
            "bandwidth at n={n}: {:.0} B/s per node sent ({:.0} datagrams + {:.0} push-pull), busiest node {:.0} B/s, {exchanges} push-pulls; wall {:.1?}",
            per_node(datagrams + syncs),
            per_node(datagrams),
            per_node(syncs),
            max_node as f64 / secs,
            wall.elapsed()
        );
        rows.push((
            format!(
                "bytes/s sent per node, n = {n} (steady, {} s)",
                window.as_secs()
            ),
            "flat in n".into(),
            format!(
                "{:.0} ({:.0} udp + {:.0} sync)",
                per_node(datagrams + syncs),
                per_node(datagrams),
                per_node(syncs)
            ),
        ));
    }
}

fn false_positives(seed: u64, n: usize, rows: &mut Rows) {
    let wall = Instant::now();
    let mut config = SimConfig::new(seed, n);
    config.link = Link::LAN.with_loss(0.05);
    let mut sim = Sim::new(config);
    sim.run_until_true(60 * SECOND, SECOND / 4, Sim::all_alive);
    let start = sim.now();
    let nodes: Vec<usize> = (0..n).collect();
    let pauses = sim.random_pauses(
        seed,
        &nodes,
        SECOND,
        60 * SECOND,
        start,
        start + 600 * SECOND,
    );
    sim.run_until(start + 610 * SECOND);
    let wrong = sim.wrongly_down(start);
    let suspected_running = sim
        .false_suspicions(start)
        .iter()
        .filter(|r| r.kind == Kind::Suspect)
        .count();
    let suspicions = sim.count(Kind::Suspect, start);
    let refutations = sim.count(Kind::Refuted, start);
    let mut members: Vec<usize> = wrong.iter().filter_map(|r| r.subject).collect();
    members.sort_unstable();
    members.dedup();
    println!(
        "false positives ({n} nodes, 5% loss, {pauses} pauses of 1 s over 600 s): {} Down events about live members ({} members), \
         {suspicions} Suspect events ({suspected_running} while the member was running), {refutations} refutations; wall {:.1?}",
        wrong.len(),
        members.len(),
        wall.elapsed()
    );
    rows.push((
        format!("live members declared dead, {n} nodes, 5% loss + {pauses} 1 s pauses"),
        "0".into(),
        format!("{} ({} Down events)", members.len(), wrong.len()),
    ));
}
