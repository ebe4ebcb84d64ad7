//! The Consul-compatible surface as Consul's users reach it: python-consul (Debian's
//! `python3-consul`, run by Debian's `/usr/bin/python3`) and py-consul (PyPI) each register instances with TCP and TTL
//! checks through the agent API, passes the TTL, reads the catalog, health, status and members
//! of a real cluster, sees a blocking `health.service(passing=True, index=…)` return when an
//! instance's process is killed, puts an instance and then its whole node in maintenance and
//! deregisters it — all through a member that is not a voter, whose answers are then compared
//! with the voters'. Without a client library its test is skipped, saying so.

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::raft::{agreed_leader, three_voters, Node, SETTLE, VOTERS};
use common::skip::skip;
use common::{free_port, get_json, http, lines_of, wait_for, FakeService, TOKEN};
use serde_json::Value;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/consul_client.py");

/// Whether `python` can import a Consul client library; when not, the test is to be skipped
/// (`needs` says what to install), or with `VIGIL_REQUIRE_TOOLS` set fails.
fn has_client(python: &str, needs: &str) -> bool {
    let ok = Command::new(python)
        .args(["-c", "import consul"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        skip(needs);
    }
    ok
}

#[test]
fn python_consul_registers_reads_and_blocks_as_against_consul() {
    // Debian's python3-consul is installed for Debian's own interpreter.
    let python = "/usr/bin/python3";
    if has_client(python, "python-consul (Debian package python3-consul)") {
        run_client(python, "consul-python");
    }
}

#[test]
fn py_consul_registers_reads_and_blocks_as_against_consul() {
    let python = "python3";
    if has_client(python, "py-consul for python3 (pip install py-consul)") {
        run_client(python, "consul-py");
    }
}

/// Runs the client script with `python` against a three-voter cluster, and checks what it saw.
fn run_client(python: &str, name: &str) {
    let (mut nodes, seeds, dir) = three_voters(name);
    agreed_leader(&nodes);
    // The client talks to a member that is not a voter: it answers reads from its own copy and
    // passes writes on, as every agent must.
    nodes.push(Node::start("m1", &dir, free_port(), &seeds, false, &VOTERS));
    let ports = [free_port(), free_port()];
    let mut services: Vec<FakeService> = ports.iter().map(|p| FakeService::start(*p)).collect();

    let api = nodes[3].api;
    let mut child = Command::new(python)
        .args([
            SCRIPT,
            &api.ip().to_string(),
            &api.port().to_string(),
            TOKEN,
        ])
        .args([ports[0].to_string(), ports[1].to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let lines = lines_of(child.stdout.take().unwrap());
    let next = |what: &str| -> Value {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("python-consul prints its {what} step"));
        serde_json::from_str(&line).unwrap()
    };
    let read = next("read");
    assert_eq!(
        read["registered"],
        serde_json::json!([true, true, true]),
        "{read}"
    );
    assert_eq!(read["passed"], true, "{read}");
    assert!(
        read["leader"]
            .as_str()
            .is_some_and(|l| l.starts_with("127.0.0.1:")),
        "{read}"
    );
    assert_eq!(read["peers"], 3, "{read}");
    assert_eq!(
        read["members"],
        serde_json::json!(["m1", "v1", "v2", "v3"]),
        "{read}"
    );
    assert_eq!(read["datacenter"], "dc1");
    assert_eq!(read["services"]["web"], serde_json::json!(["v1"]), "{read}");
    assert_eq!(read["catalog"], serde_json::json!(["web-0", "web-1"]));
    assert_eq!(read["healthy"], serde_json::json!(["web-0", "web-1"]));
    assert_eq!(
        read["checks"],
        serde_json::json!([
            ["serfHealth", "passing"],
            ["service:web-0", "passing"],
            ["service:web-1", "passing"]
        ]),
        "{read}"
    );
    assert!(read["index"].as_u64().is_some_and(|i| i > 0));
    assert_eq!(
        read["agent_services"],
        serde_json::json!(["job-1", "web-0", "web-1"]),
        "{read}"
    );
    assert_eq!(
        read["agent_checks"],
        serde_json::json!([
            ["service:job-1", "passing"],
            ["service:web-0", "passing"],
            ["service:web-1", "passing"]
        ]),
        "{read}"
    );

    assert_eq!(next("blocking")["step"], "blocking");
    services[0].kill();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin).unwrap();
    let changed = next("changed");
    assert_eq!(
        changed["healthy"],
        serde_json::json!(["web-1"]),
        "{changed}"
    );
    assert!(
        changed["index"].as_u64() > read["index"].as_u64(),
        "{changed}"
    );
    let done = next("done");
    assert_eq!(
        done["maintenance"],
        serde_json::json!(["_service_maintenance:web-1"]),
        "{done}"
    );
    assert_eq!(done["node"], "m1", "{done}");
    assert_eq!(
        done["node_checks"],
        serde_json::json!([
            ["_node_maintenance", "critical", "rack move"],
            ["serfHealth", "passing", ""],
            ["service:job-1", "passing", ""]
        ]),
        "{done}"
    );
    assert_eq!(
        done["agent_maintenance"],
        serde_json::json!(["_node_maintenance"]),
        "{done}"
    );
    assert!(child.wait().unwrap().success());

    // Consul's check update with a JSON body, as consul-template and Consul's Go client send it.
    let (code, body) = http(
        api,
        "PUT",
        "/v1/agent/check/update/service:job-1",
        Some(TOKEN),
        r#"{"Status": "critical", "Output": "disk full"}"#,
    )
    .unwrap();
    assert_eq!((code, body.as_str()), (200, ""));
    let failed = wait_for(SETTLE, || {
        let (_, entries) = get_json(api, "/v1/health/service/job")?;
        let check = entries[0]["Checks"]
            .as_array()?
            .iter()
            .find(|c| c["CheckID"] == "service:job-1")?
            .clone();
        (check["Status"] == "critical").then_some(check)
    });
    assert_eq!(failed.unwrap()["Output"], "disk full");

    // The same node maintenance through vigil's own API, on a voter.
    let voter = nodes[0].api;
    let path = "/v1/members/m1/maintenance";
    let (code, _) = http(
        voter,
        "PUT",
        path,
        Some(TOKEN),
        r#"{"reason": "disk swap"}"#,
    )
    .unwrap();
    assert_eq!(code, 200);
    let state = wait_for(SETTLE, || {
        let (_, body) = get_json(api, "/v1/services/job")?;
        let state = body["instances"][0]["state"].as_str()?.to_owned();
        (state == "maintenance").then_some(state)
    });
    assert!(state.is_some(), "job-1 shows maintenance on the member");
    let (code, _) = http(voter, "DELETE", path, Some(TOKEN), "").unwrap();
    assert_eq!(code, 200);
    let (code, _) = http(
        voter,
        "PUT",
        "/v1/members/nobody/maintenance",
        Some(TOKEN),
        "",
    )
    .unwrap();
    assert_eq!(code, 404);

    // Every agent, voter or not, gives the same answers once it has applied the same entries.
    for path in [
        "/v1/health/service/web",
        "/v1/catalog/services",
        "/v1/health/node/m1",
    ] {
        let same = wait_for(SETTLE, || {
            let answers: Vec<Value> = nodes
                .iter()
                .map(|n| n.get(path).map(|(_, v)| v))
                .collect::<Option<_>>()?;
            answers.windows(2).all(|w| w[0] == w[1]).then_some(())
        });
        assert!(same.is_some(), "the agents answer {path} alike");
    }
}
