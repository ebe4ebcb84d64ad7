//! An election under faults, checked for linearizability by a checker nobody here wrote
//! (stateright's `LinearizabilityTester`) against a sequential model of the election, and for
//! the holders' own safety: three voters on 127.0.0.1, killed (-9) and restarted, or paused
//! (SIGSTOP) and resumed, one at a time, at seeded random moments, while three clients —
//! each with its session on its own agent — campaign, resign and read the election with
//! `?consistent`, at seeded random moments too.
//!
//! An operation that gets no definite answer (a timeout, a broken connection, 503) is left in
//! flight: the checker may place it anywhere after its start, or nowhere. The holders' side:
//! a client believes it leads from an answer that says so until it asks to resign; no two
//! clients believe at once, and each belief has a higher fencing token than the one before.
//!
//! Under the same faults the voters' own Raft is watched: every voter is asked which leader it
//! knows in which term, continuously, and no term may have two. Half the faults go to the voter
//! that leads at that moment, so a leader killed -9 (replaced through the fast path, an election
//! started as soon as its port refuses) and a leader frozen (replaced after the election
//! timeout) both come up in every run.
//!
//! The second test is the holders' leases under faults: clients with 1 s sessions renew them,
//! read the election on their own agent, and believe only while their lease (as `vigil elect`
//! computes it) runs; the faults hit the agent of whoever leads, so its view and renewals stop
//! while the cluster moves on. No two stretches of belief overlap on the test's one clock. (With
//! a lease three times too long, the same test finds a holder believing 400 ms too long.)

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::raft::{agreed_leader, three_voters, Node, SETTLE, VOTERS};
use common::{free_port, get_json, http, wait_for, TOKEN};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use stateright::semantics::{ConsistencyTester, LinearizabilityTester, SequentialSpec};

/// How long the clients and the faults run per seed.
const RUN: Duration = Duration::from_secs(5);
/// How long the checker may search for a linearization.
const CHECK_WITHIN: Duration = Duration::from_secs(60);
const ELECTION: &str = "/v1/elections/head";

/// What a client asks.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    Campaign(usize),
    Resign(usize),
    Read,
}

/// What it was answered.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ret {
    /// Joined; holding with this token, or waiting.
    Campaigned(Option<u64>),
    Resigned,
    NotCandidate,
    /// The leader and its token.
    Leader(Option<(usize, u64)>),
}

/// The election as a sequential object, policy `first`: candidates in line, the first leads.
/// A grant's token is not chosen by the model (the cluster takes it from its log) but must be
/// higher than every earlier grant's: the model learns each one when an answer first shows it.
#[derive(Clone, Debug, Default)]
struct Election {
    line: Vec<usize>,
    /// The tokens of the grants so far, in order; `None` until an answer shows it.
    grants: Vec<Option<u64>>,
}

impl Election {
    fn apply(&mut self, op: &Op) -> Ret {
        match op {
            Op::Campaign(c) => {
                if !self.line.contains(c) {
                    self.line.push(*c);
                    if self.line.len() == 1 {
                        self.grants.push(None);
                    }
                }
                Ret::Campaigned((self.line.first() == Some(c)).then_some(0))
            }
            Op::Resign(c) => match self.line.iter().position(|x| x == c) {
                None => Ret::NotCandidate,
                Some(at) => {
                    self.line.remove(at);
                    if at == 0 && !self.line.is_empty() {
                        self.grants.push(None);
                    }
                    Ret::Resigned
                }
            },
            Op::Read => Ret::Leader(self.line.first().map(|c| (*c, 0))),
        }
    }

    /// Whether `token` can be the current grant's: the one already seen, or, unseen, higher
    /// than every earlier grant's. Learns it.
    fn token_fits(&mut self, token: u64) -> bool {
        let Some((current, earlier)) = self.grants.split_last_mut() else {
            return false;
        };
        match current {
            Some(known) => *known == token,
            None => {
                let fits = earlier.iter().flatten().all(|t| *t < token);
                *current = Some(token);
                fits
            }
        }
    }
}

impl SequentialSpec for Election {
    type Op = Op;
    type Ret = Ret;

