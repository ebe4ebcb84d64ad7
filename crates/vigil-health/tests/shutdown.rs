//! The shutdown coordinator: stopping first, phases and priorities in order, timeouts and
//! failures reported, and shutdown on a critical check that stays critical.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{engine, spec, state, status, Script, BOUND, INTERVAL};
use tokio::sync::Barrier;
use tokio::time::{timeout, Instant};
use vigil_health::shutdown::{Coordinator, Outcome, Phase, Reason, StepReport};
use vigil_health::{CheckSpec, CheckState, Engine, Event, Report, Status, Thresholds, Verdict};

type Log = Arc<Mutex<Vec<String>>>;

/// A step that appends `name` to `log` and succeeds.
fn logs(
    log: &Log,
    name: &str,
) -> impl FnOnce() -> std::future::Ready<Result<(), String>> + Send + 'static {
    let (log, name) = (log.clone(), name.to_owned());
    move || {
        log.lock().expect("log").push(name);
        std::future::ready(Ok(()))
    }
}

fn names(steps: &[StepReport]) -> Vec<&str> {
    steps.iter().map(|s| s.name.as_str()).collect()
}

fn outcome<'a>(steps: &'a [StepReport], name: &str) -> &'a Outcome {
    &steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step {name} in {steps:?}"))
        .outcome
}

