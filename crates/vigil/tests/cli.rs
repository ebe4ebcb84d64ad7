//! The `vigil` command as users run it: real processes, real sockets on 127.0.0.1.

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

mod common;

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::tools::{feed, promtool, promtool_accepts};
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

#[test]
fn a_standalone_agent_says_it_runs_alone_and_the_console_reads_its_status() {
    let agent = Agent::start(AGENT_CONFIG);
    let addr = format!("http://{}", agent.addr);
    for command in ["members", "leader"] {
        let out = vigil(&[command, "--addr", &addr]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "vigil {command}: {stderr}");
        assert!(
            stderr.contains("this node runs alone (no [cluster] section"),
            "vigil {command}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "no empty table for {command}");
    }

    let (code, _) = http(
        agent.addr,
        "PUT",
        "/v1/checks/worker/pass",
        Some(TOKEN),
        "done",
    )
    .unwrap();
    assert_eq!(code, 200);
    agent.wait_until("/health", Duration::from_secs(10), "healthy", |_, body| {
        body["status"] == "healthy"
    });
    // A failure followed by successes still fails the piped script.
    let out = console(&addr, "services\nstatus\nhelp\n");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("this node runs alone"), "{stderr}");
    assert_eq!(out.status.code(), Some(1), "one command failed: {stderr}");
    for (field, value) in [
        ("node", "cli-test"),
        ("status", "healthy"),
        ("message", "All health checks passing"),
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(field) && l.trim_end().ends_with(value)),
            "console status shows {field} {value}:\n{stdout}"
        );
    }
    let out = console(&addr, "status\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `vigil console` against `addr` with `script` on its stdin.
fn console(addr: &str, script: &str) -> std::process::Output {
    // The history goes to $HOME: this test process's own folder.
    let home = temp_file("console-script", script).with_file_name("");
    feed(
        Command::new(common::VIGIL)
            .args(["console", "--addr", addr])
            .env("HOME", &home)
            .env_remove("VIGIL_TOKEN"),
        script,
    )
}

#[test]
fn checks_cut_messages_to_the_terminal_width_with_an_ellipsis_and_not_when_piped() {
    let agent = Agent::start(AGENT_CONFIG);
    let addr = format!("http://{}", agent.addr);
    let long = format!("processed {} end", "x".repeat(150));
    let (code, _) = http(
        agent.addr,
        "PUT",
        "/v1/checks/worker/pass",
        Some(TOKEN),
        &long,
    )
    .unwrap();
    assert_eq!(code, 200);

    let out = Command::new(common::VIGIL)
        .args(["checks", "--addr", &addr])
        .env("COLUMNS", "100")
        .output()
        .unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.lines().all(|l| l.chars().count() <= 100),
        "fits in 100 columns:\n{table}"
    );
    let worker = table.lines().find(|l| l.starts_with("worker")).unwrap();
    assert!(worker.ends_with('…'), "a cut is marked: {worker}");
    assert_eq!(worker.chars().count(), 100, "{worker}");

    let out = Command::new(common::VIGIL)
        .args(["checks", "--addr", &addr])
        .env_remove("COLUMNS")
        .output()
        .unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains(&long), "whole when piped:\n{table}");

    // On a terminal 70 columns wide, as the terminal itself says (script(1) gives it one).
    let Some(script) = common::tools::tool("script", "Debian package bsdutils") else {
        return;
    };
    let out = Command::new(script)
        .args(["-qec"])
        .arg(format!(
            "stty rows 40 cols 70; NO_COLOR=1 '{}' checks --addr {addr}",
            common::VIGIL
        ))
        .arg("/dev/null")
        .env_remove("COLUMNS")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    let worker = screen
        .lines()
        .find(|l| l.starts_with("worker"))
        .unwrap_or_else(|| panic!("a worker row on the terminal:\n{screen}"));
    let worker = worker.trim_end_matches('\r');
    assert!(worker.ends_with('…'), "{worker}");
    assert_eq!(worker.chars().count(), 70, "{worker}");
}

/// A lone voter: its Raft takes a moment to start, the window in which signals went missing.
const LONE_VOTER: &str = r#"
[node]
id = "solo"

[api]
bind = "127.0.0.1:{port}"

[cluster]
bind = "127.0.0.1:{gossip}"
role = "voter"
voters = ["solo"]
"#;

/// Starts `vigil agent` on [`LONE_VOTER`] through `sh -c "PREFIX exec vigil agent …"`, logging
/// at info, and returns it once it has logged its first line.
fn agent_logging(prefix: &str) -> std::process::Child {
    let config = LONE_VOTER
        .replace("{port}", &free_port().to_string())
        .replace("{gossip}", &free_port().to_string());
    let path = temp_file(&format!("lone-{}.toml", free_port()), &config);
    let workdir = path.with_extension("d");
    std::fs::create_dir_all(&workdir).unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("{prefix} exec \"$0\" agent -c \"$1\""))
        .arg(common::VIGIL)
        .arg(&path)
        .current_dir(&workdir)
        .env("VIGIL_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = common::lines_of(child.stderr.take().unwrap());
    assert!(
        log.recv_timeout(Duration::from_secs(20)).is_ok(),
        "the agent logs as it starts"
    );
    // Keep reading, so the agent never blocks on a full pipe.
    std::thread::spawn(move || log.iter().count());
    child
}

#[test]
fn a_signal_in_the_agents_first_moments_stops_it_cleanly() {
    // As a shell starts a background job: SIGINT ignored until vigil installs its handler.
    for (prefix, signal) in [("trap '' INT;", "-INT"), ("", "-TERM")] {
        let mut child = agent_logging(prefix);
        common::send_signal(child.id(), signal);
        let exited = wait_for(Duration::from_secs(20), || child.try_wait().unwrap());
        if exited.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert_eq!(
            exited.map(|s| s.code()),
            Some(Some(0)),
            "{signal} during startup ends the agent cleanly"
        );
    }
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