    fn invoke(&mut self, op: &Op) -> Ret {
        self.apply(op)
    }

    fn is_valid_step(&mut self, op: &Op, ret: &Ret) -> bool {
        let expected = self.apply(op);
        match (expected, ret) {
            (Ret::Campaigned(Some(_)), Ret::Campaigned(Some(token))) => self.token_fits(*token),
            (Ret::Leader(Some((c, _))), Ret::Leader(Some((d, token)))) => {
                c == *d && self.token_fits(*token)
            }
            (expected, ret) => expected == *ret,
        }
    }
}

/// A thread id per client and attempt: an operation left in flight retires its id.
type Thread = (usize, u32);

/// One client's belief that it leads: from, until, with its token.
#[derive(Clone, Debug)]
struct Belief {
    client: usize,
    from: Instant,
    until: Option<Instant>,
    token: u64,
}

/// How an operation ended.
#[derive(Clone, Debug)]
enum Outcome {
    Answered(Ret),
    /// Its connection was refused: it never reached the cluster.
    NotSent,
    /// No definite answer: it may or may not have happened.
    Lost,
}

/// One operation of one client: what, when it was asked, how and when it ended.
#[derive(Clone, Debug)]
struct Record {
    thread: Thread,
    op: Op,
    asked: Instant,
    ended: Instant,
    outcome: Outcome,
}

struct Shared {
    records: Vec<Record>,
    beliefs: Vec<Belief>,
}

/// The history as the checker takes it, in real-time order: operations that never reached the
/// cluster, and reads that got no answer (they change nothing), are left out; a write with no
/// answer stays in flight.
fn tester_of(records: &[Record]) -> (LinearizabilityTester<Thread, Election>, usize, usize) {
    enum Event<'a> {
        Invoke(&'a Record),
        Return(&'a Record, &'a Ret),
    }
    let mut events: Vec<(Instant, Event)> = Vec::new();
    let (mut answered, mut lost) = (0, 0);
    for record in records {
        match &record.outcome {
            Outcome::NotSent => {}
            Outcome::Lost if record.op == Op::Read => {}
            Outcome::Lost => {
                lost += 1;
                events.push((record.asked, Event::Invoke(record)));
            }
            Outcome::Answered(ret) => {
                answered += 1;
                events.push((record.asked, Event::Invoke(record)));
                events.push((record.ended, Event::Return(record, ret)));
            }
        }
    }
    events.sort_by_key(|(at, _)| *at);
    let mut tester = LinearizabilityTester::new(Election::default());
    for (_, event) in events {
        match event {
            Event::Invoke(r) => tester.on_invoke(r.thread, r.op.clone()).unwrap(),
            Event::Return(r, ret) => tester.on_return(r.thread, ret.clone()).unwrap(),
        };
    }
    (tester, answered, lost)
}

/// How `op` ended.
fn ask(api: SocketAddr, session: &str, op: &Op) -> Outcome {
    match http_outcome(api, session, op) {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Outcome::NotSent,
        Err(_) => Outcome::Lost,
        Ok(None) => Outcome::Lost,
        Ok(Some(ret)) => Outcome::Answered(ret),
    }
}

