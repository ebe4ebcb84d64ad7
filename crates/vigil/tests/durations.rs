//! Durations at their limits: every duration setting refuses what no timer can hold, where it is
//! written (config file, API, stack file), and an agent given the largest accepted values runs.

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

mod common;

use std::io::Read;
use std::time::Duration;

use common::{free_port, http, send_signal, temp_file, vigil, wait_for, Agent, TOKEN};

/// Larger than any clock can add, though it fits a `Duration`.
const HUGE: &str = "10000000000000000000s";

#[test]
fn config_check_refuses_every_overflowing_duration_at_its_position() {
    let config = format!(
        "[health]
history_max_age = \"20000y\"

[shutdown]
timeout = \"{HUGE}\"
drain = \"{HUGE}\"
on_critical = \"{HUGE}\"

[cluster]
heartbeat_interval = \"{HUGE}\"
probe_timeout = \"{HUGE}\"
suspicion_min = \"{HUGE}\"
suspicion_max = \"{HUGE}\"
gossip_interval = \"{HUGE}\"
push_pull_interval = \"{HUGE}\"
reap_after = \"{HUGE}\"
election_timeout = \"{HUGE}\"

[[checks]]
name = \"job\"
probe = \"ttl\"
ttl = \"{HUGE}\"

[[checks]]
name = \"fast\"
probe = \"memory\"
interval = \"1ns\"

[[neighbors]]
name = \"db\"
address = \"127.0.0.1:5432\"
timeout = \"{HUGE}\"
"
    );
    let path = temp_file("huge-durations.toml", &config);
    let file = path.to_str().unwrap();
    let out = vigil(&["config", "check", "-c", file]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = [
        "2:19: history_max_age must be from 1s to 30d, found 7305000d".to_owned(),
        format!("5:11: timeout must be from 1ms to 1h, found {HUGE}"),
        format!("6:9: drain must be from 0s to 1h, found {HUGE}"),
        format!("7:15: on_critical must be from 0s to 24h, found {HUGE}"),
        format!("10:22: heartbeat_interval must be from 10ms to 1m, found {HUGE}"),
        format!("11:17: probe_timeout must be from 10ms to 1m, found {HUGE}"),
        format!("12:17: suspicion_min must be from 100ms to 1h, found {HUGE}"),
        format!("13:17: suspicion_max must be from 100ms to 1h, found {HUGE}"),
        format!("14:19: gossip_interval must be from 10ms to 1m, found {HUGE}"),
        format!("15:22: push_pull_interval must be from 1s to 1h, found {HUGE}"),
        format!("16:14: reap_after must be from 1s to 7d, found {HUGE}"),
        format!("17:20: election_timeout must be from 60ms to 1m, found {HUGE}"),
        format!("22:7: ttl must be from 1s to 7d, found {HUGE}"),
        "27:12: interval must be from 100ms to 24h, found 1ns".to_owned(),
        format!("32:11: timeout must be from 10ms to 1h, found {HUGE}"),
    ];
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{stderr}");
    for (line, expected) in lines.iter().zip(&expected) {
        assert_eq!(*line, format!("{file}:{expected}"));
    }
}

#[test]
fn the_api_refuses_a_ttl_no_timer_can_hold_and_keeps_running() {
    let agent = Agent::start(&common::node_config(
        "api-limits",
        &format!("token = \"{TOKEN}\"\n"),
    ));
    for (body, message) in [
        (
            format!(r#"{{"probe": "ttl", "ttl": "{HUGE}"}}"#),
            format!("invalid check definition: ttl: ttl must be from 1s to 7d, found {HUGE}"),
        ),
        (
            r#"{"probe": "memory", "interval": "1ns"}"#.to_owned(),
            "invalid check definition: interval: interval must be from 100ms to 24h, found 1ns"
                .to_owned(),
        ),
    ] {
        let (code, answer) =
            http(agent.addr, "PUT", "/v1/checks/huge", Some(TOKEN), &body).unwrap();
        assert_eq!(code, 400, "{answer}");
        let json: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(json["error"], message.as_str(), "{answer}");
    }
    let (code, _) = agent.get("/health/live");
    assert_eq!(code, 200, "the agent runs on");
    let (code, body) = agent.get("/health/checks");
    assert_eq!(code, 200);
    assert!(body["checks"].get("huge").is_none(), "{body}");
}

#[test]
fn a_stack_file_with_an_overflowing_duration_starts_nothing() {
    let path = temp_file(
        "huge-stack.toml",
        &format!(
            "[services.a]\ncommand = [\"true\"]\nstop_grace = \"{HUGE}\"\n[services.a.health]\nprobe = \"tcp://127.0.0.1:1\"\ninterval = \"{HUGE}\"\n"
        ),
    );
    let file = path.to_str().unwrap();
    let out = vigil(&["up", "-f", file]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "{file}:3:14: stop_grace must be from 0s to 1h, found \"{HUGE}\"\n\
             {file}:6:12: interval must be from 10ms to 24h, found \"{HUGE}\"\n"
        )
    );
}

/// Each duration at the top of its range. `[shutdown] drain` stays at its default: at its
/// largest (1h) it would hold the shutdown this test waits for.
const LARGEST: &str = r#"
[node]
id = "far"

[api]
bind = "127.0.0.1:{port}"
token = "test-token-0123456789"

[health]
history_max_age = "30d"

[shutdown]
timeout = "1h"
on_critical = "24h"

[cluster]
bind = "127.0.0.1:{gossip}"
role = "voter"
voters = ["far"]
heartbeat_interval = "1m"
phi_min_std_dev = "1m"
phi_acceptable_pause = "1m"
probe_timeout = "1m"
suspicion_min = "1h"
suspicion_max = "1h"
gossip_interval = "1m"
push_pull_interval = "1h"
reap_after = "7d"
election_timeout = "1m"

[[checks]]
name = "job"
probe = "ttl"
ttl = "7d"
start_period = "24h"

[[checks]]
name = "live"
probe = "http://127.0.0.1:{port}/health/live"
interval = "24h"
timeout = "1h"
start_period = "24h"

[[neighbors]]
name = "self"
address = "127.0.0.1:{port}"
protocol = "http"
interval = "24h"
timeout = "1h"
"#;

#[test]
fn an_agent_with_the_largest_accepted_durations_runs_and_stops_cleanly() {
    let config = LARGEST.replace("{gossip}", &free_port().to_string());
    let agent = Agent::start(&config);

    let (code, _) = http(
        agent.addr,
        "PUT",
        "/v1/checks/job/pass",
        Some(TOKEN),
        "done",
    )
    .unwrap();
    assert_eq!(code, 200);
    agent.wait_until(
        "/health/checks",
        Duration::from_secs(10),
        "the TTL check passes once pushed",
        |_, body| body["checks"]["job"]["state"] == "passing",
    );
    agent.wait_until(
        "/v1/members",
        Duration::from_secs(10),
        "the node lists itself as an alive member",
        |code, body| code == 200 && body.to_string().contains("\"far\""),
    );

    let mut agent = agent;
    send_signal(agent.child.id(), "-TERM");
    let exited = wait_for(Duration::from_secs(30), || agent.child.try_wait().unwrap());
    let mut log = String::new();
    if let Some(stderr) = agent.child.stderr.as_mut() {
        stderr.read_to_string(&mut log).unwrap();
    }
    assert_eq!(exited.and_then(|s| s.code()), Some(0), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn command_line_durations_are_held_to_their_range() {
    let cases: [(&[&str], &str); 3] = [
        (
            &["watch", "--count", "1", "--interval"],
            "--interval must be from 100ms to 1h",
        ),
        (
            &["fake-service", "--port", "1", "--ready-after"],
            "--ready-after must be from 0s to 24h",
        ),
        (
            &["fake-service", "--port", "1", "--exit-after"],
            "--exit-after must be from 0s to 24h",
        ),
    ];
    for (args, message) in cases {
        let mut argv = args.to_vec();
        argv.push(HUGE);
        let out = vigil(&argv);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "a usage error: {stderr}");
        assert!(stderr.contains(message), "{stderr}");
    }
}
