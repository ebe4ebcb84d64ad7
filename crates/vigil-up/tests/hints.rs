//! The report's tuning hints, from starts played through the scheduler without processes or
//! clocks: a coarse `start_interval`, a `healthy` dependency on the critical path, a concurrency
//! limit that held services back — and no hint where the data does not show one.

use std::path::Path;
use std::time::Duration;

use vigil_up::hints::HintKind;
use vigil_up::report::Report;
use vigil_up::schedule::{Event, Mode, Outcome, Scheduler};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Plays `steps` (service, ms, event) through a scheduler of `stack` and builds the report.
fn play(stack: &str, limit: Option<usize>, steps: &[(&str, u64, Event)]) -> Report {
    let stack = vigil_up::parse::parse(stack, "stack.toml", Path::new(".")).expect("valid");
    let mut s = Scheduler::new(stack, Mode::Graph, limit);
    s.startable(ms(0));
    let mut end = 0;
    for (name, at, event) in steps {
        let id = s.stack().service_id(name).expect("known");
        s.record(id, ms(*at), event.clone());
        s.startable(ms(*at));
        end = *at;
    }
    let outcome = s.outcome().expect("the start ended");
    assert!(matches!(outcome, Outcome::Up { .. }), "{outcome:?}");
    Report::build(&s, Mode::Graph, Some(&outcome), ms(end))
}

fn messages(report: &Report, kind: HintKind) -> Vec<String> {
    report
        .hints
        .iter()
        .filter(|h| h.kind == kind)
        .map(|h| h.message.clone())
        .collect()
}

const PROBE: &str = "probe = \"tcp://127.0.0.1:1\"";

#[test]
fn a_start_interval_coarse_for_how_soon_the_service_was_healthy_is_hinted() {
    let stack = format!(
        "[services.db]\ncommand = [\"db\"]\nhealth = {{ {PROBE}, start_interval = \"2s\" }}\n\
         [services.cache]\ncommand = [\"c\"]\nhealth = {{ {PROBE}, start_interval = \"2s\" }}\n\
         [services.slow]\ncommand = [\"s\"]\nhealth = {{ {PROBE}, start_interval = \"2s\" }}\n\
         [services.fine]\ncommand = [\"f\"]\nhealth = {{ {PROBE}, start_interval = \"100ms\" }}\n"
    );
    let report = play(
        &stack,
        None,
        &[
            ("db", 10, Event::Started),
            ("cache", 10, Event::Started),
            ("slow", 10, Event::Started),
            ("fine", 10, Event::Started),
            // Healthy at the first probe: the interval cost nothing.
            ("cache", 20, Event::Healthy),
            ("fine", 310, Event::Healthy),
            // At the second probe, 2 s in: it may have been ready at once.
            ("db", 2010, Event::Healthy),
            // At the tenth: the interval was a small part of the wait.
            ("slow", 18010, Event::Healthy),
        ],
    );
    assert_eq!(
        messages(&report, HintKind::StartInterval),
        ["db: healthy 2.00s after it started, at probe 2 with probes 2.00s apart: it may have been ready up to 2.00s sooner; consider start_interval = \"200ms\""]
    );
    assert!(report
        .table()
        .contains("\nhint: db: healthy 2.00s after it started"));
    assert!(report.json().contains("\"kind\": \"start_interval\""));
}

#[test]
fn a_healthy_dependency_on_the_critical_path_is_hinted_only_where_the_dependant_is_restarted() {
    let stack = format!(
        "[services.db]\ncommand = [\"db\"]\nhealth = {{ {PROBE} }}\n\
         [services.api]\ncommand = [\"api\"]\ndepends_on = {{ db = \"healthy\" }}\nhealth = {{ {PROBE} }}\n\
         [services.web]\ncommand = [\"web\"]\ndepends_on = {{ api = \"healthy\" }}\nrestart = \"no\"\n"
    );
    let report = play(
        &stack,
        None,
        &[
            ("db", 10, Event::Started),
            ("db", 1510, Event::Healthy),
            ("api", 1520, Event::Started),
            ("api", 2520, Event::Healthy),
            ("web", 2530, Event::Started),
        ],
    );
    assert_eq!(report.critical_path, ["db", "api", "web"]);
    assert_eq!(
        messages(&report, HintKind::Condition),
        ["api: waits for db to be healthy, on the critical path, and db took 1.50s from running to healthy; if api copes with db not being ready yet (it retries, and restart = \"on-failure\" starts it again if not), consider db = \"started\": the start could be up to 1.50s shorter"],
        "web is never restarted: `started` is not suggested for it"
    );
}

#[test]
fn a_concurrency_limit_that_held_services_back_is_hinted() {
    let stack = "[services.a]\ncommand = [\"a\"]\n[services.b]\ncommand = [\"b\"]\n\
                 [services.c]\ncommand = [\"c\"]\n";
    // c, launched last, also takes longest: it is the critical path.
    let held = play(
        stack,
        Some(1),
        &[
            ("a", 400, Event::Started),
            ("b", 800, Event::Started),
            ("c", 1500, Event::Started),
        ],
    );
    assert_eq!(
        messages(&held, HintKind::Concurrency),
        ["concurrency = 1 held back 2 services ready to start (longest: c, 800ms), on the critical path: c; if the machine has room, consider a higher limit"]
    );
    let free = play(
        stack,
        Some(3),
        &[
            ("a", 400, Event::Started),
            ("b", 800, Event::Started),
            ("c", 1200, Event::Started),
        ],
    );
    assert!(free.hints.is_empty(), "{:?}", free.hints);
}