/// A definite answer to `op`, `None` when it may or may not have happened; the error of a
/// connection that failed.
fn http_outcome(api: SocketAddr, session: &str, op: &Op) -> std::io::Result<Option<Ret>> {
    let (method, path, body) = match op {
        Op::Campaign(c) => (
            "POST",
            format!("{ELECTION}/campaign"),
            format!(r#"{{"candidate": "c{c}", "session": "{session}"}}"#),
        ),
        Op::Resign(c) => (
            "POST",
            format!("{ELECTION}/resign"),
            format!(r#"{{"candidate": "c{c}", "session": "{session}"}}"#),
        ),
        Op::Read => ("GET", format!("{ELECTION}?consistent"), String::new()),
    };
    let (code, text) = http(api, method, &path, Some(TOKEN), &body)?;
    let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let token = || answer["token"].as_u64().unwrap();
    Ok(match (op, code) {
        (Op::Campaign(_), 200) => Some(Ret::Campaigned((answer["holding"] == true).then(token))),
        (Op::Resign(_), 200) => Some(Ret::Resigned),
        (Op::Resign(_), 409) => Some(Ret::NotCandidate),
        (Op::Read, 200) => {
            let leader = &answer["leader"];
            let id = leader["id"].as_str().and_then(|id| id.strip_prefix('c'));
            let id: usize = id.and_then(|id| id.parse().ok()).unwrap();
            Some(Ret::Leader(Some((id, leader["token"].as_u64().unwrap()))))
        }
        (Op::Read, 404) => Some(Ret::Leader(None)),
        (_, 0 | 503) => None,
        (op, code) => panic!("{op:?} answered {code}: {text}"),
    })
}

fn client(
    me: usize,
    api: SocketAddr,
    session: String,
    seed: u64,
    shared: Arc<Mutex<Shared>>,
    until: Instant,
) {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(31).wrapping_add(me as u64));
    let mut attempt = 0u32;
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(rng.random_range(20..120)));
        let op = match rng.random_range(0..10) {
            0..=3 => Op::Campaign(me),
            4..=6 => Op::Resign(me),
            _ => Op::Read,
        };
        let thread = (me, attempt);
        let asked = Instant::now();
        if op == Op::Resign(me) {
            // It stops believing the moment it asks to resign.
            let mut shared = shared.lock().unwrap();
            for belief in shared.beliefs.iter_mut() {
                if belief.client == me && belief.until.is_none() {
                    belief.until = Some(asked);
                }
            }
        }
        let outcome = ask(api, &session, &op);
        let ended = Instant::now();
        let mut shared = shared.lock().unwrap();
        let holding = match &outcome {
            Outcome::Answered(Ret::Campaigned(Some(token))) => Some(*token),
            Outcome::Answered(Ret::Leader(Some((leader, token)))) if *leader == me => Some(*token),
            _ => None,
        };
        if let Some(token) = holding {
            let believing = shared
                .beliefs
                .iter()
                .any(|b| b.client == me && b.until.is_none());
            if !believing {
                shared.beliefs.push(Belief {
                    client: me,
                    from: ended,
                    until: None,
                    token,
                });
            }
        }
        if matches!(outcome, Outcome::Lost) {
            attempt += 1;
        }
        shared.records.push(Record {
            thread,
            op,
            asked,
            ended,
            outcome,
        });
    }
}

/// Kills and restarts, or pauses and resumes, one voter at a time, chosen by `pick`.
fn faults(
    nodes: &mut [Node],
    seed: u64,
    until: Instant,
    pick: impl Fn(&mut StdRng, &[Node]) -> usize,
) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut done = Vec::new();
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(rng.random_range(300..900)));
        let victim = pick(&mut rng, nodes);
        let down = Duration::from_millis(rng.random_range(400..1_500));
        let role = match nodes[victim].leader() {
            Some(view) if view["is_leader"] == true => " (leader)",
            _ => "",
        };
        if rng.random_bool(0.5) {
            nodes[victim].kill();
            std::thread::sleep(down);
            nodes[victim].spawn();
            done.push(format!("kill -9 {}{role} for {down:?}", nodes[victim].id));
        } else {
            nodes[victim].signal("-STOP");
            std::thread::sleep(down);
            nodes[victim].signal("-CONT");
            done.push(format!("SIGSTOP {}{role} for {down:?}", nodes[victim].id));
        }
    }
    done
}

/// The voter that leads now, as the first running voter to answer names it, half the time;
/// otherwise, or when none answers, any voter.
fn leader_or_any(rng: &mut StdRng, nodes: &[Node]) -> usize {
    let leader = nodes.iter().filter(|n| n.child.is_some()).find_map(|n| {
        let id = n.leader()?["leader_id"].as_str()?.to_owned();
        nodes.iter().position(|m| m.id == id)
    });
    match leader {
        Some(i) if rng.random_bool(0.5) => i,
        _ => rng.random_range(0..nodes.len()),
    }
}

