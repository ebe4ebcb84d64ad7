//! The probe endpoints through the axum router: status codes in every node status, the CHORUS
//! JSON schema, kube-style `/livez` and `/readyz`, and the Prometheus text of `/metrics`.

#![cfg(feature = "axum")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::{engine, spec, Script};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tower::ServiceExt;
use vigil_health::{CheckSpec, Engine, Report, Status, Thresholds, Verdict};

/// A response as a client sees it.
struct Reply {
    status: StatusCode,
    content_type: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

async fn get(engine: &Engine, uri: &str) -> Reply {
    let response = vigil_health::http::router::<()>(engine.clone())
        .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Reply {
        status,
        content_type,
        body: String::from_utf8(bytes.to_vec()).expect("UTF-8 body"),
    }
}

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn set<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
    names.iter().copied().collect()
}

fn rfc3339(value: &Value) -> OffsetDateTime {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"));
    OffsetDateTime::parse(text, &Rfc3339).unwrap_or_else(|e| panic!("not RFC 3339 ({e}): {text}"))
}

/// TTL checks with immediate thresholds: states set synchronously, no runtime needed.
fn ttl(engine: &Engine, name: &str, critical: bool, component: &str) {
    engine
        .register_ttl(
            CheckSpec::new(name)
                .critical(critical)
                .component(component)
                .thresholds(Thresholds::immediate()),
            Duration::from_secs(3600),
        )
        .expect("valid");
}

/// An engine with a critical check `db` and a non-critical `cache`, in `status`.
fn engine_in(status: Status) -> Engine {
    let engine = Engine::builder()
        .stagger(false)
        .node_id("node-123")
        .version("v1.0.0")
        .score_thresholds(0.0, 0.0)
        .build();
    ttl(&engine, "db", true, "storage");
    ttl(&engine, "cache", false, "cache");
    let (db, cache) = match status {
        Status::Starting => (None, Some(Verdict::Pass)),
        Status::Healthy | Status::Stopping => (Some(Verdict::Pass), Some(Verdict::Pass)),
        Status::Degraded => (Some(Verdict::Pass), Some(Verdict::Fail)),
        Status::Unhealthy => (Some(Verdict::Fail), Some(Verdict::Pass)),
    };
    for (name, verdict) in [("db", db), ("cache", cache)] {
        if let Some(verdict) = verdict {
            engine
                .update_ttl(name, verdict, Some(format!("{name} {}", verdict.as_str())))
                .expect("ttl");
        }
    }
    if status == Status::Stopping {
        engine.begin_stopping();
    }
    assert_eq!(engine.snapshot().status(), status, "fixture");
    engine
}

const OK: StatusCode = StatusCode::OK;
const DOWN: StatusCode = StatusCode::SERVICE_UNAVAILABLE;

#[tokio::test]
async fn status_codes_of_every_endpoint_in_every_status() {
    // status, /health, /health/ready, /health/live, /livez, /readyz
    let table = [
        (Status::Starting, DOWN, DOWN, OK, OK, DOWN),
        (Status::Healthy, OK, OK, OK, OK, OK),
        (Status::Degraded, OK, OK, OK, OK, OK),
        (Status::Unhealthy, DOWN, DOWN, OK, OK, DOWN),
        (Status::Stopping, DOWN, DOWN, DOWN, DOWN, DOWN),
    ];
    for (status, health, ready, live, livez, readyz) in table {
        let engine = engine_in(status);
        let got = [
            get(&engine, "/health").await.status,
            get(&engine, "/health/ready").await.status,
            get(&engine, "/health/live").await.status,
            get(&engine, "/livez").await.status,
            get(&engine, "/readyz").await.status,
            get(&engine, "/health/checks").await.status,
            get(&engine, "/health/summary").await.status,
            get(&engine, "/metrics").await.status,
        ];
        assert_eq!(
            got,
            [health, ready, live, livez, readyz, OK, OK, OK],
            "in status {status}"
        );

        let name = status.as_str();
        assert_eq!(get(&engine, "/health").await.json()["status"], name);
        let ready = get(&engine, "/health/ready").await.json();
        assert_eq!(ready["status"], name);
        assert_eq!(ready["ready"], status.is_ready());
        let live = get(&engine, "/health/live").await.json();
        assert_eq!(live["status"], name);
        assert_eq!(live["live"], status != Status::Stopping);
        assert_eq!(get(&engine, "/health/summary").await.json()["status"], name);
    }
}

