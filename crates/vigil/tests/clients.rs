//! Discovery used by the clients people already run, against real `vigil agent` processes on
//! 127.0.0.1: Prometheus finding its scrape targets with `http_sd_configs`, and haproxy routing
//! through `server-template` and `resolvers` pointed at vigil's DNS. The instances are
//! `vigil fake-service` processes, killed by PID.

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::raft::{agreed_leader, scratch, Node, SETTLE};
use common::tools::tool;
use common::{free_port, get_json, http, wait_for, FakeService, TOKEN};
use serde_json::Value;

/// A program of the test's, stopped with the test.
struct Program(Child);

impl Program {
    fn start(program: &Path, args: &[&str], log: &Path) -> Program {
        let log = std::fs::File::create(log).unwrap();
        let child = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Program(child)
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A one-voter cluster whose agent has `extra` config, and two `api` instances on it, each
/// checked over TCP every 200ms; waits until both pass.
fn cluster_with_two_instances(name: &str, extra: &str) -> (Node, [FakeService; 2], PathBuf) {
    let dir = scratch(name);
    let gossip = free_port();
    let node = Node::start_with("v1", &dir, gossip, &[gossip], true, &["v1"], extra);
    agreed_leader(std::slice::from_ref(&node));
    let services = [
        FakeService::start(free_port()),
        FakeService::start(free_port()),
    ];
    for (i, service) in services.iter().enumerate() {
        let body = format!(
            r#"{{"name": "api", "id": "api-{i}", "address": "127.0.0.1", "port": {port},
                "checks": [{{"probe": "tcp://127.0.0.1:{port}", "interval": "200ms"}}]}}"#,
            port = service.port
        );
        let (code, answer) = http(node.api, "POST", "/v1/services", Some(TOKEN), &body).unwrap();
        assert_eq!(code, 201, "{answer}");
    }
    wait_for(SETTLE, || {
        let (_, body) = node.get("/v1/services/api?healthy")?;
        (body["instances"].as_array()?.len() == 2).then_some(())
    })
    .expect("both instances pass");
    (node, services, dir)
}

fn address(service: &FakeService) -> String {
    format!("127.0.0.1:{}", service.port)
}

/// The addresses of Prometheus's active targets.
fn prometheus_targets(prometheus: std::net::SocketAddr) -> Option<BTreeSet<String>> {
    let (code, body) = get_json(prometheus, "/api/v1/targets?state=active")?;
    if code != 200 {
        return None;
    }
    body["data"]["activeTargets"].as_array().map(|targets| {
        targets
            .iter()
            .filter_map(|t| t["discoveredLabels"]["__address__"].as_str())
            .map(str::to_owned)
            .collect()
    })
}

#[test]
fn prometheus_scrapes_the_healthy_instances_vigil_lists() {
    let Some(prometheus) = tool("prometheus", "Debian package `prometheus`") else {
        return;
    };
    let (node, [mut api0, api1], dir) = cluster_with_two_instances("prometheus", "");
    let web = free_port();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: api\n    \
             http_sd_configs:\n      - url: http://{}/v1/sd/prometheus\n        \
             refresh_interval: 1s\n",
            node.api
        ),
    )
    .unwrap();
    let _prometheus = Program::start(
        &prometheus,
        &[
            &format!("--config.file={}", config.display()),
            &format!("--web.listen-address=127.0.0.1:{web}"),
            &format!("--storage.tsdb.path={}", dir.join("tsdb").display()),
        ],
        &dir.join("prometheus.log"),
    );
    let web = format!("127.0.0.1:{web}").parse().unwrap();
    let both: BTreeSet<String> = [address(&api0), address(&api1)].into();
    wait_for(SETTLE, || (prometheus_targets(web)? == both).then_some(()))
        .unwrap_or_else(|| panic!("Prometheus scrapes both: {:?}", prometheus_targets(web)));
    let (_, body) = get_json(web, "/api/v1/targets?state=active").unwrap();
    let labels: &Value = &body["data"]["activeTargets"][0]["labels"];
    assert_eq!(labels["service"], "api", "{labels}");

    api0.kill();
    let one: BTreeSet<String> = [address(&api1)].into();
    wait_for(SETTLE, || (prometheus_targets(web)? == one).then_some(())).unwrap_or_else(|| {
        panic!(
            "Prometheus drops the dead one: {:?}",
            prometheus_targets(web)
        )
    });
}

