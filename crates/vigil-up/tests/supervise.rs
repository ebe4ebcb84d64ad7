//! The supervision core without processes or clocks: what each dependant does, per its
//! `on_dependency_unhealthy` policy, when a dependency turns unhealthy, exits or comes back; the
//! statuses `vigil ps` shows; how the policy is read; and how restarts in a row are counted.

use std::path::Path;
use std::time::Duration;

use vigil_up::schedule::Event;
use vigil_up::stack::{OnDependencyUnhealthy, RestartPolicy, ServiceId, Stack};
use vigil_up::supervise::{restarts_in_a_row, Action, HealthState, RunState, Supervisor};

fn stack(text: &str) -> Stack {
    vigil_up::parse::parse(text, "stack.toml", Path::new(".")).expect("valid stack")
}

const PROBE: &str = "health = { probe = \"tcp://127.0.0.1:1\" }\n";

/// db (probed), one dependant per policy waiting for db to be healthy (r, w, i), and s waiting
/// for db to be started.
fn policies() -> Stack {
    stack(&format!(
        "[services.db]\ncommand = [\"db\"]\n{PROBE}\
         [services.r]\ncommand = [\"r\"]\ndepends_on = {{ db = \"healthy\" }}\non_dependency_unhealthy = \"restart\"\n\
         [services.w]\ncommand = [\"w\"]\ndepends_on = {{ db = \"healthy\" }}\n\
         [services.i]\ncommand = [\"i\"]\ndepends_on = {{ db = \"healthy\" }}\non_dependency_unhealthy = \"ignore\"\n\
         [services.s]\ncommand = [\"s\"]\ndepends_on = {{ db = \"started\" }}\n"
    ))
}

/// Every service of `stack` started and healthy, then the start ends.
fn all_up(stack: &Stack) -> Supervisor {
    let mut supervisor = Supervisor::new(stack);
    for i in 0..stack.services.len() {
        assert!(supervisor
            .record(stack, ServiceId(i), &Event::Started)
            .is_empty());
        if stack.services[i].has_health() {
            supervisor.record(stack, ServiceId(i), &Event::Healthy);
        }
    }
    assert!(supervisor.arm(stack).is_empty(), "nothing is down");
    supervisor
}

fn name(stack: &Stack, action: &Action) -> String {
    stack.service(action.service()).name.clone()
}

#[test]
fn an_unhealthy_dependency_holds_restart_and_wait_dependants_and_only_restart_ones_restart() {
    let stack = policies();
    let mut supervisor = all_up(&stack);
    let db = ServiceId(0);
    let unhealthy = Event::Unhealthy {
        reason: "refused".into(),
    };
    let held = supervisor.record(&stack, db, &unhealthy);
    let held: Vec<(String, String)> = held
        .iter()
        .map(|a| (name(&stack, a), a.describe()))
        .collect();
    assert_eq!(
        held,
        [
            (
                "r".to_owned(),
                "waiting: dependency db is down; restarts once they are back".to_owned()
            ),
            ("w".to_owned(), "waiting: dependency db is down".to_owned()),
        ],
        "i ignores it; s waits for db to be started only, and it still runs"
    );
    assert_eq!(supervisor.statuses()[1].shown(), "waiting");
    assert_eq!(supervisor.statuses()[1].waiting_on, ["db"]);
    assert_eq!(supervisor.statuses()[0].health, HealthState::Unhealthy);

    // db is stopped and restarted: s now waits too; nobody is released before db is healthy.
    let restarting = Event::Restarting {
        reason: "unhealthy".into(),
    };
    let more = supervisor.record(&stack, db, &restarting);
    assert_eq!(more.len(), 1);
    assert_eq!(name(&stack, &more[0]), "s");
    assert_eq!(supervisor.statuses()[0].state, RunState::Restarting);
    assert_eq!(supervisor.statuses()[0].restarts, 1);
    let started = supervisor.record(&stack, db, &Event::Started);
    assert_eq!(started.len(), 1, "s only needs db started: {started:?}");
    assert_eq!(
        started[0],
        Action::Resume {
            service: ServiceId(4)
        }
    );

    let back = supervisor.record(&stack, db, &Event::Healthy);
    assert_eq!(
        back,
        [
            Action::Restart {
                service: ServiceId(1)
            },
            Action::Resume {
                service: ServiceId(2)
            },
        ]
    );
    assert!(supervisor
        .statuses()
        .iter()
        .all(|s| s.waiting_on.is_empty()));
    assert!(
        supervisor.record(&stack, db, &Event::Healthy).is_empty(),
        "nothing changed"
    );
}

#[test]
fn nothing_follows_during_the_start() {
    let stack = policies();
    let mut supervisor = Supervisor::new(&stack);
    for i in 0..stack.services.len() {
        supervisor.record(&stack, ServiceId(i), &Event::Started);
    }
    let exited = Event::Exited {
        description: "status 1".into(),
    };
    assert!(supervisor.record(&stack, ServiceId(0), &exited).is_empty());
    assert_eq!(
        supervisor.statuses()[0].last_exit.as_deref(),
        Some("status 1")
    );
    // The start ends with db down: its dependants are held at once.
    let held = supervisor.arm(&stack);
    let names: Vec<String> = held.iter().map(|a| name(&stack, a)).collect();
    assert_eq!(names, ["r", "w", "s"]);
}

