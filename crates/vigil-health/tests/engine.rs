//! The engine as a user drives it: scripted probes on tokio's paused clock, asserting states,
//! status, messages, scores, history and events.

mod common;

use std::future::pending;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{
    check_change, drain, engine, spec, state, status, wait_event, Script, BOUND, INTERVAL,
};
use tokio::sync::watch;
use tokio::time::{timeout, Instant};
use vigil_health::{
    CheckKind, CheckSpec, CheckState, Engine, Event, RegisterError, Registered, Report, Status,
    Thresholds, TtlError, UnknownCheck, Verdict,
};

use CheckState::{Critical, Passing, Unknown, Warning};
use Verdict::{Fail, Pass, Warn};

/// Registers `script` under `spec`, starts the engine, and returns the state after each run.
async fn states_after_each_run(
    engine: &Engine,
    spec: CheckSpec,
    script: &Script,
    runs: usize,
) -> Vec<CheckState> {
    let name = spec.name.clone();
    engine.register(spec, script.probe()).expect("valid check");
    assert_eq!(
        state(engine, &name),
        Unknown,
        "no result before the first run"
    );
    engine.start();
    let mut states = Vec::new();
    for n in 1..=runs {
        script.wait_runs(n).await;
        states.push(state(engine, &name));
    }
    states
}

// ---------------------------------------------------------------------------------------------
// States and thresholds
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn default_thresholds_walk_through_every_state() {
    let engine = engine();
    let script = Script::verdicts(&[Pass, Fail, Fail, Fail, Fail, Warn, Pass, Fail]);
    let states = states_after_each_run(&engine, spec("svc"), &script, 8).await;
    assert_eq!(
        states,
        [Passing, Warning, Warning, Critical, Critical, Warning, Passing, Warning],
        "1 failure degrades, 3 make it critical, a warn is warning, 1 pass heals"
    );
    let view = engine.snapshot().check("svc").cloned().expect("listed");
    assert_eq!(view.streak.failures, 1);
    assert_eq!(view.streak.successes, 0);
    let last = view.last.as_ref().expect("has a result");
    assert_eq!(last.message, "run 8: fail");
    assert!(!last.healthy);
    assert_eq!(
        (view.stats.passed, view.stats.warned, view.stats.failed),
        (2, 1, 5)
    );
}

#[tokio::test(start_paused = true)]
async fn first_result_can_be_warning_or_critical() {
    let engine = engine();
    let warn = Script::verdicts(&[Warn]);
    let fail = Script::verdicts(&[Fail]);
    engine.register(spec("warns"), warn.probe()).expect("valid");
    engine
        .register(
            spec("fails").thresholds(Thresholds::immediate()),
            fail.probe(),
        )
        .expect("valid");
    engine.start();
    warn.wait_runs(1).await;
    fail.wait_runs(1).await;
    assert_eq!(state(&engine, "warns"), Warning);
    assert_eq!(
        state(&engine, "fails"),
        Critical,
        "immediate thresholds: one failure is critical"
    );
}

#[tokio::test(start_paused = true)]
async fn custom_thresholds_are_obeyed() {
    let engine = engine();
    let thresholds = Thresholds::new(2, 4, 2).expect("valid thresholds");
    let script = Script::verdicts(&[Pass, Pass, Fail, Fail, Fail, Fail, Pass, Pass, Fail]);
    let states =
        states_after_each_run(&engine, spec("svc").thresholds(thresholds), &script, 9).await;
    assert_eq!(
        states,
        [Unknown, Passing, Passing, Warning, Warning, Critical, Critical, Passing, Passing],
        "2 passes to heal, 2 failures to degrade, 4 to turn critical"
    );
}

#[tokio::test(start_paused = true)]
async fn failures_below_the_warning_threshold_never_show() {
    let engine = engine();
    let thresholds = Thresholds::new(3, 5, 1).expect("valid thresholds");
    let script = Script::verdicts(&[Pass, Fail, Fail, Pass, Fail, Fail, Fail]);
    let states =
        states_after_each_run(&engine, spec("flaky").thresholds(thresholds), &script, 7).await;
    assert_eq!(
        states,
        [Passing, Passing, Passing, Passing, Passing, Passing, Warning]
    );
}

