//! `postgres://`, `redis://`, `redis-pubsub://` and `redis-kv://` probes against real servers, and
//! against servers that are down or never answer.
//!
//! The servers come from the environment: `VIGIL_TEST_POSTGRES` (a `postgres://` URL) and
//! `VIGIL_TEST_REDIS` (a `redis://` URL), which `.ci/run` sets after starting PostgreSQL and
//! redis-server on loopback. Without them these tests are skipped, each saying so, unless
//! `VIGIL_REQUIRE_TOOLS` is set.

mod common;

use std::time::Duration;

use tokio::net::TcpListener;
use vigil_health::{Report, Verdict};
use vigil_probe::ProbeOptions;

/// The server URL in `variable`, or `None` (the test is skipped) when it is not set.
fn server(variable: &str) -> Option<String> {
    match std::env::var(variable) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            common::skip::skip(&format!(
                "a server named by {variable} (.ci/run starts one and sets it)"
            ));
            None
        }
    }
}

fn outcome(report: &Report) -> &str {
    report.details["outcome"].as_str().unwrap_or_default()
}

/// A loopback port nothing listens on.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("address").port()
}

/// A server that accepts connections and never says a word, and the options that make a probe
/// give up on it quickly.
async fn silent_server() -> (TcpListener, ProbeOptions) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let options = ProbeOptions {
        timeout: Some(Duration::from_millis(300)),
        ..ProbeOptions::default()
    };
    (listener, options)
}

#[tokio::test]
async fn postgres_answers_select_1_with_its_version() {
    let Some(url) = server("VIGIL_TEST_POSTGRES") else {
        return;
    };
    let report = common::run_default(&url).await;
    assert_eq!(report.verdict, Verdict::Pass, "{report:?}");
    assert!(
        report.message.starts_with("SELECT 1 on PostgreSQL "),
        "{}",
        report.message
    );
    let version = report.details["server_version"].as_str().expect("version");
    assert!(
        version.chars().next().is_some_and(|c| c.is_ascii_digit()),
        "{version}"
    );
    assert!(report.details["latency_ms"].as_f64().is_some());
}

#[tokio::test]
async fn postgres_with_a_wrong_database_fails_with_the_servers_reason() {
    let Some(url) = server("VIGIL_TEST_POSTGRES") else {
        return;
    };
    let base = url.rsplit_once('/').map_or(url.as_str(), |(base, _)| base);
    let report = common::run_default(&format!("{base}/no_such_database")).await;
    assert_eq!(report.verdict, Verdict::Fail, "{report:?}");
    assert_eq!(outcome(&report), "failure");
    assert!(
        report.message.contains("no_such_database"),
        "{}",
        report.message
    );
}

#[tokio::test]
async fn postgres_down_is_a_failure_and_silent_is_a_timeout() {
    let port = closed_port().await;
    let report = common::run_default(&format!("postgres://vigil:secret@127.0.0.1:{port}/db")).await;
    assert_eq!(report.verdict, Verdict::Fail, "{report:?}");
    assert_eq!(outcome(&report), "failure");
    assert!(
        report.message.contains("cannot connect"),
        "{}",
        report.message
    );
    assert!(
        !report.message.contains("secret"),
        "the password is never shown: {}",
        report.message
    );

    let (listener, options) = silent_server().await;
    let address = listener.local_addr().expect("address");
    let report = common::run(&format!("postgres://vigil@{address}/db"), &options).await;
    assert_eq!(report.verdict, Verdict::Fail, "{report:?}");
    assert_eq!(outcome(&report), "timeout", "{report:?}");
}

#[tokio::test]
async fn redis_ping_pubsub_and_kv_pass_against_a_real_server() {
    let Some(url) = server("VIGIL_TEST_REDIS") else {
        return;
    };
    let rest = url.strip_prefix("redis:").expect("a redis:// URL");
    let report = common::run_default(&url).await;
    assert_eq!(report.verdict, Verdict::Pass, "{report:?}");
    assert!(report.message.starts_with("PONG in "), "{}", report.message);

    let report = common::run_default(&format!("redis-pubsub:{rest}")).await;
    assert_eq!(report.verdict, Verdict::Pass, "{report:?}");
    assert_eq!(outcome(&report), "success");
    assert!(report
        .message
        .starts_with("pub/sub loopback on vigil:probe:channel:"));

    let report = common::run_default(&format!("redis-kv:{rest}")).await;
    assert_eq!(report.verdict, Verdict::Pass, "{report:?}");
    assert_eq!(outcome(&report), "success");
    assert!(report
        .message
        .starts_with("SET, GET and DEL of vigil:probe:key:"));
}

#[tokio::test]
async fn redis_probes_leave_no_key_behind() {
    let Some(url) = server("VIGIL_TEST_REDIS") else {
        return;
    };
    let rest = url.strip_prefix("redis:").expect("a redis:// URL");
    for _ in 0..3 {
        let report = common::run_default(&format!("redis-kv:{rest}")).await;
        assert_eq!(report.verdict, Verdict::Pass, "{report:?}");
    }
    let client = redis::Client::open(url.as_str()).expect("url");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("vigil:probe:*")
        .query_async(&mut connection)
        .await
        .expect("KEYS");
    assert!(keys.is_empty(), "left behind: {keys:?}");
}

#[tokio::test]
async fn redis_down_is_a_failure_and_silent_is_a_timeout() {
    let port = closed_port().await;
    for scheme in ["redis", "redis-pubsub", "redis-kv"] {
        let report = common::run_default(&format!("{scheme}://127.0.0.1:{port}")).await;
        assert_eq!(report.verdict, Verdict::Fail, "{scheme}: {report:?}");
        assert_eq!(outcome(&report), "failure", "{scheme}: {report:?}");
    }
    let (listener, options) = silent_server().await;
    let address = listener.local_addr().expect("address");
    for scheme in ["redis", "redis-pubsub", "redis-kv"] {
        let report = common::run(&format!("{scheme}://{address}"), &options).await;
        assert_eq!(report.verdict, Verdict::Fail, "{scheme}: {report:?}");
        assert_eq!(outcome(&report), "timeout", "{scheme}: {report:?}");
    }
}

#[tokio::test]
async fn redis_with_a_wrong_password_names_the_servers_answer() {
    let Some(url) = server("VIGIL_TEST_REDIS") else {
        return;
    };
    let rest = url.strip_prefix("redis://").expect("a redis:// URL");
    let report = common::run_default(&format!("redis-kv://:wrong@{rest}")).await;
    assert_eq!(report.verdict, Verdict::Fail, "{report:?}");
    assert_eq!(outcome(&report), "failure");
    assert!(!report.message.contains("wrong@"), "{}", report.message);
}