/// What `/health/ready` answers (None without the `axum` feature).
#[cfg(feature = "axum")]
async fn readiness(engine: &Engine) -> Option<u16> {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;
    let response = vigil_health::http::router::<()>(engine.clone())
        .oneshot(
            Request::get("/health/ready")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    Some(response.status().as_u16())
}

#[cfg(not(feature = "axum"))]
async fn readiness(_: &Engine) -> Option<u16> {
    None
}

/// An engine whose only check, a critical TTL check, passes.
fn healthy_engine() -> Engine {
    let engine = engine();
    engine
        .register_ttl(
            CheckSpec::new("db")
                .critical(true)
                .thresholds(Thresholds::immediate()),
            Duration::from_secs(60),
        )
        .expect("valid");
    engine.update_ttl("db", Verdict::Pass, None).expect("ttl");
    assert_eq!(status(&engine).0, Status::Healthy);
    engine
}

#[tokio::test(start_paused = true)]
async fn the_node_is_stopping_before_the_first_pre_shutdown_hook_runs() {
    let engine = healthy_engine();
    let shutdown = Coordinator::new().with_engine(engine.clone());
    // What the hook saw: the status, and what /health/ready answered.
    type Seen = Vec<(Status, Option<u16>)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    {
        let (engine, seen) = (engine.clone(), seen.clone());
        shutdown.hook(Phase::PreShutdown, "deregister", move || async move {
            let ready = readiness(&engine).await;
            seen.lock()
                .expect("seen")
                .push((engine.snapshot().status(), ready));
            Ok::<_, String>(())
        });
    }
    let mut events = engine.subscribe();
    assert!(shutdown.trigger(Reason::Requested("deploy".into())));
    let report = shutdown.run().await;
    let seen = seen.lock().expect("seen").clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].0,
        Status::Stopping,
        "stopping before the first hook runs"
    );
    if let Some(code) = seen[0].1 {
        assert_eq!(
            code, 503,
            "readiness already fails when the first hook runs"
        );
    }
    assert_eq!(report.reason, Reason::Requested("deploy".into()));
    assert_eq!(names(&report.steps), ["deregister"]);
    assert!(report.is_clean());
    match events.try_recv().expect("a status event") {
        Event::StatusChanged {
            from, to, message, ..
        } => {
            assert_eq!(
                (from, to, message.as_str()),
                (Status::Healthy, Status::Stopping, "shutting down")
            );
        }
        other => panic!("unexpected event {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn phases_run_in_order_whatever_the_registration_order() {
    let shutdown = Coordinator::new();
    let log: Log = Arc::default();
    shutdown.hook(Phase::PostShutdown, "post", logs(&log, "post"));
    shutdown.component("server", 10, Duration::from_secs(5), logs(&log, "server"));
    shutdown.hook(
        Phase::Shutdown,
        "shutdown-hook",
        logs(&log, "shutdown-hook"),
    );
    shutdown.hook(Phase::PreShutdown, "pre-1", logs(&log, "pre-1"));
    shutdown.hook(Phase::PreShutdown, "pre-2", logs(&log, "pre-2"));
    shutdown.trigger(Reason::Signal("SIGTERM"));
    let report = shutdown.run().await;
    let expected = ["pre-1", "pre-2", "shutdown-hook", "server", "post"];
    assert_eq!(*log.lock().expect("log"), expected);
    assert_eq!(names(&report.steps), expected);
    let phases: Vec<Phase> = report.steps.iter().map(|s| s.phase).collect();
    assert_eq!(
        phases,
        [
            Phase::PreShutdown,
            Phase::PreShutdown,
            Phase::Shutdown,
            Phase::Shutdown,
            Phase::PostShutdown
        ]
    );
    assert!(report.steps.iter().all(|s| s.outcome == Outcome::Completed));
}

#[tokio::test(start_paused = true)]
async fn components_stop_by_ascending_priority() {
    let shutdown = Coordinator::new();
    let log: Log = Arc::default();
    for (name, priority) in [("workers", 30), ("http", -5), ("db", 100), ("queue", 10)] {
        shutdown.component(name, priority, Duration::from_secs(5), logs(&log, name));
    }
    shutdown.trigger(Reason::Requested("test".into()));
    let report = shutdown.run().await;
    assert_eq!(
        *log.lock().expect("log"),
        ["http", "queue", "workers", "db"]
    );
    assert!(report.is_clean());
}

#[tokio::test(start_paused = true)]
async fn components_of_equal_priority_stop_concurrently() {
    let shutdown = Coordinator::new();
    let log: Log = Arc::default();
    // Each of the two waits for the other: sequentially, both would time out.
    let barrier = Arc::new(Barrier::new(2));
    for name in ["grpc", "http"] {
        let (barrier, log) = (barrier.clone(), log.clone());
        shutdown.component(name, 1, Duration::from_secs(10), move || async move {
            barrier.wait().await;
            log.lock().expect("log").push(name.to_owned());
            Ok::<_, String>(())
        });
    }
    shutdown.component("db", 2, Duration::from_secs(10), logs(&log, "db"));
    shutdown.trigger(Reason::Requested("test".into()));
    let report = shutdown.run().await;
    assert_eq!(outcome(&report.steps, "grpc"), &Outcome::Completed);
    assert_eq!(outcome(&report.steps, "http"), &Outcome::Completed);
    let log = log.lock().expect("log").clone();
    assert_eq!(log.len(), 3);
    assert_eq!(log[2], "db", "the next priority waits for the whole batch");
}

#[tokio::test(start_paused = true)]
async fn hooks_of_one_phase_run_one_after_another() {
    let shutdown = Coordinator::new();
    let log: Log = Arc::default();
    for name in ["a", "b"] {
        let log = log.clone();
        shutdown.hook(Phase::PreShutdown, name, move || async move {
            log.lock().expect("log").push(format!("{name} start"));
            tokio::time::sleep(Duration::from_secs(1)).await;
            log.lock().expect("log").push(format!("{name} end"));
            Ok::<_, String>(())
        });
    }
    shutdown.trigger(Reason::Requested("test".into()));
    shutdown.run().await;
    assert_eq!(
        *log.lock().expect("log"),
        ["a start", "a end", "b start", "b end"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_component_over_its_timeout_is_abandoned_and_later_steps_still_run() {
    let shutdown = Coordinator::new();
    let log: Log = Arc::default();
    shutdown.component("stuck", 1, Duration::from_secs(2), || {
        std::future::pending::<Result<(), String>>()
    });
    shutdown.component("db", 2, Duration::from_secs(5), logs(&log, "db"));
    shutdown.hook(Phase::PostShutdown, "flush-logs", logs(&log, "flush-logs"));
    shutdown.trigger(Reason::Requested("test".into()));
    let report = timeout(BOUND, shutdown.run())
        .await
        .expect("shutdown finishes");
    assert_eq!(names(&report.steps), ["stuck", "db", "flush-logs"]);
    assert_eq!(outcome(&report.steps, "stuck"), &Outcome::TimedOut);
    assert_eq!(
        report.steps[0].elapsed,
        Duration::from_secs(2),
        "abandoned at its timeout"
    );
    assert_eq!(*log.lock().expect("log"), ["db", "flush-logs"]);
    assert!(!report.is_clean());
}

#[tokio::test(start_paused = true)]
async fn a_hanging_hook_is_cut_after_five_seconds() {
    let shutdown = Coordinator::new();
    let log: Log = Arc::default();
    shutdown.hook(Phase::PreShutdown, "hang", || {
        std::future::pending::<Result<(), String>>()
    });
    shutdown.component("server", 0, Duration::from_secs(5), logs(&log, "server"));
    shutdown.trigger(Reason::Requested("test".into()));
    let report = timeout(BOUND, shutdown.run())
        .await
        .expect("shutdown finishes");
    assert_eq!(outcome(&report.steps, "hang"), &Outcome::TimedOut);
    assert_eq!(report.steps[0].elapsed, Duration::from_secs(5));
    assert_eq!(*log.lock().expect("log"), ["server"]);
}

#[tokio::test(start_paused = true)]
async fn failures_and_panics_are_reported_and_the_rest_still_runs() {
    let shutdown = Coordinator::new();
    let log: Log = Arc::default();
    shutdown.component("cache", 1, Duration::from_secs(5), || async {
        Err::<(), _>(std::io::Error::other("flush failed: disk full"))
    });
    shutdown.component("buggy", 1, Duration::from_secs(5), || async {
        if true {
            panic!("index out of bounds");
        }
        Ok::<(), String>(())
    });
    shutdown.component("db", 2, Duration::from_secs(5), logs(&log, "db"));
    shutdown.hook(Phase::PostShutdown, "post", logs(&log, "post"));
    shutdown.trigger(Reason::Requested("test".into()));
    let report = shutdown.run().await;
    assert_eq!(
        outcome(&report.steps, "cache"),
        &Outcome::Failed("flush failed: disk full".into())
    );
    assert_eq!(
        outcome(&report.steps, "buggy"),
        &Outcome::Failed("panicked: index out of bounds".into()),
        "a panicking step is reported, not lost"
    );
    assert_eq!(report.steps.len(), 4);
    assert_eq!(*log.lock().expect("log"), ["db", "post"]);
    assert!(!report.is_clean());
}

#[tokio::test(start_paused = true)]
async fn the_first_trigger_wins() {
    let engine = healthy_engine();
    let shutdown = Coordinator::new().with_engine(engine.clone());
    assert_eq!(shutdown.reason(), None);
    assert!(shutdown.trigger(Reason::Signal("SIGTERM")));
    assert!(
        !shutdown.trigger(Reason::Requested("again".into())),
        "a second trigger is refused"
    );
    assert_eq!(shutdown.reason(), Some(Reason::Signal("SIGTERM")));
    let clone = shutdown.clone();
    assert!(
        !clone.trigger(Reason::Signal("SIGINT")),
        "clones share the shutdown"
    );
    let report = shutdown.run().await;
    assert_eq!(report.reason, Reason::Signal("SIGTERM"));
    assert_eq!(status(&engine).0, Status::Stopping);
}

#[tokio::test(start_paused = true)]
async fn run_waits_for_a_trigger() {
    let shutdown = Coordinator::new();
    let log: Log = Arc::default();
    shutdown.component("server", 0, Duration::from_secs(1), logs(&log, "server"));
    let running = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { shutdown.run().await }
    });
    let early = timeout(Duration::from_secs(60), shutdown.triggered()).await;
    assert!(early.is_err(), "nothing triggered yet");
    assert!(
        log.lock().expect("log").is_empty(),
        "no step runs before the trigger"
    );
    shutdown.trigger(Reason::Requested("operator".into()));
    let report = timeout(BOUND, running)
        .await
        .expect("finishes")
        .expect("no panic");
    assert_eq!(report.reason, Reason::Requested("operator".into()));
    assert_eq!(*log.lock().expect("log"), ["server"]);
}

#[tokio::test(start_paused = true)]
async fn run_stops_the_engines_checks() {
    let engine = engine();
    let db = Script::always(Report::pass("ok"));
    engine.register(spec("db"), db.probe()).expect("valid");
    engine.start();
    db.wait_runs(2).await;
    let shutdown = Coordinator::new().with_engine(engine.clone());
    shutdown.trigger(Reason::Requested("test".into()));
    shutdown.run().await;
    let runs = db.runs();
    let more = timeout(INTERVAL * 5, db.wait_runs(runs + 1)).await;
    assert!(more.is_err(), "no check runs after shutdown");
    assert_eq!(status(&engine).0, Status::Stopping);
    assert_eq!(
        state(&engine, "db"),
        CheckState::Passing,
        "last states stay visible"
    );
}

#[test]
fn reasons_read_well() {
    assert_eq!(Reason::Signal("SIGTERM").to_string(), "SIGTERM");
    assert_eq!(
        Reason::Requested("deploy".into()).to_string(),
        "request: deploy"
    );
    let critical = Reason::CriticalCheck {
        check: "db".into(),
        failing_for: Duration::from_secs(30),
    };
    assert_eq!(
        critical.to_string(),
        "critical check \"db\" failing for 30s"
    );
}

// ---------------------------------------------------------------------------------------------
// Shutdown on a critical check
// ---------------------------------------------------------------------------------------------

fn critical_db(engine: &Engine, script: &Script) {
    engine
        .register(
            spec("db")
                .critical(true)
                .thresholds(Thresholds::immediate()),
            script.probe(),
        )
        .expect("valid");
}

const GRACE: Duration = Duration::from_secs(30);

#[tokio::test(start_paused = true)]
async fn a_critical_check_that_stays_critical_triggers_shutdown_after_the_grace_period() {
    let engine = engine();
    let db = Script::always(Report::fail("connection refused"));
    critical_db(&engine, &db);
    let shutdown = Coordinator::new().with_engine(engine.clone());
    shutdown.stop_on_critical(&engine, GRACE);
    let started = Instant::now();
    engine.start();
    db.wait_runs(1).await;
    assert_eq!(status(&engine).0, Status::Unhealthy);
    assert_eq!(shutdown.reason(), None, "not before the grace period");

    let reason = timeout(BOUND, shutdown.triggered())
        .await
        .expect("triggered");
    assert_eq!(
        reason,
        Reason::CriticalCheck {
            check: "db".into(),
            failing_for: GRACE
        }
    );
    assert!(
        started.elapsed() >= GRACE,
        "the grace period was waited out"
    );
    assert_eq!(status(&engine).0, Status::Stopping);
}

#[tokio::test(start_paused = true)]
async fn a_critical_check_that_recovers_within_the_grace_period_does_not() {
    let engine = engine();
    // Critical at 0 s, passing from 10 s on.
    let db = Script::verdicts(&[Verdict::Fail, Verdict::Pass]);
    critical_db(&engine, &db);
    let shutdown = Coordinator::new().with_engine(engine.clone());
    shutdown.stop_on_critical(&engine, GRACE);
    engine.start();
    let triggered = timeout(GRACE * 4, shutdown.triggered()).await;
    assert!(triggered.is_err(), "recovered in time: {triggered:?}");
    assert_eq!(shutdown.reason(), None);
    assert_eq!(state(&engine, "db"), CheckState::Passing);
    assert_ne!(status(&engine).0, Status::Stopping);
}

#[tokio::test(start_paused = true)]
async fn a_relapse_restarts_the_grace_period() {
    let engine = engine();
    // Critical at 0 s, passing at 10 s, critical again from 20 s on.
    let db = Script::verdicts(&[Verdict::Fail, Verdict::Pass, Verdict::Fail]);
    critical_db(&engine, &db);
    let shutdown = Coordinator::new().with_engine(engine.clone());
    shutdown.stop_on_critical(&engine, GRACE);
    let started = Instant::now();
    engine.start();
    let reason = timeout(BOUND, shutdown.triggered())
        .await
        .expect("triggered");
    assert!(matches!(reason, Reason::CriticalCheck { ref check, .. } if check == "db"));
    assert!(
        started.elapsed() >= Duration::from_secs(20) + GRACE,
        "counted from the relapse at 20 s, not the first failure"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_non_critical_check_never_triggers_shutdown() {
    let engine = engine();
    let cache = Script::always(Report::fail("down"));
    engine
        .register(
            spec("cache").thresholds(Thresholds::immediate()),
            cache.probe(),
        )
        .expect("valid");
    let shutdown = Coordinator::new().with_engine(engine.clone());
    shutdown.stop_on_critical(&engine, GRACE);
    engine.start();
    let triggered = timeout(GRACE * 4, shutdown.triggered()).await;
    assert!(triggered.is_err());
    assert_eq!(state(&engine, "cache"), CheckState::Critical);
    assert_eq!(status(&engine).0, Status::Degraded);
}

#[tokio::test(start_paused = true)]
async fn a_check_already_critical_when_watching_starts_is_watched_too() {
    let engine = engine();
    engine
        .register_ttl(
            CheckSpec::new("job")
                .critical(true)
                .thresholds(Thresholds::immediate()),
            Duration::from_secs(3600),
        )
        .expect("valid");
    engine.update_ttl("job", Verdict::Fail, None).expect("ttl");
    let shutdown = Coordinator::new().with_engine(engine.clone());
    shutdown.stop_on_critical(&engine, GRACE);
    let reason = timeout(BOUND, shutdown.triggered())
        .await
        .expect("triggered");
    assert!(matches!(reason, Reason::CriticalCheck { ref check, .. } if check == "job"));
}
