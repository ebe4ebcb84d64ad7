//! Service instances with their own checks, and discovery, across real `vigil agent` processes
//! on 127.0.0.1: three voters and a member; the instances are `vigil fake-service` processes,
//! killed and restarted by PID.

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

mod common;

use std::sync::mpsc;

use common::cluster::EventStream;
use common::raft::{agreed_leader, three_voters, Node, SETTLE, VOTERS};
use common::{free_port, get_json, http, wait_for, FakeService, TOKEN};
use serde_json::Value;

/// The ids of the instances `path` lists on `node`, once it answers 200.
fn ids(node: &Node, path: &str) -> Option<Vec<String>> {
    let (code, body) = node.get(path)?;
    if code != 200 {
        return None;
    }
    let mut ids: Vec<String> = body["instances"]
        .as_array()?
        .iter()
        .filter_map(|i| i["id"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    Some(ids)
}

/// The state of instance `id` of `service` as `node` answers.
fn state(node: &Node, service: &str, id: &str) -> Option<String> {
    let (_, body) = node.get(&format!("/v1/services/{service}"))?;
    body["instances"]
        .as_array()?
        .iter()
        .find(|i| i["id"] == id)
        .and_then(|i| i["state"].as_str().map(str::to_owned))
}

/// Waits until every node in `nodes` lists exactly `want` for `path`.
fn everywhere(nodes: &[&Node], path: &str, want: &[&str], what: &str) {
    for node in nodes {
        wait_for(SETTLE, || (ids(node, path)? == want).then_some(())).unwrap_or_else(|| {
            panic!(
                "{what}: {} lists {:?} for {path}, not {want:?}",
                node.id,
                ids(node, path)
            )
        });
    }
}

fn post(node: &Node, body: &str) -> (u16, Value) {
    let (code, body) = http(node.api, "POST", "/v1/services", Some(TOKEN), body).unwrap();
    (code, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// The index header of a discovery answer, by a raw GET.
fn index_of(node: &Node, path: &str) -> u64 {
    let (_, headers) = common::http_head(node.api, path).unwrap();
    headers
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("x-vigil-index")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("no X-Vigil-Index in {headers}"))
}

#[test]
fn instances_leave_and_rejoin_healthy_answers_everywhere_as_their_processes_die_and_return() {
    let (nodes, ports, dir) = three_voters("discovery");
    agreed_leader(&nodes);
    let mut member = Node::start("m1", &dir, free_port(), &ports, false, &VOTERS);

    let mut api1 = FakeService::start(free_port());
    let mut api2 = FakeService::start(free_port());
    // One instance with a check of its own on the member; one on a voter with the default
    // TCP check of its address.
    let (code, body) = post(
        &member,
        &format!(
            r#"{{"name": "api", "id": "a1", "address": "127.0.0.1", "port": {},
                "checks": [{{"name": "tcp", "probe": "tcp://127.0.0.1:{}", "interval": "200ms"}}]}}"#,
            api1.port, api1.port
        ),
    );
    assert_eq!(code, 201, "{body}");
    let (code, body) = post(
        &nodes[0],
        &format!(
            r#"{{"name": "api", "id": "a2", "address": "127.0.0.1", "port": {}, "tags": ["blue"]}}"#,
            api2.port
        ),
    );
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["registered"]["node"], "v1");

    let all: Vec<&Node> = nodes.iter().chain([&member]).collect();
    everywhere(&all, "/v1/services/api?healthy", &["a1", "a2"], "both pass");
    let (_, body) = member.get("/v1/services/api").unwrap();
    let a2 = body["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "a2")
        .unwrap();
    assert_eq!(a2["checks"][0]["name"], "tcp", "{a2}");
    assert_eq!(
        a2["checks"][0]["probe"],
        format!("tcp://127.0.0.1:{}", api2.port)
    );
    assert_eq!(
        ids(&member, "/v1/services/api?tag=blue"),
        Some(vec!["a2".into()])
    );
    assert_eq!(
        ids(&member, "/v1/services/api?node=m1"),
        Some(vec!["a1".into()])
    );

    // A blocking query with no change returns at its wait, with the same index.
    let index = index_of(&member, "/v1/services/api?healthy");
    assert_eq!(
        index_of(
            &member,
            &format!("/v1/services/api?healthy&index={index}&wait=300ms")
        ),
        index
    );
    let mut events = EventStream::open(member.api);
    // One waiting on the member returns once the instance's process is killed.
    let (tx, rx) = mpsc::channel();
    let api = member.api;
    std::thread::spawn(move || {
        let answer = get_json(
            api,
            &format!("/v1/services/api?healthy&index={index}&wait=60s"),
        );
        let _ = tx.send(answer);
    });
    api1.kill();
    let (code, body) = rx
        .recv_timeout(SETTLE)
        .expect("the blocking query returns on the change")
        .unwrap();
    assert_eq!(code, 200);
    let returned: Vec<&str> = body["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(returned, ["a2"], "{body}");

    everywhere(
        &all,
        "/v1/services/api?healthy",
        &["a2"],
        "a1's process is dead",
    );
    assert!(
        events.wait_for(r#""service":"api""#, SETTLE),
        "the member's event stream tells of the change"
    );
    everywhere(
        &all,
        "/v1/services/api",
        &["a1", "a2"],
        "a1 is still registered",
    );
    for node in &all {
        let (code, groups) = node.get("/v1/sd/prometheus").unwrap();
        assert_eq!(code, 200);
        let targets: Vec<&str> = groups
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|g| g["targets"][0].as_str())
            .collect();
        assert_eq!(targets, [format!("127.0.0.1:{}", api2.port)], "{groups}");
        assert_eq!(groups[0]["labels"]["__meta_vigil_tags"], ",blue,");
    }
    assert_ne!(state(&member, "api", "a1").as_deref(), Some("passing"));

    api1.restart();
    everywhere(
        &all,
        "/v1/services/api?healthy",
        &["a1", "a2"],
        "a1 is back",
    );

    // The default TCP check sees the voter's instance go too.
    api2.kill();
    everywhere(
        &all,
        "/v1/services/api?healthy",
        &["a1"],
        "a2's process is dead",
    );

    // The member's death makes its instances critical everywhere.
    member.kill();
    for node in &nodes {
        wait_for(SETTLE, || {
            (state(node, "api", "a1")? == "critical").then_some(())
        })
        .unwrap_or_else(|| panic!("{} holds a1 critical once m1 is dead", node.id));
    }
    let (_, metrics) = common::http(nodes[0].api, "GET", "/metrics", None, "").unwrap();
    assert!(
        metrics.contains(r#"vigil_service_instances{service="api",state="passing"} 0"#)
            && !metrics.contains(r#"vigil_service_instances{service="api",state="critical"} 0"#),
        "{metrics}"
    );
}

#[test]
fn ttl_lapses_and_long_critical_instances_are_removed() {
    let (nodes, _, _) = three_voters("ttl");
    let leader = agreed_leader(&nodes);
    let follower = &nodes[(leader + 1) % 3];
    let owner = &nodes[(leader + 2) % 3];

    // An ephemeral instance renewed by its process; renewals sent to another agent are passed
    // on to the instance's node.
    let (code, body) = post(
        owner,
        r#"{"name": "worker", "id": "w1", "address": "127.0.0.1", "port": 9, "ephemeral": true,
            "checks": [{"name": "heartbeat", "probe": "ttl", "ttl": "3s"}]}"#,
    );
    assert_eq!(code, 201, "{body}");
    let renew = |node: &Node| {
        wait_for(SETTLE, || {
            let (code, body) = http(
                node.api,
                "PUT",
                "/v1/services/worker/w1/pass",
                Some(TOKEN),
                "alive",
            )
            .unwrap();
            (code == 200).then_some(body)
        })
        .expect("the TTL update is taken")
    };
    let body = renew(follower);
    assert!(body.contains("heartbeat"), "{body}");
    everywhere(
        &nodes.iter().collect::<Vec<_>>(),
        "/v1/services/worker?healthy",
        &["w1"],
        "renewed",
    );
    // Without renewals the TTL lapses and the ephemeral instance goes.
    for node in &nodes {
        wait_for(SETTLE, || {
            let (code, _) = node.get("/v1/services/worker")?;
            (code == 404).then_some(())
        })
        .unwrap_or_else(|| panic!("{} dropped the lapsed instance", node.id));
    }

    // An instance critical for longer than its deregister_critical_after goes too.
    let closed = free_port();
    let (code, body) = post(
        follower,
        &format!(
            r#"{{"name": "gone", "id": "g1", "address": "127.0.0.1", "port": {closed},
                "deregister_critical_after": "1s",
                "checks": [{{"probe": "tcp://127.0.0.1:{closed}", "interval": "200ms",
                             "failures_before_unhealthy": 1}}]}}"#
        ),
    );
    assert_eq!(code, 201, "{body}");
    wait_for(SETTLE, || {
        let (code, _) = nodes[leader].get("/v1/services/gone")?;
        (code == 404).then_some(())
    })
    .expect("the long-critical instance is deregistered");
}

#[test]
fn bad_registrations_are_refused_with_the_field_named() {
    let (nodes, _, _) = three_voters("refusals");
    let leader = agreed_leader(&nodes);
    let node = &nodes[leader];
    let cases = [
        (
            r#"{"name": "a", "id": "1", "address": "h", "port": 1, "checks": [{"probe": "smtp://h"}]}"#,
            "checks[0].probe",
        ),
        (
            r#"{"name": "a", "id": "1", "address": "h", "port": 1, "checks": [{"probe": "tcp://h:1", "interval": "soon"}]}"#,
            "checks[0].interval",
        ),
        (
            r#"{"name": "a", "id": "1", "address": "h", "port": 70000}"#,
            "port",
        ),
        (
            r#"{"name": "a", "id": "1", "address": "h", "port": 1, "deregister_critical_after": "1ms"}"#,
            "deregister_critical_after",
        ),
        (
            r#"{"name": "a", "id": "1", "address": "h", "port": 1, "node": "nowhere"}"#,
            "node",
        ),
        (
            r#"{"name": "a", "id": "1", "address": "h", "port": 1, "checks": [{"probe": "ttl", "ttl": "5s"}, {"name": "check-1", "probe": "ttl", "ttl": "5s"}]}"#,
            "checks[1].name",
        ),
    ];
    for (body, field) in cases {
        let (code, answer) = post(node, body);
        assert_eq!(code, 400, "{body} → {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(field), "{body}: {error:?} names {field}");
    }
    // `checks: []` opts out of the default check: always passing, on a node that need not run
    // anything.
    let (code, body) = post(
        node,
        r#"{"name": "static", "id": "s1", "address": "h", "port": 1, "node": "elsewhere", "checks": []}"#,
    );
    assert_eq!(code, 201, "{body}");
    assert_eq!(
        ids(node, "/v1/services/static?healthy"),
        Some(vec!["s1".into()])
    );
    let (code, _) = http(
        node.api,
        "GET",
        "/v1/services/static?healthy=maybe",
        None,
        "",
    )
    .unwrap();
    assert_eq!(code, 400);
    let (code, _) = http(
        node.api,
        "GET",
        "/v1/services/static?index=1&wait=11m",
        None,
        "",
    )
    .unwrap();
    assert_eq!(code, 400);
}

/// The `[[services]]` of a member's config: the member, started without waiting for the voters
/// to elect a leader, registers its instances itself; they are discoverable on every agent, a
/// lost one is registered again, and its own check follows its process.
#[test]
fn an_agent_registers_the_services_of_its_config_and_keeps_them_registered() {
    let dir = common::raft::scratch("config-services");
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let nodes: Vec<Node> = VOTERS
        .iter()
        .enumerate()
        .map(|(i, id)| Node::start(id, &dir, ports[i], &ports, true, &VOTERS))
        .collect();
    let mut web = FakeService::start(free_port());
    let services = format!(
        r#"
[[services]]
name = "web"
address = "127.0.0.1"
port = {port}
tags = ["blue"]
[[services.checks]]
name = "tcp"
probe = "tcp://127.0.0.1:{port}"
interval = "200ms"
[[services]]
name = "web"
id = "web-static"
address = "127.0.0.1"
port = 1
checks = []
"#,
        port = web.port
    );
    let member = Node::start_with("m1", &dir, free_port(), &ports, false, &VOTERS, &services);
    let probed = format!("web-127.0.0.1:{}", web.port);

    let all: Vec<&Node> = nodes.iter().chain([&member]).collect();
    everywhere(
        &all,
        "/v1/services/web?healthy",
        &[probed.as_str(), "web-static"],
        "both instances of the config pass",
    );
    let (_, body) = nodes[0].get("/v1/services/web?tag=blue").unwrap();
    assert_eq!(body["instances"][0]["id"], probed.as_str(), "{body}");
    assert_eq!(body["instances"][0]["node"], "m1", "{body}");
    assert_eq!(body["instances"][0]["checks"][0]["name"], "tcp", "{body}");

    // Deregistered behind the agent's back, the instance is registered again.
    let (code, body) = http(
        nodes[0].api,
        "DELETE",
        "/v1/services/web/web-static",
        Some(TOKEN),
        "",
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    everywhere(
        &all,
        "/v1/services/web?healthy",
        &[probed.as_str(), "web-static"],
        "the lost instance is back",
    );

    // Its own check follows its process.
    web.kill();
    everywhere(
        &all,
        "/v1/services/web?healthy",
        &["web-static"],
        "the dead process's instance fails",
    );
    wait_for(SETTLE, || {
        (state(&member, "web", &probed)? == "critical").then_some(())
    })
    .expect("the dead process's instance turns critical");

    // A reload: the instance no longer in the file is deregistered, a new one registered.
    let config = std::fs::read_to_string(&member.config).unwrap();
    let edited = config.replace("id = \"web-static\"", "id = \"web-moved\"");
    std::fs::write(&member.config, edited).unwrap();
    let out = common::vigil(&[
        "reload",
        "--addr",
        &format!("http://{}", member.api),
        "--token",
        TOKEN,
    ]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("[[services]]"), "{said}");
    everywhere(
        &all,
        "/v1/services/web?healthy",
        &["web-moved"],
        "the reloaded list is registered, the one left out deregistered",
    );
}

#[test]
fn a_bad_service_in_the_config_is_an_error_at_its_position() {
    let bad = common::temp_file(
        "bad-services.toml",
        "[cluster]\n\n[[services]]\nname = \"web\"\naddress = \"127.0.0.1\"\nport = 70000\n\n\
         [[services]]\nname = \"db\"\naddress = \"127.0.0.1\"\nport = 5432\n\
         [[services.checks]]\nprobe = \"smtp://127.0.0.1\"\n",
    );
    let out = common::vigil(&["config", "check", "-c", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].contains("bad-services.toml:6:8:") && lines[0].contains("port must be 1 to 65535"),
        "{stderr}"
    );
    assert!(
        lines[1].contains("bad-services.toml:13:9:") && lines[1].contains("checks[0].probe"),
        "{stderr}"
    );
}

#[test]
fn maintenance_takes_an_instance_out_of_healthy_answers_everywhere_until_lifted() {
    let (nodes, _, _) = three_voters("maintenance");
    let all: Vec<&Node> = nodes.iter().collect();
    let leader = agreed_leader(&nodes);
    let follower = &nodes[(leader + 1) % 3];
    for id in ["a1", "a2"] {
        let (code, body) = post(
            &nodes[leader],
            &format!(
                r#"{{"name": "api", "id": "{id}", "address": "127.0.0.1", "port": 9, "checks": []}}"#
            ),
        );
        assert_eq!(code, 201, "{body}");
    }
    everywhere(
        &all,
        "/v1/services/api?healthy",
        &["a1", "a2"],
        "registered",
    );

    let path = "/v1/services/api/a1/maintenance";
    let (code, _) = http(follower.api, "PUT", path, None, "").unwrap();
    assert_eq!(code, 401, "no token, no maintenance");
    let (code, body) = http(
        follower.api,
        "PUT",
        path,
        Some(TOKEN),
        r#"{"reason": "kernel upgrade"}"#,
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("kernel upgrade"), "{body}");
    everywhere(
        &all,
        "/v1/services/api?healthy",
        &["a2"],
        "a1 in maintenance",
    );
    for node in &all {
        assert_eq!(state(node, "api", "a1").as_deref(), Some("maintenance"));
    }

    let (code, body) = http(
        follower.api,
        "PUT",
        "/v1/services/api/nope/maintenance",
        Some(TOKEN),
        "",
    )
    .unwrap();
    assert_eq!(code, 404, "{body}");

    let (code, body) = http(follower.api, "DELETE", path, Some(TOKEN), "").unwrap();
    assert_eq!(code, 200, "{body}");
    everywhere(
        &all,
        "/v1/services/api?healthy",
        &["a1", "a2"],
        "maintenance lifted",
    );
}