/// Asks the voter at `api` which leader it knows, every 20 ms until `until`: each term it named a
/// leader in, with that leader. Its own thread per voter, so a frozen voter holds up only itself.
fn leaders_seen(api: SocketAddr, until: Instant) -> std::thread::JoinHandle<Vec<(u64, String)>> {
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        while Instant::now() < until {
            if let Some((200, view)) = get_json(api, "/v1/leader") {
                if let (Some(term), Some(leader)) =
                    (view["term"].as_u64(), view["leader_id"].as_str())
                {
                    seen.push((term, leader.to_owned()));
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        seen
    })
}

fn run(seed: u64) {
    let (mut nodes, ports, dir) = three_voters(&format!("elect-faults-{seed}"));
    agreed_leader(&nodes);
    // The sessions follow a member that no fault touches: a session whose node dies is given
    // up by the cluster, a release the clients did not ask for and the model does not have.
    let member = Node::start("m1", &dir, free_port(), &ports, false, &VOTERS);
    wait_for(SETTLE, || {
        let (code, _) = member.get("/v1/elections")?;
        (code == 200).then_some(())
    })
    .expect("the member answers");
    let apis: Vec<SocketAddr> = nodes.iter().map(|n| n.api).collect();
    let sessions: Vec<String> = apis
        .iter()
        .map(|api| {
            let body = r#"{"ttl": "10m", "node": "m1"}"#;
            let (code, body) = wait_for(SETTLE, || {
                let (code, body) = http(*api, "POST", "/v1/sessions", Some(TOKEN), body).ok()?;
                (code != 400 || !body.contains("no member")).then_some((code, body))
            })
            .unwrap();
            assert_eq!(code, 201, "{body}");
            let body: Value = serde_json::from_str(&body).unwrap();
            body["id"].as_str().unwrap().to_owned()
        })
        .collect();
    let shared = Arc::new(Mutex::new(Shared {
        records: Vec::new(),
        beliefs: Vec::new(),
    }));
    let until = Instant::now() + RUN;
    let clients: Vec<_> = (0..apis.len())
        .map(|me| {
            let (api, session, shared) = (apis[me], sessions[me].clone(), shared.clone());
            std::thread::spawn(move || client(me, api, session, seed, shared, until))
        })
        .collect();
    let watchers: Vec<_> = apis.iter().map(|api| leaders_seen(*api, until)).collect();
    let done = faults(&mut nodes, seed, until, leader_or_any);
    for c in clients {
        c.join().unwrap();
    }
    let mut leaders: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    for (term, leader) in watchers.into_iter().flat_map(|w| w.join().unwrap()) {
        leaders.entry(term).or_default().insert(leader);
    }
    for (term, named) in &leaders {
        assert!(
            named.len() == 1,
            "seed {seed}: term {term} had two leaders, {named:?} (faults: {done:?})"
        );
    }
    let shared = shared.lock().unwrap();
    let (tester, answered, unanswered) = tester_of(&shared.records);
    let shown = tester.clone();
    let (sender, checked) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(tester.serialized_history().map(|h| h.len()));
    });
    let ops = match checked.recv_timeout(CHECK_WITHIN) {
        Ok(Some(ops)) => ops,
        Ok(None) => panic!(
            "seed {seed}: the election history is not linearizable (faults: {done:?}; {shown:?})"
        ),
        Err(_) => panic!(
            "seed {seed}: no linearization found within {CHECK_WITHIN:?} for {answered} answered and {unanswered} unanswered operations (faults: {done:?}; {shown:?})"
        ),
    };

    let mut beliefs = shared.beliefs.clone();
    beliefs.sort_by_key(|b| b.from);
    for pair in beliefs.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(
            a.until.is_some_and(|until| until <= b.from) || a.client == b.client,
            "seed {seed}: c{} believed it led until {:?} while c{} believed from {:?}",
            a.client,
            a.until,
            b.client,
            b.from
        );
        // A client whose resignation got no answer may still hold the same grant, and see it
        // again: the same token, believed twice. Any other grant has a higher one.
        assert!(
            a.token < b.token || (a.client == b.client && a.token == b.token),
            "seed {seed}: tokens {} then {}",
            a.token,
            b.token
        );
    }
    let per_client: BTreeMap<usize, usize> = beliefs.iter().fold(BTreeMap::new(), |mut m, b| {
        *m.entry(b.client).or_default() += 1;
        m
    });
    eprintln!(
        "seed {seed}: {ops} operations linearized ({answered} answered, {unanswered} not), {} terms of leadership {per_client:?}, Raft terms with a leader {}, faults {done:?}",
        beliefs.len(),
        leaders.len()
    );
    assert!(
        beliefs.len() >= 2,
        "seed {seed}: leadership changed hands under the faults: {beliefs:?}"
    );
}

