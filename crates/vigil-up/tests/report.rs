//! The startup report built from a known timeline: per-service times, the critical path (through
//! a quorum group), the wave-by-wave comparison, and what the JSON and SVG renderings contain.

use std::path::Path;
use std::time::Duration;

use vigil_up::report::Report;
use vigil_up::schedule::{Event, Mode, Scheduler};

const STACK: &str = r#"
[groups.masters]
members = ["m1", "m2", "m3"]
policy = "quorum"
[services.m1]
command = ["m"]
health = { probe = "tcp://127.0.0.1:1" }
[services.m2]
command = ["m"]
depends_on = { m1 = "healthy" }
health = { probe = "tcp://127.0.0.1:1" }
[services.m3]
command = ["m"]
depends_on = { m1 = "healthy" }
health = { probe = "tcp://127.0.0.1:1" }
[services.chunk]
command = ["c"]
depends_on = { masters = "healthy" }
health = { probe = "tcp://127.0.0.1:1" }
[services.prometheus]
command = ["p"]
health = { probe = "tcp://127.0.0.1:1" }
[services.grafana]
command = ["g"]
depends_on = { prometheus = "healthy" }
health = { probe = "tcp://127.0.0.1:1" }
"#;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// m1 takes 3 s, m2 2 s, m3 2.5 s (and one restart), chunk 2 s, prometheus 1.5 s, grafana 2 s.
fn report() -> Report {
    let stack = vigil_up::parse::parse(STACK, "stack.toml", Path::new(".")).expect("valid");
    let mut s = Scheduler::new(stack, Mode::Graph, None);
    let id = |s: &Scheduler, name: &str| s.stack().service_id(name).expect("known");
    let step = |s: &mut Scheduler, name: &str, at: u64, event: Event| {
        let service = id(s, name);
        s.record(service, ms(at), event);
        s.startable(ms(at));
    };
    s.startable(ms(0));
    step(&mut s, "m1", 10, Event::Started);
    step(&mut s, "prometheus", 10, Event::Started);
    step(&mut s, "prometheus", 1500, Event::Healthy);
    step(&mut s, "grafana", 1510, Event::Started);
    step(&mut s, "m1", 3000, Event::Healthy);
    step(&mut s, "m2", 3010, Event::Started);
    step(&mut s, "m3", 3010, Event::Started);
    step(
        &mut s,
        "m3",
        3300,
        Event::Restarting {
            reason: "exited (status 1); restart 1 in 150ms".into(),
        },
    );
    step(&mut s, "m3", 3450, Event::Started);
    step(&mut s, "grafana", 3500, Event::Healthy);
    step(&mut s, "m2", 5000, Event::Healthy);
    step(&mut s, "chunk", 5010, Event::Started);
    step(&mut s, "m3", 5500, Event::Healthy);
    step(&mut s, "chunk", 7000, Event::Healthy);
    let outcome = s.outcome().expect("every service settled");
    Report::build(&s, Mode::Graph, Some(&outcome), ms(7000))
}

#[test]
fn the_critical_path_runs_through_the_quorum_member_that_completed_it() {
    let report = report();
    assert_eq!(report.outcome, "up");
    assert_eq!(report.critical_path, ["m1", "m2", "chunk"]);
    assert!(
        (report.critical_path_s.expect("a finished start") - 7.0).abs() < 1e-9,
        "{:?}",
        report.critical_path_s
    );
    assert!((report.total_s - 7.0).abs() < 1e-9);
    let critical: Vec<&str> = report
        .services
        .iter()
        .filter(|s| s.critical)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(critical, ["m1", "m2", "chunk"]);
}

#[test]
fn the_wave_schedule_waits_for_the_slowest_of_each_level() {
    let report = report();
    let waves: Vec<(usize, Vec<String>, f64)> = report
        .waves
        .iter()
        .map(|w| (w.level, w.services.clone(), w.duration_s))
        .collect();
    assert_eq!(
        waves,
        [
            (0, vec!["m1".into(), "prometheus".into()], 3.0),
            (1, vec!["m2".into(), "m3".into(), "grafana".into()], 2.5),
            (2, vec!["chunk".into()], 2.0),
        ]
    );
    assert!((report.waves_s.expect("a finished start") - 7.5).abs() < 1e-9);
    assert!((report.speedup_vs_waves.expect("a finished start") - 1.07).abs() < 1e-9);
}

#[test]
fn per_service_times_attempts_and_restarts() {
    let report = report();
    let m3 = report.services.iter().find(|s| s.name == "m3").expect("m3");
    assert_eq!(m3.launched_s, Some(3.0));
    assert_eq!(m3.started_s, Some(3.01));
    assert_eq!(m3.ready_s, Some(5.5));
    assert_eq!(m3.time_to_started_s, Some(0.01));
    assert_eq!(m3.time_to_healthy_s, Some(2.5));
    assert_eq!(m3.attempts, 2);
    assert_eq!(m3.restarts, 1);
    assert_eq!(m3.level, 1);
    let table = report.table();
    assert!(
        table.contains("critical path: 7.00s lower bound (m1 → m2 → chunk)"),
        "{table}"
    );
    assert!(
        table.contains(
            "wave by wave: 7.50s for the same durations (3 waves); this start was 1.07× faster"
        ),
        "{table}"
    );
}