/// The addresses of the servers of backend `api` that haproxy holds running, from its runtime
/// API (`show servers state`) on the unix socket `socket`.
fn haproxy_servers(socket: &Path) -> Option<BTreeSet<String>> {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(socket).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .ok()?;
    stream.write_all(b"show servers state api\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let mut lines = answer.lines().skip_while(|l| !l.starts_with("# be_id"));
    let header: Vec<&str> = lines.next()?.trim_start_matches("# ").split(' ').collect();
    let column = |name: &str| header.iter().position(|h| *h == name);
    let (name, addr, state, port) = (
        column("srv_name")?,
        column("srv_addr")?,
        column("srv_op_state")?,
        column("srv_port")?,
    );
    Some(
        lines
            .map(|l| l.split(' ').collect::<Vec<_>>())
            .filter(|f| f.get(name).is_some_and(|n| n.starts_with("api")))
            // 2: running.
            .filter(|f| f.get(state) == Some(&"2"))
            .filter_map(|f| Some(format!("{}:{}", f.get(addr)?, f.get(port)?)))
            .collect(),
    )
}

#[test]
fn haproxy_routes_only_to_the_instances_vigils_dns_answers() {
    let Some(haproxy) = tool("haproxy", "Debian package `haproxy`") else {
        return;
    };
    let dns = free_port();
    let extra = format!("[dns]\nbind = \"127.0.0.1:{dns}\"\n");
    let (_node, [mut api0, api1], dir) = cluster_with_two_instances("haproxy", &extra);
    let front = free_port();
    let socket = dir.join("haproxy.sock");
    let config = dir.join("haproxy.cfg");
    // No health checks of haproxy's own: whatever it routes to comes from DNS alone.
    std::fs::write(
        &config,
        format!(
            "global\n  log stderr format short local0\n  stats socket {socket} level admin\n\
             resolvers vigil\n  nameserver v1 127.0.0.1:{dns}\n  accepted_payload_size 8192\n  \
             resolve_retries 3\n  timeout resolve 100ms\n  timeout retry 100ms\n  hold valid 500ms\n  \
             hold obsolete 0s\n\
             defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
             frontend web\n  bind 127.0.0.1:{front}\n  default_backend api\n\
             backend api\n  balance roundrobin\n  \
             server-template api 4 _api._tcp.service.vigil resolvers vigil resolve-prefer ipv4 init-addr none\n\
",
            socket = socket.display()
        ),
    )
    .unwrap();
    let check = Command::new(&haproxy)
        .args(["-c", "-f"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "haproxy takes the config: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let _haproxy = Program::start(
        &haproxy,
        &["-db", "-f", &config.display().to_string()],
        &dir.join("haproxy.log"),
    );
    let front = format!("127.0.0.1:{front}").parse().unwrap();
    let both: BTreeSet<String> = [address(&api0), address(&api1)].into();
    wait_for(SETTLE, || (haproxy_servers(&socket)? == both).then_some(()))
        .unwrap_or_else(|| panic!("haproxy resolves both: {:?}", haproxy_servers(&socket)));

    api0.kill();
    let one: BTreeSet<String> = [address(&api1)].into();
    wait_for(SETTLE, || (haproxy_servers(&socket)? == one).then_some(()))
        .unwrap_or_else(|| panic!("haproxy drops the dead one: {:?}", haproxy_servers(&socket)));
    // Every request through haproxy now reaches the live instance.
    for _ in 0..20 {
        let (code, body) = http(front, "GET", "/health", None, "").unwrap();
        assert_eq!(code, 200, "{body}");
    }
}