#[test]
fn an_election_under_faults_is_linearizable_and_never_has_two_leaders() {
    for seed in [1, 2, 3] {
        run(seed);
    }
}

#[test]
fn the_model_refuses_two_leaders_and_tokens_that_go_back() {
    let now = Instant::now();
    let at = |ms: u64| now + Duration::from_millis(ms);
    let record = |client: usize, op: Op, asked: u64, ended: u64, ret: Ret| Record {
        thread: (client, 0),
        op,
        asked: at(asked),
        ended: at(ended),
        outcome: Outcome::Answered(ret),
    };
    let both_lead = [
        record(0, Op::Campaign(0), 0, 10, Ret::Campaigned(Some(5))),
        record(1, Op::Campaign(1), 20, 30, Ret::Campaigned(Some(6))),
    ];
    assert!(tester_of(&both_lead).0.serialized_history().is_none());
    let token_back = [
        record(0, Op::Campaign(0), 0, 10, Ret::Campaigned(Some(5))),
        record(1, Op::Campaign(1), 20, 30, Ret::Campaigned(None)),
        record(0, Op::Resign(0), 40, 50, Ret::Resigned),
        record(1, Op::Read, 60, 70, Ret::Leader(Some((1, 4)))),
    ];
    assert!(tester_of(&token_back).0.serialized_history().is_none());
    let handover = [
        record(0, Op::Campaign(0), 0, 10, Ret::Campaigned(Some(5))),
        record(1, Op::Campaign(1), 20, 30, Ret::Campaigned(None)),
        record(0, Op::Resign(0), 40, 50, Ret::Resigned),
        record(1, Op::Read, 60, 70, Ret::Leader(Some((1, 9)))),
    ];
    assert_eq!(
        tester_of(&handover).0.serialized_history().map(|h| h.len()),
        Some(4)
    );
}

/// A holder's lease after a renewal sent at `sent`, as `vigil elect` computes it: the TTL less
/// the clock margin (1% each way) and 10 ms.
fn lease_until(sent: Instant, ttl: Duration) -> Instant {
    sent + ttl
        .mul_f64(0.99 / 1.01)
        .saturating_sub(Duration::from_millis(10))
}