#[test]
fn a_failed_or_completed_dependant_is_left_alone() {
    let stack = policies();
    let mut supervisor = all_up(&stack);
    supervisor.record(
        &stack,
        ServiceId(1),
        &Event::Failed {
            reason: "gave up".into(),
        },
    );
    supervisor.record(&stack, ServiceId(2), &Event::Completed);
    let held = supervisor.record(
        &stack,
        ServiceId(0),
        &Event::Unhealthy {
            reason: "refused".into(),
        },
    );
    assert!(held.is_empty(), "{held:?}");
}

#[test]
fn a_group_dependency_is_down_only_when_its_policy_no_longer_holds() {
    let stack = stack(&format!(
        "[groups.q]\nmembers = [\"m1\", \"m2\", \"m3\"]\npolicy = \"quorum\"\n\
         [services.m1]\ncommand = [\"m\"]\n{PROBE}[services.m2]\ncommand = [\"m\"]\n{PROBE}\
         [services.m3]\ncommand = [\"m\"]\n{PROBE}\
         [services.c]\ncommand = [\"c\"]\ndepends_on = {{ q = \"healthy\" }}\non_dependency_unhealthy = \"restart\"\n"
    ));
    let mut supervisor = all_up(&stack);
    let sick = Event::Unhealthy {
        reason: "refused".into(),
    };
    assert!(
        supervisor.record(&stack, ServiceId(0), &sick).is_empty(),
        "2 of 3 hold"
    );
    let held = supervisor.record(&stack, ServiceId(1), &sick);
    assert_eq!(held.len(), 1);
    assert_eq!(
        held[0].describe(),
        "waiting: dependency q is down; restarts once they are back"
    );
    assert_eq!(
        supervisor.record(&stack, ServiceId(0), &Event::Healthy),
        [Action::Restart {
            service: ServiceId(3)
        }]
    );
}

#[test]
fn the_policy_is_read_and_a_bad_one_is_located() {
    let stack = policies();
    let policies: Vec<OnDependencyUnhealthy> = stack
        .services
        .iter()
        .map(|s| s.on_dependency_unhealthy)
        .collect();
    use OnDependencyUnhealthy::{Ignore, Restart, Wait};
    assert_eq!(policies, [Wait, Restart, Wait, Ignore, Wait]);
    let errors = vigil_up::parse::parse(
        "[services.a]\ncommand = [\"a\"]\non_dependency_unhealthy = \"panic\"\n",
        "stack.toml",
        Path::new("."),
    )
    .expect_err("a bad policy");
    assert_eq!(
        errors.0[0].to_string(),
        "stack.toml:3:27: unknown on_dependency_unhealthy \"panic\"; expected \"restart\", \"wait\" or \"ignore\""
    );
}

#[test]
fn compose_files_take_the_policy_as_an_extension() {
    let text = "services:\n  db:\n    image: db\n  api:\n    image: api\n    depends_on: [db]\n    x-vigil-on_dependency_unhealthy: restart\n";
    let stack = vigil_up::compose::parse(text, "compose.yml").expect("valid");
    let policy = |name: &str| {
        let id = stack.service_id(name).expect("known service");
        stack.service(id).on_dependency_unhealthy
    };
    assert_eq!(policy("db"), OnDependencyUnhealthy::Wait);
    assert_eq!(policy("api"), OnDependencyUnhealthy::Restart);
    let bad = text.replace("restart\n", "later\n");
    let errors = vigil_up::compose::parse(&bad, "compose.yml").expect_err("a bad policy");
    assert_eq!(
        errors.0[0].to_string(),
        "compose.yml:7:38: service api: unknown x-vigil-on_dependency_unhealthy \"later\"; expected restart, wait or ignore"
    );
}

#[test]
fn restarts_in_a_row_start_afresh_after_an_attempt_that_stayed_ready_long_enough() {
    let policy = RestartPolicy {
        backoff_max: Duration::from_secs(10),
        ..RestartPolicy::default()
    };
    assert_eq!(restarts_in_a_row(2, None, &policy), 2, "never ready");
    assert_eq!(
        restarts_in_a_row(2, Some(Duration::from_secs(9)), &policy),
        2,
        "ready too briefly"
    );
    assert_eq!(
        restarts_in_a_row(2, Some(Duration::from_secs(10)), &policy),
        0
    );
}

#[test]
fn a_log_over_its_cap_is_cut_in_place_and_its_content_kept_once() {
    let dir = std::env::temp_dir().join(format!("vigil-up-caplog-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let log = dir.join("api.log");
    assert!(!vigil_up::process::cap_log(&log, 10).expect("no log is fine"));
    std::fs::write(&log, "0123456789").expect("written");
    assert!(!vigil_up::process::cap_log(&log, 10).expect("at the cap"));
    std::fs::write(&log, "0123456789abc").expect("written");
    assert!(vigil_up::process::cap_log(&log, 10).expect("over the cap"));
    assert_eq!(std::fs::read_to_string(&log).expect("still there"), "");
    assert_eq!(
        std::fs::read_to_string(dir.join("api.log.1")).expect("kept"),
        "0123456789abc"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
