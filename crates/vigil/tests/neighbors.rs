//! Neighbour monitoring between real agents: one agent watches another over gRPC and HTTP, a port
//! nothing listens on over TCP, and lists a control link it does not probe; `/v1/neighbors`,
//! `vigil neighbors`, the metrics, the node's own status and the log lines show what happened.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::time::Duration;

use common::tools::promtool_accepts;
use common::{free_port, http, node_config, temp_file, vigil, Agent};
use serde_json::Value;

/// Starts agent `id` with a critical check that always passes, then `rest` of its config.
fn node(id: &str, rest: &str) -> Agent {
    Agent::start(&node_config(
        id,
        &format!(
            r#"[[checks]]
name = "self"
probe = "exec:true"
interval = "100ms"
critical = true
{rest}"#
        ),
    ))
}

fn neighbor<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["neighbors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap()
}

#[test]
fn an_agent_watches_its_neighbours_and_degrades_when_one_is_gone() {
    let worker_grpc = free_port();
    let worker = node(
        "worker",
        &format!("[grpc]\nbind = \"127.0.0.1:{worker_grpc}\"\n"),
    );
    let gone_port = free_port();
    let gateway = node(
        "gateway",
        &format!(
            r#"[[neighbors]]
name = "worker-grpc"
address = "127.0.0.1:{worker_grpc}"
interval = "100ms"
[[neighbors]]
name = "worker-http"
protocol = "http"
address = "{worker_http}"
interval = "100ms"
[[neighbors]]
name = "gone"
protocol = "tcp"
address = "127.0.0.1:{gone_port}"
interval = "100ms"
timeout = "500ms"
degrade_node = true
[[neighbors]]
name = "control"
protocol = "tcp"
address = "127.0.0.1:1"
monitor = false
"#,
            worker_http = worker.addr
        ),
    );

    let (_, settled) = gateway.wait_until(
        "/v1/neighbors",
        Duration::from_secs(20),
        "the neighbours settle",
        |_, body| {
            neighbor(body, "worker-grpc")["state"] == "healthy"
                && neighbor(body, "worker-http")["state"] == "healthy"
                && neighbor(body, "gone")["state"] == "unavailable"
        },
    );
    let grpc = neighbor(&settled, "worker-grpc");
    assert_eq!(grpc["protocol"], "grpc");
    assert_eq!(grpc["consecutive_failures"], 0);
    assert!(grpc["last_latency_seconds"].as_f64().unwrap() > 0.0);
    assert!(grpc["last_error"].is_null());
    let gone = neighbor(&settled, "gone");
    assert!(
        gone["consecutive_failures"].as_u64().unwrap() >= 3,
        "{gone}"
    );
    assert!(
        gone["last_error"].as_str().unwrap().contains("refused"),
        "{gone}"
    );
    let control = neighbor(&settled, "control");
    assert_eq!(control["monitored"], false);
    assert_eq!(control["state"], "unknown");
    assert_eq!(control["probes_total"], 0);
    assert_eq!(settled["unavailable"], 1);

    // The unavailable neighbour with degrade_node makes the node degraded, still ready.
    let (status, _) = gateway.wait_until(
        "/health",
        Duration::from_secs(20),
        "the node turns degraded",
        |_, body| body["status"] == "degraded",
    );
    assert_eq!(status, 200);

    let out = vigil(&["neighbors", "--addr", &format!("http://{}", gateway.addr)]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "an unavailable neighbour: {table}"
    );
    for expected in [
        "worker-grpc",
        "healthy",
        "gone",
        "unavailable",
        "not monitored",
    ] {
        assert!(table.contains(expected), "{expected} in\n{table}");
    }

    let (_, metrics) = http(gateway.addr, "GET", "/metrics", None, "").unwrap();
    assert!(metrics.contains("vigil_neighbor_state{neighbor=\"gone\",state=\"unavailable\"} 1"));
    assert!(metrics.contains("vigil_neighbor_state{neighbor=\"worker-grpc\",state=\"healthy\"} 1"));
    assert!(metrics.contains("vigil_neighbor_probes_total{neighbor=\"control\"} 0"));
    promtool_accepts(&metrics);

    // The neighbour comes back: healthy after one success, and the node with it.
    let _back = std::net::TcpListener::bind(("127.0.0.1", gone_port)).unwrap();
    gateway.wait_until(
        "/v1/neighbors",
        Duration::from_secs(20),
        "the neighbour recovers",
        |_, body| neighbor(body, "gone")["state"] == "healthy",
    );
    gateway.wait_until(
        "/health",
        Duration::from_secs(20),
        "the node recovers",
        |_, body| body["status"] == "healthy",
    );

    // Each move was a log line.
    let mut gateway = gateway;
    gateway.signal("-TERM");
    gateway.child.wait().unwrap();
    let mut log = String::new();
    gateway
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    for line in [
        "neighbour gone is degraded",
        "neighbour gone is unavailable",
        "neighbour gone is healthy",
        "neighbour worker-grpc is healthy",
    ] {
        assert!(log.contains(line), "{line:?} in the log:\n{log}");
    }
}

#[test]
fn grpc_and_neighbour_config_errors_point_at_their_key() {
    let path = temp_file(
        "neighbors-bad.toml",
        r#"[grpc]
bind = "127.0.0.1"
services = { "app.Api" = ["db", "cache"], "self" = ["self"] }

[[checks]]
name = "self"
probe = "memory"

[[neighbors]]
name = "a"
address = "127.0.0.1:1"
protocol = "udp"

[[neighbors]]
name = "b"
address = "nowhere"
protocol = "tcp"
interval = "0s"

[[neighbors]]
name = "b"
address = "127.0.0.1:2"
failures_before_degraded = 4
failures_before_unavailable = 2
colour = "red"
"#,
    );
    let out = vigil(&["config", "check", "-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let file = path.to_str().unwrap();
    for expected in [
        format!("{file}:2:8: invalid bind address \"127.0.0.1\": the port is missing"),
        format!("{file}:3:27: services: no check is named \"db\""),
        format!("{file}:3:33: services: no check is named \"cache\""),
        format!("{file}:3:43: services: \"self\" is already a check's name"),
        format!("{file}:12:12: protocol: unknown protocol \"udp\""),
        format!("{file}:16:11: address: invalid tcp target"),
        format!("{file}:18:12: interval must be from 100ms to 24h, found 0s"),
        format!("{file}:21:8: duplicate neighbour name \"b\""),
        format!("{file}:24:31: thresholds: failures_before_unavailable (2) must not be below failures_before_degraded (4)"),
        format!("{file}:25:1: unknown field `colour`"),
    ] {
        assert!(text.contains(&expected), "{expected} in\n{text}");
    }
}