/// One client holding a session with a 1 s TTL on its own agent, renewing it, campaigning and
/// reading the election there; it believes it leads while its agent's view shows its session
/// holding and its lease runs, and records each stretch of belief.
fn leaseholder(me: usize, api: SocketAddr, seed: u64, until: Instant) -> Vec<Belief> {
    let ttl = Duration::from_secs(1);
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(131).wrapping_add(me as u64));
    let mut beliefs: Vec<Belief> = Vec::new();
    let mut session: Option<(String, Instant)> = None;
    let mut last_renewal = Instant::now();
    let close = |beliefs: &mut Vec<Belief>, at: Instant| {
        if let Some(belief) = beliefs.last_mut().filter(|b| b.until.is_none()) {
            belief.until = Some(at.max(belief.from));
        }
    };
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(rng.random_range(10..60)));
        let now = Instant::now();
        let Some((id, lease)) = session.clone() else {
            let sent = Instant::now();
            let body = r#"{"ttl": "1s"}"#;
            if let Ok((201, body)) = http(api, "POST", "/v1/sessions", Some(TOKEN), body) {
                let body: Value = serde_json::from_str(&body).unwrap();
                let id = body["id"].as_str().unwrap().to_owned();
                let campaign = format!(r#"{{"candidate": "c{me}", "session": "{id}"}}"#);
                let path = format!("{ELECTION}/campaign");
                let _ = http(api, "POST", &path, Some(TOKEN), &campaign);
                session = Some((id, lease_until(sent, ttl)));
                last_renewal = sent;
            }
            continue;
        };
        if now >= lease {
            close(&mut beliefs, lease);
        }
        if now.duration_since(last_renewal) >= ttl / 4 {
            let sent = Instant::now();
            last_renewal = sent;
            let path = format!("/v1/sessions/{id}/renew");
            match http(api, "PUT", &path, Some(TOKEN), "") {
                Ok((200, _)) => session = Some((id.clone(), lease.max(lease_until(sent, ttl)))),
                Ok((404 | 409, _)) => {
                    close(&mut beliefs, Instant::now().min(lease));
                    session = None;
                    continue;
                }
                _ => {}
            }
        }
        if rng.random_range(0..200) == 0 {
            // It gives the role up now and then, so that the role moves without faults too.
            close(&mut beliefs, Instant::now());
            let body = format!(r#"{{"candidate": "c{me}", "session": "{id}"}}"#);
            let _ = http(
                api,
                "POST",
                &format!("{ELECTION}/resign"),
                Some(TOKEN),
                &body,
            );
            let _ = http(
                api,
                "DELETE",
                &format!("/v1/sessions/{id}"),
                Some(TOKEN),
                "",
            );
            session = None;
            continue;
        }
        let Some((code, view)) = common::get_json(api, ELECTION) else {
            continue;
        };
        let lease = session.as_ref().map_or(now, |(_, lease)| *lease);
        let seen = Instant::now();
        let leader = &view["leader"];
        let holds = code == 200
            && leader["session"].as_str() == Some(id.as_str())
            && leader["yielding"] == false;
        let believing = beliefs.last().is_some_and(|b| b.until.is_none());
        match (holds && seen < lease, believing) {
            (true, false) => beliefs.push(Belief {
                client: me,
                from: seen,
                until: None,
                token: leader["token"].as_u64().unwrap(),
            }),
            (false, true) => close(&mut beliefs, seen.min(lease)),
            _ => {}
        }
    }
    let end = session.map_or_else(Instant::now, |(_, lease)| lease.min(Instant::now()));
    close(&mut beliefs, end);
    beliefs
}

/// The index of the node whose client leads now, as any node answers; a random one otherwise.
fn holders_node(rng: &mut StdRng, nodes: &[Node]) -> usize {
    let leader = nodes.iter().find_map(|n| {
        let (_, view) = n.get(ELECTION)?;
        let id = view["leader"]["id"]
            .as_str()?
            .strip_prefix('c')?
            .parse::<usize>()
            .ok()?;
        (id < nodes.len()).then_some(id)
    });
    leader.unwrap_or_else(|| rng.random_range(0..nodes.len()))
}

#[test]
fn holders_with_leases_never_believe_at_once_under_faults() {
    for seed in [11, 12] {
        let (mut nodes, _, _dir) = three_voters(&format!("elect-leases-{seed}"));
        agreed_leader(&nodes);
        let until = Instant::now() + RUN;
        let clients: Vec<_> = nodes
            .iter()
            .enumerate()
            .map(|(me, node)| {
                let api = node.api;
                std::thread::spawn(move || leaseholder(me, api, seed, until))
            })
            .collect();
        // The faults hit the agent of the client that leads: its view and its renewals stop,
        // while the others carry on.
        let done = faults(&mut nodes, seed, until, holders_node);
        let mut beliefs: Vec<Belief> = clients
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect();
        beliefs.sort_by_key(|b| b.from);
        for (i, a) in beliefs.iter().enumerate() {
            for b in beliefs.iter().skip(i + 1).filter(|b| b.client != a.client) {
                let a_until = a.until.unwrap();
                assert!(
                    a_until <= b.from,
                    "seed {seed}: c{} believed it led {:?} past the moment c{} began (faults {done:?})",
                    a.client,
                    a_until.saturating_duration_since(b.from),
                    b.client,
                );
                assert!(
                    a.token < b.token,
                    "seed {seed}: tokens {} then {}",
                    a.token,
                    b.token
                );
            }
        }
        eprintln!(
            "seed {seed}: {} stretches of belief, none overlapping; faults {done:?}",
            beliefs.len()
        );
        assert!(
            beliefs.len() >= 2,
            "seed {seed}: the role moved: {beliefs:?}"
        );
    }
}
