//! The scheduling core against the dependency graph, without processes or clocks: what starts
//! when, the concurrency limit, each group policy, waves, and the messages of failed starts.

use std::path::Path;
use std::time::Duration;

use vigil_up::schedule::{Event, Mode, Notice, Outcome, Scheduler};
use vigil_up::stack::ServiceId;

fn stack(text: &str) -> vigil_up::stack::Stack {
    vigil_up::parse::parse(text, "stack.toml", Path::new(".")).expect("valid stack")
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

struct Run {
    scheduler: Scheduler,
}

impl Run {
    fn new(text: &str, mode: Mode, limit: Option<usize>) -> Run {
        Run {
            scheduler: Scheduler::new(stack(text), mode, limit),
        }
    }

    fn id(&self, name: &str) -> ServiceId {
        self.scheduler
            .stack()
            .service_id(name)
            .expect("known service")
    }

    fn startable(&mut self, at: u64) -> Vec<String> {
        let ids = self.scheduler.startable(ms(at));
        ids.iter()
            .map(|id| self.scheduler.stack().service(*id).name.clone())
            .collect()
    }

    fn event(&mut self, name: &str, at: u64, event: Event) -> Vec<Notice> {
        let id = self.id(name);
        self.scheduler.record(id, ms(at), event)
    }

    fn healthy(&mut self, name: &str, at: u64) {
        self.event(name, at, Event::Started);
        self.event(name, at, Event::Healthy);
    }

    fn fail(&mut self, name: &str, at: u64) -> Vec<Notice> {
        self.event(
            name,
            at,
            Event::Failed {
                reason: "exited (status 1)".into(),
            },
        )
    }
}

const HEALTH: &str = "health = { probe = \"tcp://127.0.0.1:1\" }";

fn service(name: &str, deps: &str) -> String {
    format!("[services.{name}]\ncommand = [\"x\"]\n{HEALTH}\ndepends_on = {{ {deps} }}\n")
}

#[test]
fn a_service_starts_the_moment_its_own_dependencies_are_healthy() {
    // a → b → d and c → e: e must not wait for a, b or d (no waves).
    let text = [
        service("a", ""),
        service("b", "a = \"healthy\""),
        service("c", ""),
        service("d", "b = \"healthy\""),
        service("e", "c = \"healthy\""),
    ]
    .concat();
    let mut run = Run::new(&text, Mode::Graph, None);
    assert_eq!(run.startable(0), ["a", "c"]);
    run.event("a", 10, Event::Started);
    assert!(
        run.startable(10).is_empty(),
        "b waits for a to be healthy, not started"
    );
    run.healthy("c", 20);
    assert_eq!(run.startable(20), ["e"], "e goes while a is still starting");
    run.event("a", 30, Event::Healthy);
    assert_eq!(run.startable(30), ["b"]);
    run.healthy("b", 40);
    assert_eq!(run.startable(40), ["d"]);
    run.healthy("d", 50);
    run.healthy("e", 50);
    assert_eq!(
        run.scheduler.outcome(),
        Some(Outcome::Up {
            degraded: Vec::new()
        })
    );
}

#[test]
fn started_and_completed_conditions() {
    let text = format!(
        "{}{}{}",
        service("db", ""),
        "[services.migrate]\ncommand = [\"m\"]\ndepends_on = { db = \"started\" }\n",
        service("api", "migrate = \"completed\""),
    );
    let mut run = Run::new(&text, Mode::Graph, None);
    assert_eq!(run.startable(0), ["db"]);
    run.event("db", 5, Event::Started);
    assert_eq!(
        run.startable(5),
        ["migrate"],
        "started is enough for migrate"
    );
    run.event("migrate", 6, Event::Started);
    assert!(
        run.startable(6).is_empty(),
        "api waits for migrate to complete"
    );
    run.event("migrate", 50, Event::Completed);
    assert_eq!(run.startable(50), ["api"]);
}

#[test]
fn a_dependency_that_exits_before_it_is_healthy_fails_its_dependants() {
    let text = [service("db", ""), service("api", "db = \"healthy\"")].concat();
    let mut run = Run::new(&text, Mode::Graph, None);
    run.startable(0);
    run.event("db", 1, Event::Started);
    let notices = run.event("db", 2, Event::Completed);
    assert_eq!(
        notices,
        [Notice::Fatal {
            message:
                "api cannot start: db exited before it was healthy (it waits for db to be healthy)"
                    .into()
        }]
    );
    assert!(
        run.startable(3).is_empty(),
        "nothing starts after a fatal failure"
    );
}

#[test]
fn the_concurrency_limit_caps_services_starting_at_once() {
    let text: String = (1..=5).map(|i| service(&format!("s{i}"), "")).collect();
    let mut run = Run::new(&text, Mode::Graph, Some(2));
    assert_eq!(run.startable(0), ["s1", "s2"]);
    run.event("s1", 1, Event::Started);
    assert!(
        run.startable(1).is_empty(),
        "started is not ready: the slot is still held"
    );
    run.event("s1", 2, Event::Healthy);
    assert_eq!(run.startable(2), ["s3"]);
    run.fail("s2", 3);
    // s2 failed without a group: the start is over, nothing else is released.
    assert!(run.startable(3).is_empty());
    assert!(matches!(
        run.scheduler.outcome(),
        Some(Outcome::Failed { .. })
    ));
}

#[test]
fn the_stack_file_can_set_the_concurrency() {
    let text = format!(
        "concurrency = 1\n{}",
        (1..=3)
            .map(|i| service(&format!("s{i}"), ""))
            .collect::<String>()
    );
    let mut run = Run::new(&text, Mode::Graph, None);
    assert_eq!(run.startable(0), ["s1"]);
    run.healthy("s1", 1);
    assert_eq!(run.startable(1), ["s2"]);
}

fn group_stack(policy: &str) -> String {
    format!(
        "[groups.masters]\nmembers = [\"m1\", \"m2\", \"m3\"]\npolicy = {policy}\n{}{}{}{}",
        service("m1", ""),
        service("m2", ""),
        service("m3", ""),
        service("chunk", "masters = \"healthy\""),
    )
}

#[test]
fn quorum_goes_on_with_two_of_three_and_says_so_when_one_fails() {
    let mut run = Run::new(&group_stack("\"quorum\""), Mode::Graph, None);
    assert_eq!(run.startable(0), ["m1", "m2", "m3"]);
    run.healthy("m1", 10);
    assert!(run.startable(10).is_empty(), "one of three is no quorum");
    run.healthy("m3", 20);
    assert_eq!(run.startable(20), ["chunk"], "two of three is");
    let notices = run.fail("m2", 30);
    assert_eq!(notices.len(), 1);
    let Notice::Degraded { service, message } = &notices[0] else {
        panic!("expected a degraded notice, got {notices:?}");
    };
    assert_eq!(service, "m2");
    assert!(
        message.contains("group masters (quorum, 2 of 3) still holds with 2 of 3 left"),
        "{message}"
    );
    run.healthy("chunk", 40);
    let Some(Outcome::Up { degraded }) = run.scheduler.outcome() else {
        panic!("expected the stack up");
    };
    assert_eq!(degraded.len(), 1);
}

#[test]
fn quorum_fails_the_start_when_a_majority_fails() {
    let mut run = Run::new(&group_stack("\"quorum\""), Mode::Graph, None);
    run.startable(0);
    run.fail("m1", 10);
    let notices = run.fail("m2", 20);
    assert_eq!(
        notices,
        [Notice::Fatal {
            message: "group masters needs quorum, 2 of 3 but 2 of 3 failed (m1, m2); last: m2: exited (status 1)"
                .into()
        }]
    );
    assert!(matches!(
        run.scheduler.outcome(),
        Some(Outcome::Failed { .. })
    ));
}

#[test]
fn all_fails_the_start_on_the_first_failure() {
    let mut run = Run::new(&group_stack("\"all\""), Mode::Graph, None);
    run.startable(0);
    run.healthy("m1", 10);
    run.healthy("m2", 10);
    assert!(run.startable(10).is_empty(), "all means all three");
    let notices = run.fail("m3", 20);
    assert!(
        matches!(&notices[..], [Notice::Fatal { message }] if message.starts_with("group masters needs all 3 but 1 of 3 failed (m3)")),
        "{notices:?}"
    );
}

#[test]
fn min_healthy_needs_that_many() {
    let mut run = Run::new(&group_stack("{ min_healthy = 3 }"), Mode::Graph, None);
    run.startable(0);
    run.healthy("m1", 10);
    run.healthy("m2", 10);
    assert!(run.startable(10).is_empty());
    run.healthy("m3", 11);
    assert_eq!(run.startable(11), ["chunk"]);

    let mut run = Run::new(&group_stack("{ min_healthy = 1 }"), Mode::Graph, None);
    run.startable(0);
    run.healthy("m2", 10);
    assert_eq!(run.startable(10), ["chunk"]);
    let notices = run.fail("m1", 12);
    assert!(
        matches!(&notices[..], [Notice::Degraded { .. }]),
        "{notices:?}"
    );
}

#[test]
fn optional_waits_for_every_member_to_settle_then_goes_on_whatever_happened() {
    let mut run = Run::new(&group_stack("\"optional\""), Mode::Graph, None);
    run.startable(0);
    run.healthy("m1", 10);
    run.fail("m2", 20);
    assert!(run.startable(20).is_empty(), "m3 has not settled yet");
    let notices = run.fail("m3", 30);
    assert!(
        matches!(&notices[..], [Notice::Degraded { .. }]),
        "{notices:?}"
    );
    assert_eq!(run.startable(30), ["chunk"]);
}

#[test]
fn a_failed_direct_dependency_names_the_dependant_and_the_reason() {
    let text = [service("db", ""), service("api", "db = \"healthy\"")].concat();
    let mut run = Run::new(&text, Mode::Graph, None);
    run.startable(0);
    let notices = run.event(
        "db",
        5,
        Event::Failed {
            reason: "unhealthy (connection refused); gave up after 3 restarts".into(),
        },
    );
    assert_eq!(
        notices,
        [
            Notice::Fatal {
                message: "api cannot start: its dependency db failed: unhealthy (connection refused); gave up after 3 restarts".into()
            },
            Notice::Fatal {
                message: "db failed: unhealthy (connection refused); gave up after 3 restarts".into()
            }
        ]
    );
}

#[test]
fn restarts_are_counted() {
    let text = service("db", "");
    let mut run = Run::new(&text, Mode::Graph, None);
    run.startable(0);
    run.event("db", 1, Event::Started);
    run.event(
        "db",
        2,
        Event::Restarting {
            reason: "exited (status 1); restart 1 in 150ms".into(),
        },
    );
    run.healthy("db", 200);
    let record = &run.scheduler.records()[0];
    assert_eq!(record.attempts, 2);
    assert_eq!(record.restarts.len(), 1);
    assert_eq!(record.ready, Some(ms(200)));
    assert_eq!(
        record.started,
        Some(ms(1)),
        "time to started counts the first start"
    );
}

#[test]
fn waves_hold_a_level_until_the_whole_level_before_it_settled() {
    let text = [
        service("a", ""),
        service("slow", ""),
        service("b", "a = \"healthy\""),
    ]
    .concat();
    let mut graph = Run::new(&text, Mode::Graph, None);
    graph.startable(0);
    graph.healthy("a", 10);
    assert_eq!(graph.startable(10), ["b"]);

    let mut waves = Run::new(&text, Mode::Waves, None);
    assert_eq!(waves.startable(0), ["a", "slow"]);
    waves.healthy("a", 10);
    assert!(
        waves.startable(10).is_empty(),
        "b waits for slow, as a wave would"
    );
    waves.healthy("slow", 90);
    assert_eq!(waves.startable(90), ["b"]);
}