#[test]
fn invalid_thresholds_are_rejected_with_their_field() {
    let zero = Thresholds::new(1, 3, 0).expect_err("zero successes");
    assert_eq!(
        zero.to_string(),
        "successes_before_healthy must be at least 1"
    );
    let inverted = Thresholds::new(4, 2, 1).expect_err("inverted");
    assert_eq!(
        inverted.to_string(),
        "failures_before_unhealthy (2) must not be below failures_before_degraded (4)"
    );
    let t = Thresholds::default();
    assert_eq!(
        (t.warning_after(), t.critical_after(), t.passing_after()),
        (1, 3, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn start_period_ignores_failures_until_the_first_pass() {
    let engine = engine();
    // Runs at t = 0, 10, 20, 30 s, all inside the 35 s start period.
    let script = Script::verdicts(&[Fail, Warn, Pass, Fail]);
    let spec = spec("db")
        .critical(true)
        .start_period(Duration::from_secs(35));
    engine.register(spec, script.probe()).expect("valid");
    engine.start();

    script.wait_runs(2).await;
    assert_eq!(
        state(&engine, "db"),
        Unknown,
        "failures inside the start period do not count"
    );
    assert_eq!(status(&engine).0, Status::Starting);
    let view = engine.snapshot().check("db").cloned().expect("listed");
    assert_eq!(view.streak.failures, 0);
    assert_eq!(
        view.stats.runs(),
        2,
        "the runs still happened and are counted in stats"
    );
    assert_eq!(view.score, None, "ignored results do not score");

    script.wait_runs(3).await;
    assert_eq!(state(&engine, "db"), Passing);
    assert_eq!(status(&engine).0, Status::Healthy);

    script.wait_runs(4).await;
    assert_eq!(
        state(&engine, "db"),
        Warning,
        "after the first pass failures count, even inside the start period"
    );
    let counted: Vec<bool> = engine
        .history("db")
        .expect("history")
        .iter()
        .map(|e| e.counted)
        .collect();
    assert_eq!(counted, [false, false, true, true]);
}

#[tokio::test(start_paused = true)]
async fn failures_count_once_the_start_period_is_over() {
    let engine = engine();
    let script = Script::verdicts(&[Fail, Fail, Fail]);
    let spec = spec("db")
        .critical(true)
        .start_period(Duration::from_secs(15));
    engine.register(spec, script.probe()).expect("valid");
    engine.start();
    script.wait_runs(2).await;
    assert_eq!(state(&engine, "db"), Unknown);
    script.wait_runs(3).await;
    assert_eq!(
        state(&engine, "db"),
        Warning,
        "the run at 20 s is past the 15 s start period"
    );
    assert_eq!(status(&engine).0, Status::Degraded);
}

// ---------------------------------------------------------------------------------------------
// Aggregate status
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn starting_until_the_first_result_then_healthy() {
    let engine = engine();
    assert_eq!(
        status(&engine),
        (Status::Healthy, "no checks registered".to_owned())
    );
    let db = Script::always(Report::pass("SELECT 1 ok"));
    engine
        .register(spec("db").critical(true), db.probe())
        .expect("valid");
    assert_eq!(
        status(&engine),
        (
            Status::Starting,
            "waiting for the first result of 1 critical check(s)".to_owned()
        )
    );
    engine.start();
    db.wait_runs(1).await;
    assert_eq!(
        status(&engine),
        (Status::Healthy, "All health checks passing".to_owned())
    );
}

#[tokio::test(start_paused = true)]
async fn only_non_critical_checks_start_until_one_reports() {
    let engine = engine();
    let cache = Script::always(Report::pass("hit rate 0.9"));
    engine
        .register(spec("cache"), cache.probe())
        .expect("valid");
    assert_eq!(
        status(&engine),
        (
            Status::Starting,
            "waiting for the first check result".to_owned()
        )
    );
    engine.start();
    cache.wait_runs(1).await;
    assert_eq!(status(&engine).0, Status::Healthy);
}

#[tokio::test(start_paused = true)]
async fn a_failing_non_critical_check_degrades() {
    let engine = engine();
    let db = Script::always(Report::pass("ok"));
    let cache = Script::always(Report::fail("connection refused\nat redis:6379"));
    engine
        .register(spec("db").critical(true), db.probe())
        .expect("valid");
    engine
        .register(
            spec("cache").thresholds(Thresholds::immediate()),
            cache.probe(),
        )
        .expect("valid");
    engine.start();
    db.wait_runs(1).await;
    cache.wait_runs(1).await;
    assert_eq!(state(&engine, "cache"), Critical);
    assert_eq!(
        status(&engine),
        (
            Status::Degraded,
            "check \"cache\" failing: connection refused".to_owned()
        ),
        "a non-critical check, even critical, only degrades; the message keeps its first line"
    );
}

#[tokio::test(start_paused = true)]
async fn a_warning_critical_check_degrades() {
    let engine = engine();
    let db = Script::always(Report::warn("replication lag 12s"));
    engine
        .register(spec("db").critical(true), db.probe())
        .expect("valid");
    engine.start();
    db.wait_runs(1).await;
    assert_eq!(
        status(&engine),
        (
            Status::Degraded,
            "check \"db\" failing: replication lag 12s".to_owned()
        )
    );
}

#[tokio::test(start_paused = true)]
async fn a_critical_check_in_critical_state_makes_the_node_unhealthy() {
    let engine = engine();
    let db = Script::always(Report::fail("connection refused"));
    let queue = Script::always(Report::fail("broker gone"));
    let cache = Script::always(Report::fail("timeout"));
    let immediate = Thresholds::immediate();
    engine
        .register(spec("db").critical(true).thresholds(immediate), db.probe())
        .expect("valid");
    engine
        .register(spec("cache").thresholds(immediate), cache.probe())
        .expect("valid");
    engine.start();
    db.wait_runs(1).await;
    cache.wait_runs(1).await;
    assert_eq!(
        status(&engine),
        (
            Status::Unhealthy,
            "critical check \"db\" failing: connection refused".to_owned()
        )
    );

    engine
        .register(
            spec("queue").critical(true).thresholds(immediate),
            queue.probe(),
        )
        .expect("valid");
    queue.wait_runs(1).await;
    assert_eq!(
        status(&engine),
        (
            Status::Unhealthy,
            "critical check \"db\" failing: connection refused (and 1 more)".to_owned()
        )
    );
}

#[tokio::test(start_paused = true)]
async fn a_recovering_critical_check_is_not_blamed_with_its_passing_message() {
    let engine = engine();
    let db = Script::verdicts(&[Verdict::Fail, Verdict::Pass, Verdict::Pass]);
    let thresholds = Thresholds::new(1, 1, 2).expect("valid");
    engine
        .register(spec("db").critical(true).thresholds(thresholds), db.probe())
        .expect("valid");
    engine.start();
    db.wait_runs(2).await;
    assert_eq!(
        status(&engine),
        (
            Status::Unhealthy,
            "critical check \"db\" failing: recovering, 1 of 2 passes needed".to_owned()
        )
    );
    db.wait_runs(3).await;
    assert_eq!(
        status(&engine),
        (
            Status::Degraded,
            "overall score 0.67 below healthy threshold 0.95".to_owned()
        ),
        "passing again, while the recent failure still weighs on the score"
    );
}

#[tokio::test(start_paused = true)]
async fn a_critical_check_below_its_critical_threshold_only_degrades() {
    let engine = engine();
    let db = Script::verdicts(&[Fail, Fail, Fail]);
    engine
        .register(spec("db").critical(true), db.probe())
        .expect("valid");
    engine.start();
    db.wait_runs(1).await;
    assert_eq!(status(&engine).0, Status::Degraded);
    db.wait_runs(3).await;
    assert_eq!(status(&engine).0, Status::Unhealthy);
}

#[tokio::test(start_paused = true)]
async fn a_score_under_the_healthy_threshold_degrades() {
    let engine = Engine::builder()
        .stagger(false)
        .score_thresholds(0.95, 0.75)
        .build();
    // Three failures before a warning, so the state stays passing while the score drops.
    let thresholds = Thresholds::new(3, 5, 1).expect("valid thresholds");
    let script = Script::verdicts(&[Pass, Fail, Pass]);
    engine
        .register(spec("api").thresholds(thresholds), script.probe())
        .expect("valid");
    engine.start();
    script.wait_runs(3).await;
    assert_eq!(state(&engine, "api"), Passing);
    let snapshot = engine.snapshot();
    assert!((snapshot.system_score() - 2.0 / 3.0).abs() < 1e-5);
    assert_eq!(snapshot.status(), Status::Degraded);
    assert_eq!(
        snapshot.message(),
        "overall score 0.67 below healthy threshold 0.95"
    );
}

#[tokio::test(start_paused = true)]
async fn begin_stopping_wins_over_everything_and_lasts() {
    let engine = engine();
    let db = Script::always(Report::pass("ok"));
    engine
        .register(spec("db").critical(true), db.probe())
        .expect("valid");
    engine.start();
    db.wait_runs(1).await;
    assert_eq!(status(&engine).0, Status::Healthy);
    let mut events = engine.subscribe();
    engine.begin_stopping();
    assert_eq!(
        status(&engine),
        (Status::Stopping, "shutting down".to_owned())
    );
    match wait_event(&mut events, |e| matches!(e, Event::StatusChanged { .. })).await {
        Event::StatusChanged { from, to, .. } => {
            assert_eq!((from, to), (Status::Healthy, Status::Stopping))
        }
        _ => unreachable!(),
    }
    db.wait_runs(3).await;
    assert_eq!(
        status(&engine).0,
        Status::Stopping,
        "later results do not undo stopping"
    );
}

#[tokio::test(start_paused = true)]
async fn disabled_checks_are_listed_but_never_run_and_never_count() {
    let engine = engine();
    let disabled = Script::always(Report::fail("would fail"));
    let web = Script::always(Report::pass("ok"));
    engine
        .register(
            spec("legacy")
                .critical(true)
                .enabled(false)
                .thresholds(Thresholds::immediate()),
            disabled.probe(),
        )
        .expect("valid");
    engine.register(spec("web"), web.probe()).expect("valid");
    engine.start();
    web.wait_runs(3).await;
    assert_eq!(disabled.runs(), 0, "a disabled check never runs");
    assert_eq!(
        status(&engine).0,
        Status::Healthy,
        "a disabled critical check does not hold starting"
    );
    let view = engine
        .snapshot()
        .check("legacy")
        .cloned()
        .expect("disabled checks are listed");
    assert_eq!(view.state, Unknown);
    assert!(!view.spec.enabled);
}

// ---------------------------------------------------------------------------------------------
// Scheduling: timeouts, no overlap, stagger
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_hung_probe_is_cut_at_its_timeout_while_other_checks_keep_running() {
    let engine = engine();
    let ok = Script::always(Report::pass("ok"));
    engine
        .register(spec("hang").timeout(Duration::from_secs(2)), || {
            pending::<Report>()
        })
        .expect("valid");
    engine
        .register(spec("ok").interval(Duration::from_millis(500)), ok.probe())
        .expect("valid");
    let mut events = engine.subscribe();
    let started = Instant::now();
    engine.start();

    let (from, to, message) = check_change(&mut events, "hang").await;
    assert_eq!((from, to), (Unknown, Warning));
    assert_eq!(message, "timed out after 2s");
    assert!(
        ok.runs() >= 4,
        "the other check ran every 500 ms while the hung one waited ({} runs)",
        ok.runs()
    );
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "cut at, not before, the timeout"
    );

    let view = engine.snapshot().check("hang").cloned().expect("listed");
    let last = view.last.clone().expect("a result");
    assert_eq!(last.verdict, Fail);
    assert!(!last.healthy);
    assert_eq!(
        last.latency,
        Duration::from_secs(2),
        "the cut run took exactly the timeout"
    );
    assert_eq!(view.stats.failed, 1);

    // The hung check keeps its schedule: its next runs time out too, and it turns critical.
    let (from, to, _) = check_change(&mut events, "hang").await;
    assert_eq!((from, to), (Warning, Critical));
    assert_eq!(state(&engine, "ok"), Passing);
}

/// Counts probe invocations in flight; the guard lives in the probe's future, so a run cut by
/// its timeout leaves too.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(now: &Arc<AtomicUsize>, max: &AtomicUsize) -> Self {
        let n = now.fetch_add(1, Ordering::SeqCst) + 1;
        max.fetch_max(n, Ordering::SeqCst);
        InFlight(now.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn max_concurrent_runs(run_for: Duration, timeout_after: Duration) -> (usize, usize) {
    let engine = engine();
    let now = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let (calls, mut calls_rx) = watch::channel(0usize);
    let calls = Arc::new(calls);
    let probe = {
        let (now, max) = (now.clone(), max.clone());
        move || {
            let guard = InFlight::enter(&now, &max);
            calls.send_modify(|n| *n += 1);
            async move {
                let _guard = guard;
                tokio::time::sleep(run_for).await;
                Report::pass("slow but fine")
            }
        }
    };
    let spec = spec("slow")
        .interval(Duration::from_secs(1))
        .timeout(timeout_after);
    engine.register(spec, probe).expect("valid");
    engine.start();
    timeout(BOUND, calls_rx.wait_for(|&n| n >= 5))
        .await
        .expect("five runs")
        .expect("sender alive");
    let calls = *calls_rx.borrow();
    (max.load(Ordering::SeqCst), calls)
}

#[tokio::test(start_paused = true)]
async fn a_slow_check_never_overlaps_itself() {
    // Each run takes 3 s against an interval of 1 s.
    let (max, calls) = max_concurrent_runs(Duration::from_secs(3), Duration::from_secs(10)).await;
    assert!(calls >= 5);
    assert_eq!(max, 1, "runs of one check never overlap");
}

#[tokio::test(start_paused = true)]
async fn a_hung_check_never_overlaps_itself() {
    // Each run would take an hour; it is cut after 2 s, with an interval of 1 s.
    let (max, calls) = max_concurrent_runs(Duration::from_secs(3600), Duration::from_secs(2)).await;
    assert!(calls >= 5);
    assert_eq!(max, 1, "a cut run is over before the next starts");
}

#[tokio::test(start_paused = true)]
async fn with_stagger_the_first_run_happens_within_the_interval() {
    let engine = Engine::builder().build();
    assert!(engine.config().stagger, "stagger is on by default");
    let interval = Duration::from_secs(60);
    let runs: Arc<Mutex<Vec<(usize, Instant)>>> = Arc::default();
    let (done, mut done_rx) = watch::channel(0usize);
    let done = Arc::new(done);
    for i in 0..5 {
        let (runs, done) = (runs.clone(), done.clone());
        let probe = move || {
            runs.lock().expect("lock").push((i, Instant::now()));
            done.send_modify(|n| *n += 1);
            async { Report::pass("ok") }
        };
        engine
            .register(
                CheckSpec::new(format!("check-{i}")).interval(interval),
                probe,
            )
            .expect("valid");
    }
    let started = Instant::now();
    engine.start();
    // Every check runs twice.
    timeout(BOUND, done_rx.wait_for(|&n| n >= 10))
        .await
        .expect("two runs each")
        .expect("sender alive");
    let runs = runs.lock().expect("lock").clone();
    for i in 0..5 {
        let times: Vec<Instant> = runs
            .iter()
            .filter(|(c, _)| *c == i)
            .map(|(_, t)| *t)
            .collect();
        // `<=`: the timer wheel rounds a deadline up to the next millisecond.
        assert!(
            times[0] - started <= interval,
            "check-{i}: first run {:?} after start, not within {interval:?}",
            times[0] - started
        );
        assert_eq!(times[1] - times[0], interval, "then every interval");
    }
}

#[tokio::test(start_paused = true)]
async fn without_stagger_the_first_run_is_immediate() {
    let engine = engine();
    assert!(!engine.config().stagger);
    let db = Script::always(Report::pass("ok"));
    engine.register(spec("db"), db.probe()).expect("valid");
    let started = Instant::now();
    engine.start();
    db.wait_runs(1).await;
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn nothing_runs_before_start_and_after_stop() {
    let engine = engine();
    let db = Script::always(Report::pass("ok"));
    engine.register(spec("db"), db.probe()).expect("valid");
    let idle = timeout(INTERVAL * 3, db.wait_runs(1)).await;
    assert!(idle.is_err(), "checks wait for start()");
    engine.start();
    db.wait_runs(2).await;
    engine.stop();
    let after_stop = timeout(INTERVAL * 3, db.wait_runs(3)).await;
    assert!(after_stop.is_err(), "checks stop with stop()");
    assert_eq!(
        state(&engine, "db"),
        Passing,
        "the last state stays visible"
    );
}

#[tokio::test(start_paused = true)]
async fn starting_twice_does_not_run_checks_twice() {
    let engine = engine();
    let db = Script::always(Report::pass("ok"));
    engine.register(spec("db"), db.probe()).expect("valid");
    engine.start();
    engine.start();
    // Runs are due at 0, 10 and 20 s.
    let _ = timeout(Duration::from_secs(25), db.wait_runs(100)).await;
    assert_eq!(db.runs(), 3);
}

/// Registers a probe that panics on its first call, in its body or while creating its future,
/// and passes after; returns the check's first two state changes.
async fn panics_once(in_future: bool) -> Vec<(CheckState, String)> {
    let engine = engine();
    let calls = Arc::new(AtomicUsize::new(0));
    let probe = move || {
        let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
        if first && !in_future {
            panic!("bad probe setup");
        }
        async move {
            if first {
                panic!("probe bug {}", 42);
            }
            Report::pass("recovered")
        }
    };
    engine
        .register(spec("db").thresholds(Thresholds::immediate()), probe)
        .expect("valid");
    let mut events = engine.subscribe();
    engine.start();
    let mut changes = Vec::new();
    for _ in 0..2 {
        let (_, to, message) = check_change(&mut events, "db").await;
        changes.push((to, message));
    }
    changes
}

#[tokio::test(start_paused = true)]
async fn a_panicking_probe_fails_one_run_and_the_check_keeps_running() {
    let recovered = (Passing, "recovered".to_owned());
    assert_eq!(
        panics_once(true).await,
        [
            (Critical, "probe panicked: probe bug 42".to_owned()),
            recovered.clone()
        ]
    );
    assert_eq!(
        panics_once(false).await,
        [
            (Critical, "probe panicked: bad probe setup".to_owned()),
            recovered
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Scores and history
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn scores_per_check_component_and_system_weigh_critical_double() {
    let engine = Engine::builder().stagger(false).score_window(4).build();
    let db = Script::verdicts(&[Pass, Fail, Pass, Warn, Pass, Pass]);
    let cache = Script::always(Report::pass("ok"));
    let api = Script::always(Report::fail("down"));
    engine
        .register(spec("db").critical(true).component("storage"), db.probe())
        .expect("valid");
    engine
        .register(spec("cache").component("storage"), cache.probe())
        .expect("valid");
    engine.register(spec("api"), api.probe()).expect("valid");
    let before = engine.snapshot();
    assert_eq!(before.system_score(), 1.0, "1.0 before any result");
    assert!(before.component_scores().is_empty());
    assert_eq!(before.check("db").expect("listed").score, None);

    engine.start();
    for script in [&db, &cache, &api] {
        script.wait_runs(4).await;
    }
    let s = engine.snapshot();
    assert_eq!(
        s.check("db").expect("db").score,
        Some(0.625),
        "pass, fail, pass, warn"
    );
    assert_eq!(s.check("cache").expect("cache").score, Some(1.0));
    assert_eq!(s.check("api").expect("api").score, Some(0.0));
    // storage = (2 × 0.625 + 1 × 1.0) / 3; system = (2 × 0.625 + 1.0 + 0.0) / 4.
    assert_eq!(s.component_scores().get("storage"), Some(&0.75));
    assert_eq!(
        s.component_scores().len(),
        1,
        "checks without a component score only the system"
    );
    assert_eq!(s.system_score(), 0.5625, "a critical check weighs double");

    db.wait_runs(6).await;
    let s = engine.snapshot();
    assert_eq!(
        s.check("db").expect("db").score,
        Some(0.875),
        "the window slides: pass, warn, pass, pass"
    );
}

#[tokio::test(start_paused = true)]
async fn unregistering_removes_a_check_from_the_scores() {
    let engine = engine();
    let good = Script::always(Report::pass("ok"));
    let bad = Script::always(Report::fail("down"));
    engine
        .register(spec("good").component("web"), good.probe())
        .expect("valid");
    engine
        .register(spec("bad").component("jobs").critical(true), bad.probe())
        .expect("valid");
    engine.start();
    good.wait_runs(1).await;
    bad.wait_runs(1).await;
    assert!((engine.snapshot().system_score() - 1.0 / 3.0).abs() < 1e-5);
    engine.unregister("bad").expect("registered");
    let s = engine.snapshot();
    assert_eq!(s.system_score(), 1.0);
    assert_eq!(
        s.component_scores()
            .keys()
            .map(|k| &**k)
            .collect::<Vec<_>>(),
        ["web"]
    );
    assert_eq!(s.status(), Status::Healthy);
}

#[tokio::test(start_paused = true)]
async fn history_is_bounded_by_count_and_keeps_the_newest() {
    let engine = Engine::builder()
        .stagger(false)
        .history(3, Duration::from_secs(3600))
        .build();
    let script = Script::verdicts(&[Pass, Fail, Warn, Pass, Fail]);
    engine.register(spec("svc"), script.probe()).expect("valid");
    assert_eq!(engine.history("svc"), Some(vec![]));
    assert_eq!(engine.history("nope"), None);
    engine.start();
    script.wait_runs(5).await;
    let history = engine.history("svc").expect("history");
    let verdicts: Vec<Verdict> = history.iter().map(|e| e.verdict).collect();
    assert_eq!(
        verdicts,
        [Warn, Pass, Fail],
        "the three newest, oldest first"
    );
    assert!(history.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
    assert_eq!(
        engine.snapshot().check("svc").expect("listed").stats.runs(),
        5,
        "stats count every run"
    );
}

// ---------------------------------------------------------------------------------------------
// Registration at run time
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn registering_and_unregistering_emit_events() {
    let engine = engine();
    engine.start();
    let mut events = engine.subscribe();
    let a = Script::always(Report::pass("ok"));
    assert_eq!(engine.register(spec("a"), a.probe()), Ok(Registered::Added));
    assert_eq!(
        engine.register(spec("a"), a.probe()),
        Ok(Registered::Replaced)
    );
    engine.unregister("a").expect("registered");
    let lifecycle: Vec<Event> = drain(&mut events)
        .into_iter()
        .filter(|e| {
            matches!(
                e,
                Event::CheckRegistered { .. } | Event::CheckUnregistered { .. }
            )
        })
        .collect();
    assert_eq!(
        lifecycle,
        [
            Event::CheckRegistered { check: "a".into() },
            Event::CheckRegistered { check: "a".into() },
            Event::CheckUnregistered { check: "a".into() },
        ]
    );
    assert!(engine.snapshot().check("a").is_none());
    assert_eq!(engine.history("a"), None);
}

#[tokio::test(start_paused = true)]
async fn a_check_registered_after_start_runs_at_once() {
    let engine = engine();
    engine.start();
    let late = Script::always(Report::pass("ok"));
    let started = Instant::now();
    engine.register(spec("late"), late.probe()).expect("valid");
    late.wait_runs(1).await;
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(state(&engine, "late"), Passing);
}

#[tokio::test(start_paused = true)]
async fn a_replaced_check_starts_over_and_its_old_probe_stops() {
    let engine = engine();
    let old = Script::always(Report::fail("old probe"));
    let new = Script::always(Report::pass("new probe"));
    let db = || {
        spec("db")
            .critical(true)
            .thresholds(Thresholds::immediate())
    };
    engine.register(db(), old.probe()).expect("valid");
    engine.start();
    old.wait_runs(2).await;
    assert_eq!(status(&engine).0, Status::Unhealthy);

    let mut events = engine.subscribe();
    assert_eq!(engine.register(db(), new.probe()), Ok(Registered::Replaced));
    let view = engine.snapshot().check("db").cloned().expect("listed");
    assert_eq!(view.state, Unknown, "state starts over");
    assert!(view.last.is_none());
    assert_eq!(view.stats.runs(), 0, "stats start over");
    assert_eq!(engine.history("db"), Some(vec![]), "history starts over");
    assert_eq!(status(&engine).0, Status::Starting);

    new.wait_runs(3).await;
    assert_eq!(state(&engine, "db"), Passing);
    assert_eq!(status(&engine).0, Status::Healthy);
    assert_eq!(old.runs(), 2, "the replaced probe no longer runs");
    let statuses: Vec<(Status, Status)> = drain(&mut events)
        .into_iter()
        .filter_map(|e| match e {
            Event::StatusChanged { from, to, .. } => Some((from, to)),
            _ => None,
        })
        .collect();
    assert_eq!(
        statuses,
        [
            (Status::Unhealthy, Status::Starting),
            (Status::Starting, Status::Healthy)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn unregistering_stops_the_probe_and_the_status_recovers() {
    let engine = engine();
    let bad = Script::always(Report::fail("down"));
    let good = Script::always(Report::pass("ok"));
    engine
        .register(
            spec("bad")
                .critical(true)
                .thresholds(Thresholds::immediate()),
            bad.probe(),
        )
        .expect("valid");
    engine.register(spec("good"), good.probe()).expect("valid");
    engine.start();
    bad.wait_runs(1).await;
    good.wait_runs(1).await;
    assert_eq!(status(&engine).0, Status::Unhealthy);
    engine.unregister("bad").expect("registered");
    assert_eq!(status(&engine).0, Status::Healthy);
    good.wait_runs(4).await;
    assert_eq!(bad.runs(), 1, "an unregistered check no longer runs");
}

#[test]
fn unregistering_an_unknown_check_is_an_error() {
    let engine = engine();
    let err = engine.unregister("nope").expect_err("unknown");
    assert_eq!(err, UnknownCheck("nope".to_owned()));
    assert_eq!(err.to_string(), "no check named \"nope\"");
}

#[test]
fn invalid_registrations_are_rejected() {
    let engine = engine();
    let probe = || async { Report::pass("ok") };
    let too_long = "n".repeat(129);
    let longest = "n".repeat(128);
    for name in ["", "has space", "a/b", "ünïcode", "x?y", too_long.as_str()] {
        assert_eq!(
            engine.register(CheckSpec::new(name), probe),
            Err(RegisterError::InvalidName(name.to_owned())),
            "{name:?}"
        );
    }
    for name in ["db", "db-primary_1.read:5432", longest.as_str()] {
        assert_eq!(
            engine.register(CheckSpec::new(name), probe),
            Ok(Registered::Added),
            "{name:?}"
        );
    }
    assert_eq!(
        engine.register(CheckSpec::new("z").interval(Duration::ZERO), probe),
        Err(RegisterError::ZeroInterval("z".to_owned()))
    );
    assert_eq!(
        engine.register(CheckSpec::new("z").timeout(Duration::ZERO), probe),
        Err(RegisterError::ZeroTimeout("z".to_owned()))
    );
    assert_eq!(
        engine.register_ttl(CheckSpec::new("z"), Duration::ZERO),
        Err(RegisterError::ZeroTtl("z".to_owned()))
    );
    assert_eq!(
        engine.register_ttl(CheckSpec::new("bad name"), Duration::from_secs(1)),
        Err(RegisterError::InvalidName("bad name".to_owned()))
    );
    assert!(
        engine.snapshot().check("z").is_none(),
        "nothing half-registered"
    );
    assert_eq!(engine.snapshot().checks().len(), 3);
    assert_eq!(
        RegisterError::ZeroInterval("z".to_owned()).to_string(),
        "check \"z\": interval must be greater than zero"
    );
}

// ---------------------------------------------------------------------------------------------
// TTL checks
// ---------------------------------------------------------------------------------------------

fn ttl_spec(name: &str) -> CheckSpec {
    CheckSpec::new(name)
        .critical(true)
        .thresholds(Thresholds::immediate())
}

#[tokio::test(start_paused = true)]
async fn ttl_updates_set_the_state_at_once() {
    let engine = engine();
    engine
        .register_ttl(ttl_spec("job"), Duration::from_secs(30))
        .expect("valid");
    let view = engine.snapshot().check("job").cloned().expect("listed");
    assert_eq!(view.kind, CheckKind::Ttl(Duration::from_secs(30)));
    assert_eq!(view.kind.name(), "ttl");
    assert_eq!(status(&engine).0, Status::Starting);

    engine.update_ttl("job", Pass, None).expect("ttl check");
    assert_eq!(state(&engine, "job"), Passing);
    let last = engine
        .snapshot()
        .check("job")
        .and_then(|v| v.last.clone())
        .expect("result");
    assert_eq!(last.message, "TTL check set to pass by update");
    assert_eq!(status(&engine).0, Status::Healthy);

    engine
        .update_ttl("job", Warn, Some("queue backing up".into()))
        .expect("ttl check");
    assert_eq!(state(&engine, "job"), Warning);
    assert_eq!(
        status(&engine),
        (
            Status::Degraded,
            "check \"job\" failing: queue backing up".to_owned()
        )
    );

    engine.update_ttl("job", Fail, None).expect("ttl check");
    assert_eq!(
        state(&engine, "job"),
        Critical,
        "immediate thresholds: one fail is critical"
    );
    assert_eq!(
        status(&engine),
        (
            Status::Unhealthy,
            "critical check \"job\" failing: TTL check set to fail by update".to_owned()
        )
    );

    engine
        .update_ttl("job", Pass, Some("back".into()))
        .expect("ttl check");
    assert_eq!(state(&engine, "job"), Passing);
    let (status, message) = status(&engine);
    assert_eq!(
        status,
        Status::Degraded,
        "passing again, but pass-warn-fail-pass scores 0.625"
    );
    assert!(message.starts_with("overall score 0.6"), "{message}");
}

#[tokio::test(start_paused = true)]
async fn ttl_checks_take_their_thresholds_from_the_spec() {
    let engine = engine();
    engine
        .register_ttl(CheckSpec::new("job"), Duration::from_secs(30))
        .expect("valid");
    engine.update_ttl("job", Fail, None).expect("ttl check");
    assert_eq!(
        state(&engine, "job"),
        Warning,
        "default thresholds: one failure degrades"
    );
    engine.update_ttl("job", Fail, None).expect("ttl check");
    engine.update_ttl("job", Fail, None).expect("ttl check");
    assert_eq!(state(&engine, "job"), Critical, "three make it critical");
}

#[tokio::test(start_paused = true)]
async fn a_lapsed_ttl_turns_critical() {
    let engine = engine();
    engine
        .register_ttl(ttl_spec("job"), Duration::from_secs(30))
        .expect("valid");
    engine.start();
    engine.update_ttl("job", Pass, None).expect("ttl check");
    let mut events = engine.subscribe();

    // Updates inside the TTL keep it alive: one after 20 s restarts the 30 s.
    let early = timeout(Duration::from_secs(20), check_change(&mut events, "job")).await;
    assert!(early.is_err(), "no lapse within the TTL");
    engine.update_ttl("job", Pass, None).expect("ttl check");
    let early = timeout(Duration::from_secs(29), check_change(&mut events, "job")).await;
    assert!(early.is_err(), "the update restarted the TTL");

    let (from, to, message) = check_change(&mut events, "job").await;
    assert_eq!((from, to), (Passing, Critical));
    assert_eq!(message, "TTL expired: no update within 30s");
    assert_eq!(status(&engine).0, Status::Unhealthy);
    assert!(status(&engine).1.contains("TTL expired"));

    engine.update_ttl("job", Pass, None).expect("ttl check");
    assert_eq!(
        state(&engine, "job"),
        Passing,
        "an update revives a lapsed check"
    );
}

#[test]
fn ttl_updates_only_reach_ttl_checks() {
    let engine = engine();
    engine
        .register(CheckSpec::new("db"), || async { Report::pass("ok") })
        .expect("valid");
    assert_eq!(
        engine.update_ttl("db", Pass, None),
        Err(TtlError::NotTtl("db".to_owned()))
    );
    assert_eq!(
        engine
            .update_ttl("db", Pass, None)
            .map_err(|e| e.to_string()),
        Err("check \"db\" is not a TTL check".to_owned())
    );
    assert_eq!(
        engine.update_ttl("nope", Pass, None),
        Err(TtlError::Unknown(UnknownCheck("nope".to_owned())))
    );
    assert_eq!(
        state(&engine, "db"),
        Unknown,
        "the refused update changed nothing"
    );
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn check_changed_fires_once_per_change_and_status_changed_follows() {
    // A score threshold of 0 keeps the status about states only.
    let engine = Engine::builder()
        .stagger(false)
        .score_thresholds(0.0, 0.0)
        .build();
    let script = Script::verdicts(&[Pass, Pass, Fail, Fail, Fail, Fail, Pass, Pass]);
    engine.register(spec("svc"), script.probe()).expect("valid");
    let mut events = engine.subscribe();
    engine.start();
    script.wait_runs(8).await;

    #[derive(Debug, PartialEq)]
    enum E {
        Check(CheckState, CheckState, String),
        Status(Status, Status, String),
    }
    let got: Vec<E> = drain(&mut events)
        .into_iter()
        .filter_map(|e| match e {
            Event::CheckChanged {
                from, to, message, ..
            } => Some(E::Check(from, to, message)),
            Event::StatusChanged {
                from, to, message, ..
            } => Some(E::Status(from, to, message)),
            _ => None,
        })
        .collect();
    let s = |s: &str| s.to_owned();
    assert_eq!(
        got,
        [
            E::Check(Unknown, Passing, s("run 1: pass")),
            E::Status(
                Status::Starting,
                Status::Healthy,
                s("All health checks passing")
            ),
            E::Check(Passing, Warning, s("run 3: fail")),
            E::Status(
                Status::Healthy,
                Status::Degraded,
                s("check \"svc\" failing: run 3: fail")
            ),
            E::Check(Warning, Critical, s("run 5: fail")),
            E::Check(Critical, Passing, s("run 7: pass")),
            E::Status(
                Status::Degraded,
                Status::Healthy,
                s("All health checks passing")
            ),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn events_serialize_with_a_type_tag() {
    let engine = engine();
    let mut events = engine.subscribe();
    engine
        .register_ttl(ttl_spec("job"), Duration::from_secs(30))
        .expect("valid");
    engine
        .update_ttl("job", Fail, Some("stuck".into()))
        .expect("ttl");
    let change = wait_event(&mut events, |e| matches!(e, Event::CheckChanged { .. })).await;
    let json = serde_json::to_value(&change).expect("serializable");
    assert_eq!(json["type"], "check_changed");
    assert_eq!(json["check"], "job");
    assert_eq!(
        (json["from"].as_str(), json["to"].as_str()),
        (Some("unknown"), Some("critical"))
    );
    assert_eq!(json["message"], "stuck");
    let at = json["at"].as_str().expect("timestamp");
    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339");
    let status = wait_event(&mut events, |e| matches!(e, Event::StatusChanged { .. })).await;
    let json = serde_json::to_value(&status).expect("serializable");
    assert_eq!(json["type"], "status_changed");
    assert_eq!(
        (json["from"].as_str(), json["to"].as_str()),
        (Some("starting"), Some("unhealthy"))
    );
}

#[tokio::test(start_paused = true)]
async fn a_subscriber_reading_the_snapshot_on_an_event_sees_that_change() {
    let engine = engine();
    let mut events = engine.subscribe();
    let db = Script::verdicts(&[Pass, Fail, Pass]);
    engine
        .register(
            spec("db")
                .critical(true)
                .thresholds(Thresholds::immediate()),
            db.probe(),
        )
        .expect("valid");
    engine.start();
    let mut seen = Vec::new();
    while seen.len() < 7 {
        let event = wait_event(&mut events, |e| {
            matches!(e, Event::CheckChanged { .. } | Event::StatusChanged { .. })
        })
        .await;
        match event {
            Event::CheckChanged { to, .. } => {
                assert_eq!(state(&engine, "db"), to, "snapshot behind {event:?}");
                seen.push(format!("db {to:?}"));
            }
            Event::StatusChanged { to, .. } => {
                assert_eq!(status(&engine).0, to, "snapshot behind {event:?}");
                seen.push(format!("node {to:?}"));
            }
            _ => unreachable!(),
        }
    }
    assert_eq!(
        seen,
        [
            "node Starting",
            "db Passing",
            "node Healthy",
            "db Critical",
            "node Unhealthy",
            "db Passing",
            // One failure in three results keeps the score under the healthy threshold.
            "node Degraded"
        ]
    );
}
