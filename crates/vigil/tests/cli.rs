//! The `vigil` command as users run it: real processes, real sockets on 127.0.0.1.

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::tools::{promtool, promtool_accepts};
use common::{free_port, http, temp_file, vigil, wait_for, Agent, TOKEN};

const AGENT_CONFIG: &str = r#"
[node]
id = "cli-test"

[api]
bind = "127.0.0.1:{port}"
token = "test-token-0123456789"

[shutdown]
drain = "1500ms"

[[checks]]
name = "worker"
probe = "ttl"
ttl = "1h"
critical = true

[[checks]]
name = "self"
probe = "http://127.0.0.1:{port}/health/live"
interval = "1s"
"#;

#[test]
fn config_check_accepts_the_example_and_reports_every_error_with_its_position() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/vigil.toml");
    let out = vigil(&["config", "check", "-c", example]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (7 checks)"));

    let bad = temp_file(
        "bad.toml",
        "[api]\nbind = \"127.0.0.1\"\n\n[[checks]]\nname = \"a\"\nprobe = \"tcp://x:1\"\ninterval = \"5x\"\n\n[[checks]]\nname = \"b\"\nprobe = \"ftp://nope\"\n",
    );
    let out = vigil(&["config", "check", "-c", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(
        lines[0].contains("bad.toml:2:8:") && lines[0].contains("port"),
        "{stderr}"
    );
    assert!(
        lines[1].contains("bad.toml:7:12:") && lines[1].contains("invalid duration \"5x\""),
        "{stderr}"
    );
    assert!(
        lines[2].contains("bad.toml:11:9:") && lines[2].contains("ftp"),
        "{stderr}"
    );
}

#[test]
fn probe_exit_codes_tell_healthy_unhealthy_timeout_warning_and_bad_arguments() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = format!("tcp://{}", listener.local_addr().unwrap());
    let closed = format!("tcp://127.0.0.1:{}", free_port());
    let cases: [(&[&str], i32, &str); 6] = [
        (&[&open], 0, "ok: "),
        (&[&closed], 2, "unhealthy: "),
        (&["exec:false"], 4, "warning: "),
        (&["exec:sleep 5", "--timeout", "300ms"], 3, "timeout: "),
        (
            &["exec:sh -c 'echo out of disk; exit 2'"],
            2,
            "unhealthy: exit code 2",
        ),
        (&["ftp://x"], 1, ""),
    ];
    for (args, code, prefix) in cases {
        let mut argv = vec!["probe"];
        argv.extend_from_slice(args);
        let out = vigil(&argv);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.starts_with(prefix), "{args:?}: {stdout:?}");
        assert!(stdout.lines().count() <= 1, "one line at most: {stdout:?}");
    }
    let out = vigil(&["probe", "ftp://x"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ftp"),
        "the error names the bad part"
    );
}

#[test]
fn an_agent_serves_its_checks_guards_writes_and_drains_on_sigterm() {
    let agent = Agent::start(AGENT_CONFIG);
    let (code, body) = agent.get("/health/ready");
    assert_eq!(
        code, 503,
        "the critical TTL check has no result yet: {body}"
    );
    assert_eq!(body["status"], "starting");

    let (code, body) = http(agent.addr, "PUT", "/v1/checks/worker/pass", None, "").unwrap();
    assert_eq!(code, 401);
    assert!(body.contains("\"error\""), "{body}");
    let (code, _) = http(
        agent.addr,
        "PUT",
        "/v1/checks/worker/pass",
        Some(TOKEN),
        "batch 1 done",
    )
    .unwrap();
    assert_eq!(code, 200);

    let (_, ready) = agent.wait_until(
        "/health/ready",
        Duration::from_secs(10),
        "ready once the critical check passes",
        |code, _| code == 200,
    );
    assert_eq!(ready["ready"], true);

    let addr = format!("http://{}", agent.addr);
    let out = vigil(&["status", "--addr", &addr]);
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("cli-test") && table.contains("healthy"),
        "{table}"
    );
    let out = vigil(&["checks", "--addr", &addr, "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["checks"]["worker"]["message"], "batch 1 done");

    agent.signal("-TERM");
    let (code, body) = agent.wait_until(
        "/health/ready",
        Duration::from_secs(5),
        "readiness reports stopping while the agent drains",
        |_, body| body["status"] == "stopping",
    );
    assert_eq!(code, 503, "{body}");
    assert_eq!(agent.get("/health/live").0, 503);

    let mut agent = agent;
    let exited = wait_for(Duration::from_secs(20), || agent.child.try_wait().unwrap());
    assert_eq!(
        exited.and_then(|s| s.code()),
        Some(0),
        "a clean shutdown exits 0"
    );
}

#[test]
fn metrics_pass_promtool() {
    if promtool().is_none() {
        return;
    }
    let agent = Agent::start(AGENT_CONFIG);
    agent.wait_until(
        "/health/checks",
        Duration::from_secs(10),
        "a check result to expose",
        |_, body| body["checks"]["self"]["state"] == "passing",
    );
    let (code, text) = http(agent.addr, "GET", "/metrics", None, "").unwrap();
    assert_eq!(code, 200);
    for family in [
        "vigil_check_passed_total",
        "vigil_check_failed_total",
        "vigil_check_duration_seconds_bucket",
        "vigil_check_state",
        "vigil_system_health_score",
        "vigil_component_health_score",
        "vigil_health_status",
    ] {
        assert!(text.contains(family), "missing {family}");
    }
    promtool_accepts(&text);
}

// ---------------------------------------------------------------------------------------------
// `vigil probe` usage errors, and what `vigil config check` says about small mistakes.
// ---------------------------------------------------------------------------------------------

#[test]
fn probe_usage_errors_exit_1_not_unhealthy() {
    let cases: [(&[&str], &str); 5] = [
        (&[], "required arguments were not provided"),
        (
            &["--bogus", "tcp://127.0.0.1:1"],
            "unexpected argument '--bogus'",
        ),
        (
            &["tcp://127.0.0.1:1", "--bogus"],
            "unexpected argument '--bogus'",
        ),
        (
            &["--expect-status", "abc", "http://127.0.0.1:1/"],
            "expected an HTTP status code from 100 to 599",
        ),
        (
            &["tcp://127.0.0.1:1", "--timeout", "2h"],
            "--timeout must be from 10ms to 1h",
        ),
    ];
    for (args, message) in cases {
        let mut argv = vec!["probe"];
        argv.extend_from_slice(args);
        let out = vigil(&argv);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let out = vigil(&["probe"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Usage: vigil probe [OPTIONS] <TARGET>"),
        "the usage line shows the options"
    );
    // --help is no error.
    let out = vigil(&["probe", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    // Other commands keep clap's own code for usage errors.
    assert_eq!(vigil(&["status", "--bogus"]).status.code(), Some(2));
}

#[test]
fn probe_options_may_follow_the_target() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = format!("tcp://{}", listener.local_addr().unwrap());
    let out = vigil(&["probe", &open, "--timeout", "2s", "-q"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "-q after the target is obeyed");
}

#[test]
fn config_check_counts_names_and_words_plainly() {
    let one = temp_file(
        "one-check.toml",
        "[[checks]]\nname = \"a\"\nprobe = \"memory\"\n",
    );
    let out = vigil(&["config", "check", "-c", one.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}: ok (1 check)\n", one.display())
    );

    let bad = temp_file(
        "no-probe.toml",
        "[node]\nid = \"x\"\n\n[[checks]]\nname = \"db\"\ninterval = \"soon\"\n",
    );
    let file = bad.to_str().unwrap();
    let out = vigil(&["config", "check", "-c", file]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines,
        [
            format!("{file}:4:1: check \"db\" has no `probe`: every check needs one, e.g. probe = \"http://127.0.0.1:8080/health\""),
            format!("{file}:6:12: interval: invalid duration \"soon\": not a number followed by a unit (write e.g. \"500ms\", \"30s\", \"1m30s\")"),
        ],
        "no parser offsets such as `expected number at 0`"
    );
}