/// A start of `stack` that `steps` drive, ending `total_ms` in; `finished` false: interrupted.
fn report_of(stack: &str, steps: &[(&str, u64, Event)], total_ms: u64, finished: bool) -> Report {
    let stack = vigil_up::parse::parse(stack, "stack.toml", Path::new(".")).expect("valid");
    let mut s = Scheduler::new(stack, Mode::Graph, None);
    s.startable(ms(0));
    for (name, at, event) in steps {
        let id = s.stack().service_id(name).expect("known");
        s.record(id, ms(*at), event.clone());
        s.startable(ms(*at));
    }
    let outcome = finished.then(|| s.outcome().expect("every service settled"));
    Report::build(&s, Mode::Graph, outcome.as_ref(), ms(total_ms))
}

#[test]
fn an_interrupted_start_claims_no_critical_path_and_no_speedup() {
    let report = report_of(
        STACK,
        &[
            ("m1", 10, Event::Started),
            ("prometheus", 10, Event::Started),
            ("prometheus", 1500, Event::Healthy),
            ("grafana", 1510, Event::Started),
        ],
        2000,
        false,
    );
    assert_eq!(report.outcome, "interrupted");
    assert_eq!(report.critical_path_s, None);
    assert!(report.critical_path.is_empty());
    assert_eq!(report.speedup_vs_waves, None);
    assert!(report.services.iter().all(|s| !s.critical));
    let table = report.table();
    assert!(
        table.contains("the start was interrupted: no critical path or wave-by-wave comparison"),
        "{table}"
    );
    assert!(
        !table.contains("faster") && !table.contains("lower bound"),
        "{table}"
    );
    let json: serde_json::Value = serde_json::from_str(&report.json()).expect("JSON");
    assert!(json["critical_path_s"].is_null() && json["speedup_vs_waves"].is_null());
    let svg = vigil_up::svg::render(&report);
    assert!(svg.contains("interrupted: no critical path"), "{svg}");
}

#[test]
fn one_wave_is_one_wave_and_a_slower_start_says_slower() {
    let single = "[services.a]\ncommand = [\"a\"]\n";
    let report = report_of(single, &[("a", 0, Event::Started)], 100, true);
    let table = report.table();
    assert!(table.contains("(1 wave);"), "{table}");
    // The start took longer than its own service: a concurrency limit, or vigil's own work.
    let report = report_of(single, &[("a", 0, Event::Started)], 0, true);
    assert!(report.table().contains("(1 wave)"), "{}", report.table());
    let two =
        "[services.a]\ncommand = [\"a\"]\n[services.b]\ncommand = [\"b\"]\ndepends_on = [\"a\"]\n";
    let report = report_of(
        two,
        &[("a", 0, Event::Started), ("b", 1000, Event::Started)],
        2000,
        true,
    );
    let table = report.table();
    assert!(table.contains("(2 waves)"), "{table}");
    assert!(!table.contains("faster"), "{table}");
}

#[test]
fn the_json_report_has_every_figure() {
    let json: serde_json::Value =
        serde_json::from_str(&report().json()).expect("the report is JSON");
    assert_eq!(json["outcome"], "up");
    assert_eq!(json["schedule"], "graph");
    assert_eq!(json["total_s"], 7.0);
    assert_eq!(json["critical_path_s"], 7.0);
    assert_eq!(json["waves_s"], 7.5);
    assert_eq!(
        json["critical_path"],
        serde_json::json!(["m1", "m2", "chunk"])
    );
    let services = json["services"].as_array().expect("services");
    assert_eq!(services.len(), 6);
    assert_eq!(services[2]["name"], "m3");
    assert_eq!(services[2]["restarts"], 1);
    assert_eq!(
        services[2]["restart_reasons"][0],
        "exited (status 1); restart 1 in 150ms"
    );
    assert_eq!(services[3]["healthy_s"], 7.0);
}

#[test]
fn the_svg_timeline_shows_each_service_with_the_critical_path_in_red() {
    let svg = vigil_up::svg::render(&report());
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.trim_end().ends_with("</svg>"));
    for name in ["m1", "m2", "m3", "chunk", "prometheus", "grafana"] {
        assert!(
            svg.contains(&format!(">{name}</text>")),
            "no label for {name}"
        );
    }
    // Labels of critical services are bold, their bars red; the others blue.
    assert!(svg.contains(r#"font-weight="bold">chunk</text>"#));
    assert!(svg.contains(r#"font-weight="normal">grafana</text>"#));
    assert_eq!(
        svg.matches(r##"height="14" rx="2" fill="#d62728""##)
            .count(),
        3
    );
    assert_eq!(
        svg.matches(r##"height="14" rx="2" fill="#1f77b4""##)
            .count(),
        3
    );
    // The axis is in seconds, with a tick at every whole second up to 7.
    for tick in 0..=7 {
        assert!(svg.contains(&format!(">{tick}</text>")), "no tick {tick}");
    }
    assert!(svg.contains("seconds since vigil up"));
    assert!(svg
        .contains("critical-path bound 7.00s · wave by wave 7.50s (this start was 1.07× faster)"));
    assert!(svg.contains("↻1"), "m3's restart is marked");
}