#[tokio::test]
async fn unknown_paths_are_not_found() {
    let engine = engine_in(Status::Healthy);
    assert_eq!(get(&engine, "/healthz").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test(start_paused = true)]
async fn health_follows_the_chorus_schema() {
    let engine = Engine::builder()
        .stagger(false)
        .node_id("node-123")
        .version("v1.0.0")
        .build();
    let p2p = || async {
        tokio::time::sleep(Duration::from_millis(15)).await;
        Report::pass("5 peers connected")
            .with_detail("connected_peers", 5)
            .with_detail("min_peers", 3)
    };
    let db = Script::always(Report::fail("Database ping failed").with_error("connection refused"));
    engine
        .register(spec("p2p-connectivity").critical(true), p2p)
        .expect("valid");
    engine
        .register(
            spec("database-connectivity").thresholds(Thresholds::immediate()),
            db.probe(),
        )
        .expect("valid");
    engine
        .register(spec("never-run").enabled(false), || async {
            Report::pass("ok")
        })
        .expect("valid");
    let mut events = engine.subscribe();
    engine.start();
    db.wait_runs(1).await;
    common::check_change(&mut events, "p2p-connectivity").await;

    let reply = get(&engine, "/health").await;
    assert_eq!(reply.status, OK, "degraded still serves");
    assert_eq!(reply.content_type, "application/json");
    let body = reply.json();
    let required = set(&[
        "status",
        "message",
        "checks",
        "uptime",
        "start_time",
        "last_update",
        "version",
        "node_id",
    ]);
    assert!(
        keys(&body).is_superset(&required),
        "keys: {:?}",
        keys(&body)
    );
    assert_eq!(body["status"], "degraded");
    assert_eq!(
        body["message"],
        "check \"database-connectivity\" failing: Database ping failed"
    );
    assert!(
        body["uptime"].is_u64(),
        "uptime is integer nanoseconds: {}",
        body["uptime"]
    );
    assert_eq!(body["version"], "v1.0.0");
    assert_eq!(body["node_id"], "node-123");
    let start_time = rfc3339(&body["start_time"]);
    assert!(rfc3339(&body["last_update"]) >= start_time);

    let checks = &body["checks"];
    assert_eq!(
        keys(checks),
        set(&["database-connectivity", "never-run", "p2p-connectivity"])
    );
    let p2p = &checks["p2p-connectivity"];
    assert_eq!(p2p["healthy"], true);
    assert_eq!(p2p["message"], "5 peers connected");
    assert_eq!(
        p2p["details"],
        json!({"connected_peers": 5, "min_peers": 3})
    );
    let latency = p2p["latency"]
        .as_u64()
        .expect("latency is integer nanoseconds");
    assert!(
        (15_000_000..1_000_000_000).contains(&latency),
        "a 15 ms probe reports about 15 000 000 ns, got {latency}"
    );
    assert!(rfc3339(&p2p["timestamp"]) >= start_time);
    assert_eq!(p2p["state"], "passing");
    assert_eq!(p2p["critical"], true);
    assert_eq!(p2p["kind"], "custom");

    let database = &checks["database-connectivity"];
    assert_eq!(database["healthy"], false);
    assert_eq!(database["message"], "Database ping failed");
    assert_eq!(database["error"], "connection refused");
    assert!(
        database.get("details").is_none(),
        "empty details are omitted"
    );
    assert!(database["latency"].is_u64());
    rfc3339(&database["timestamp"]);
    assert_eq!(database["state"], "critical");
    assert_eq!(database["consecutive_failures"], 1);

    let never = &checks["never-run"];
    assert_eq!(never["healthy"], false);
    assert_eq!(never["message"], "disabled");
    assert_eq!(never["enabled"], false);
    assert_eq!(never["state"], "unknown");
    assert!(never.get("latency").is_none() && never.get("timestamp").is_none());
}

#[tokio::test]
async fn ready_live_and_checks_bodies() {
    let engine = engine_in(Status::Unhealthy);

    let ready = get(&engine, "/health/ready").await;
    assert_eq!(ready.content_type, "application/json");
    let ready = ready.json();
    assert_eq!(keys(&ready), set(&["ready", "status", "message"]));
    assert_eq!(ready["ready"], false);
    assert_eq!(ready["status"], "unhealthy");
    assert_eq!(ready["message"], "critical check \"db\" failing: db fail");

    let live = get(&engine, "/health/live").await.json();
    assert_eq!(keys(&live), set(&["live", "status", "uptime"]));
    assert_eq!(live["live"], true);
    let uptime = live["uptime"]
        .as_str()
        .expect("Go-style duration, as CHORUS shows it");
    assert!(
        uptime.ends_with('s')
            && uptime
                .trim_end_matches('s')
                .chars()
                .all(|c| c.is_ascii_alphanumeric())
    );

    let checks = get(&engine, "/health/checks").await.json();
    assert_eq!(keys(&checks), set(&["checks", "total", "timestamp"]));
    assert_eq!(checks["total"], 2);
    assert_eq!(keys(&checks["checks"]), set(&["cache", "db"]));
    assert_eq!(checks["checks"]["db"]["healthy"], false);
    assert_eq!(checks["checks"]["cache"]["healthy"], true);
    rfc3339(&checks["timestamp"]);

    let empty = engine_with_no_checks();
    let checks = get(&empty, "/health/checks").await.json();
    assert_eq!(checks["total"], 0);
    assert_eq!(checks["checks"], json!({}));
    let health = get(&empty, "/health").await;
    assert_eq!(health.status, OK);
    assert_eq!(health.json()["checks"], json!({}));
}

fn engine_with_no_checks() -> Engine {
    engine()
}

#[tokio::test]
async fn summary_reports_scores_and_key_metrics() {
    let engine = Engine::builder().node_id("n1").version("2.0.0").build();
    ttl(&engine, "db", true, "storage");
    ttl(&engine, "cache", false, "cache");
    ttl(&engine, "queue", false, "queue");
    engine.update_ttl("db", Verdict::Pass, None).expect("ttl");
    engine.update_ttl("db", Verdict::Pass, None).expect("ttl");
    engine
        .update_ttl("cache", Verdict::Fail, None)
        .expect("ttl");

    let reply = get(&engine, "/health/summary").await;
    assert_eq!(reply.status, OK);
    let s = reply.json();
    assert_eq!(s["status"], "degraded");
    // (2 × 1.0 + 1 × 0.0) / 3: the critical db weighs double; queue has no result yet.
    let overall = s["overall_score"].as_f64().expect("score");
    assert!((overall - 2.0 / 3.0).abs() < 1e-5, "{overall}");
    assert_eq!(s["component_scores"], json!({"storage": 1.0, "cache": 0.0}));
    assert_eq!(s["check_runs_total"], 3, "runs so far");
    assert_eq!(s["check_runs_failed"], 1);
    assert_eq!(s["total_checks"], 3, "the CHORUS name of check_runs_total");
    assert!(s.get("failed_checks").is_none(), "{s}");
    rfc3339(&s["last_check"]);
    assert_eq!(s["thresholds"], json!({"healthy": 0.95, "degraded": 0.75}));
    let k = &s["key_metrics"];
    assert_eq!(k["checks_registered"], 3);
    assert_eq!(k["checks_passing"], 1);
    assert_eq!(k["checks_warning"], 0);
    assert_eq!(k["checks_critical"], 1);
    assert_eq!(k["checks_unknown"], 1);
    assert!(k["uptime"].is_string());
    assert_eq!(s["node_id"], "n1");
    assert_eq!(s["version"], "2.0.0");
}

#[tokio::test]
async fn endpoints_never_run_probes() {
    let engine = engine();
    let db = Script::always(Report::pass("ok"));
    engine
        .register(spec("db").critical(true), db.probe())
        .expect("valid");
    for path in [
        "/health",
        "/health/ready",
        "/health/checks",
        "/readyz",
        "/metrics",
    ] {
        get(&engine, path).await;
    }
    assert_eq!(db.runs(), 0);
    assert_eq!(get(&engine, "/health").await.json()["status"], "starting");
}

// ---------------------------------------------------------------------------------------------
// /livez and /readyz
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn livez_is_kube_style_text() {
    let healthy = engine_in(Status::Healthy);
    let reply = get(&healthy, "/livez").await;
    assert_eq!((reply.status, reply.body.as_str()), (OK, "ok"));
    assert_eq!(reply.content_type, "text/plain; charset=utf-8");
    let verbose = get(&healthy, "/livez?verbose").await;
    assert_eq!(
        verbose.body,
        "[+]ping ok\n[+]shutdown ok\nlivez check passed\n"
    );

    let stopping = engine_in(Status::Stopping);
    let reply = get(&stopping, "/livez").await;
    assert_eq!(reply.status, DOWN);
    assert!(reply.body.contains("livez check failed"), "{}", reply.body);
    let verbose = get(&stopping, "/livez?verbose=true").await;
    assert_eq!(
        verbose.body,
        "[+]ping ok\n[-]shutdown failed: reason withheld\nlivez check failed\n"
    );
    let excluded = get(&stopping, "/livez?exclude=shutdown&verbose").await;
    assert_eq!(excluded.status, OK);
    assert!(
        excluded.body.contains("[+]shutdown excluded: ok\n"),
        "{}",
        excluded.body
    );
    let unhealthy = engine_in(Status::Unhealthy);
    assert_eq!(
        get(&unhealthy, "/livez").await.status,
        OK,
        "a failing check is no reason to restart"
    );
}

#[tokio::test]
async fn readyz_lists_checks_and_honours_exclude() {
    let engine = engine_in(Status::Unhealthy);
    let reply = get(&engine, "/readyz").await;
    assert_eq!(reply.status, DOWN);
    assert_eq!(reply.content_type, "text/plain; charset=utf-8");
    assert!(reply.body.starts_with("failed"), "{}", reply.body);

    let verbose = get(&engine, "/readyz?verbose").await;
    assert_eq!(verbose.status, DOWN);
    assert_eq!(
        verbose.body,
        "[+]shutdown ok\n[+]cache ok\n[-]db failed: reason withheld\nreadyz check failed\n"
    );

    let excluded = get(&engine, "/readyz?exclude=db").await;
    assert_eq!(
        (excluded.status, excluded.body.as_str()),
        (OK, "ok"),
        "excluding the failing check"
    );
    let excluded = get(&engine, "/readyz?verbose&exclude=db").await;
    assert_eq!(
        excluded.body,
        "[+]shutdown ok\n[+]cache ok\n[+]db excluded: ok\nreadyz check passed\n"
    );
    let other = get(&engine, "/readyz?exclude=cache").await;
    assert_eq!(other.status, DOWN, "excluding another check does not help");
}

#[tokio::test]
async fn readyz_notes_non_critical_failures_and_waits_for_results() {
    let degraded = engine_in(Status::Degraded);
    let reply = get(&degraded, "/readyz?verbose").await;
    assert_eq!(reply.status, OK);
    assert!(
        reply.body.contains("[+]cache ok (non-critical, failing)\n"),
        "{}",
        reply.body
    );

    let starting = engine_in(Status::Starting);
    let reply = get(&starting, "/readyz?verbose").await;
    assert_eq!(reply.status, DOWN);
    assert!(reply.body.contains("[-]db failed"), "{}", reply.body);

    let stopping = engine_in(Status::Stopping);
    let reply = get(&stopping, "/readyz?verbose").await;
    assert_eq!(reply.status, DOWN);
    assert!(
        reply.body.starts_with("[-]shutdown failed"),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn readyz_exclude_is_percent_decoded() {
    let engine = engine();
    ttl(&engine, "db:primary", true, "storage");
    engine
        .update_ttl("db:primary", Verdict::Fail, None)
        .expect("ttl");
    ttl(&engine, "web", false, "web");
    engine.update_ttl("web", Verdict::Pass, None).expect("ttl");
    assert_eq!(get(&engine, "/readyz").await.status, DOWN);
    assert_eq!(
        get(&engine, "/readyz?exclude=db%3Aprimary").await.status,
        OK
    );
    assert_eq!(get(&engine, "/readyz?exclude=db:primary").await.status, OK);
}

// ---------------------------------------------------------------------------------------------
// /metrics
// ---------------------------------------------------------------------------------------------

/// Parses `name{label="value",...} value`; None when the line is not a sample.
fn parse_sample(line: &str) -> Option<(String, BTreeMap<String, String>, f64)> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().ok()?,
    };
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, Some(rest.strip_suffix('}')?)),
        None => (series, None),
    };
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        return None;
    }
    let mut map = BTreeMap::new();
    if let Some(mut rest) = labels {
        while !rest.is_empty() {
            let (key, after) = rest.split_once("=\"")?;
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return None;
            }
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next()? {
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        c @ ('\\' | '"') => value.push(c),
                        _ => return None,
                    },
                    (i, '"') => break i,
                    (_, c) => value.push(c),
                }
            };
            map.insert(key.to_owned(), value);
            rest = &after[end + 1..];
            rest = match rest.strip_prefix(',') {
                Some(r) => r,
                None if rest.is_empty() => rest,
                None => return None,
            };
        }
    }
    Some((name.to_owned(), map, value))
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn metrics_are_valid_prometheus_text_with_the_documented_families() {
    let engine = engine_in(Status::Unhealthy);
    engine
        .update_ttl("cache", Verdict::Pass, None)
        .expect("ttl");
    engine
        .update_ttl("cache", Verdict::Warn, None)
        .expect("ttl");

    let reply = get(&engine, "/metrics").await;
    assert_eq!(reply.status, OK);
    assert_eq!(
        reply.content_type,
        "text/plain; version=0.0.4; charset=utf-8"
    );

    let mut samples = Vec::new();
    let mut typed = BTreeSet::new();
    for line in reply.body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            assert!(["gauge", "counter", "histogram"].contains(&kind), "{line}");
            typed.insert(name.to_owned());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let sample =
            parse_sample(line).unwrap_or_else(|| panic!("not `name{{labels}} value`: {line:?}"));
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| sample.0.strip_suffix(suffix).filter(|f| typed.contains(*f)))
            .unwrap_or(&sample.0);
        assert!(typed.contains(family), "sample before its # TYPE: {line}");
        samples.push(sample);
    }
    let value = |name: &str, pairs: &[(&str, &str)]| -> f64 {
        let wanted = labels(pairs);
        samples
            .iter()
            .find(|(n, l, _)| n == name && *l == wanted)
            .unwrap_or_else(|| panic!("no sample {name}{wanted:?}"))
            .2
    };

    for family in [
        "vigil_check_passed_total",
        "vigil_check_failed_total",
        "vigil_check_duration_seconds_bucket",
        "vigil_check_state",
        "vigil_system_health_score",
        "vigil_component_health_score",
        "vigil_health_status",
    ] {
        assert!(
            samples.iter().any(|(n, _, _)| n == family),
            "family {family} missing"
        );
    }

    assert_eq!(
        value("vigil_health_status", &[("status", "unhealthy")]),
        1.0
    );
    assert_eq!(value("vigil_health_status", &[("status", "healthy")]), 0.0);
    let status_total: f64 = samples
        .iter()
        .filter(|(n, _, _)| n == "vigil_health_status")
        .map(|s| s.2)
        .sum();
    assert_eq!(status_total, 1.0, "exactly one status is current");

    assert_eq!(value("vigil_check_failed_total", &[("check", "db")]), 1.0);
    assert_eq!(value("vigil_check_passed_total", &[("check", "db")]), 0.0);
    assert_eq!(
        value("vigil_check_passed_total", &[("check", "cache")]),
        2.0
    );
    assert_eq!(
        value("vigil_check_warned_total", &[("check", "cache")]),
        1.0
    );
    assert_eq!(
        value(
            "vigil_check_state",
            &[("check", "db"), ("state", "critical"), ("critical", "true")]
        ),
        1.0
    );
    assert_eq!(
        value(
            "vigil_check_state",
            &[("check", "db"), ("state", "passing"), ("critical", "true")]
        ),
        0.0
    );
    assert_eq!(
        value(
            "vigil_check_state",
            &[
                ("check", "cache"),
                ("state", "warning"),
                ("critical", "false")
            ]
        ),
        1.0
    );
    assert_eq!(
        value("vigil_component_health_score", &[("component", "storage")]),
        0.0
    );
    // cache: pass, pass, warn = 5/6.
    let cache_score = value("vigil_component_health_score", &[("component", "cache")]);
    assert!((cache_score - 5.0 / 6.0).abs() < 1e-5, "{cache_score}");
    let system = value("vigil_system_health_score", &[]);
    assert!((system - (5.0 / 6.0) / 3.0).abs() < 1e-5, "{system}");

    // The histogram: cumulative buckets ending in +Inf = _count.
    for check in ["db", "cache"] {
        let buckets: Vec<(String, f64)> = samples
            .iter()
            .filter(|(n, l, _)| n == "vigil_check_duration_seconds_bucket" && l["check"] == check)
            .map(|(_, l, v)| (l["le"].clone(), *v))
            .collect();
        assert_eq!(buckets.last().map(|b| b.0.as_str()), Some("+Inf"));
        assert!(
            buckets.windows(2).all(|w| w[0].1 <= w[1].1),
            "cumulative: {buckets:?}"
        );
        let count = value("vigil_check_duration_seconds_count", &[("check", check)]);
        assert_eq!(buckets.last().map(|b| b.1), Some(count));
        let runs = if check == "db" { 1.0 } else { 3.0 };
        assert_eq!(count, runs);
    }
}

#[tokio::test]
async fn metric_label_values_are_escaped() {
    let engine = engine();
    ttl(&engine, "odd", false, "a \"quoted\"\\component\nname");
    engine.update_ttl("odd", Verdict::Pass, None).expect("ttl");
    let body = get(&engine, "/metrics").await.body;
    let line = body
        .lines()
        .find(|l| l.starts_with("vigil_component_health_score{"))
        .expect("component score sample");
    assert_eq!(
        line,
        r#"vigil_component_health_score{component="a \"quoted\"\\component\nname"} 1"#
    );
    let (_, labels, _) = parse_sample(line).expect("parses");
    assert_eq!(labels["component"], "a \"quoted\"\\component\nname");
}
