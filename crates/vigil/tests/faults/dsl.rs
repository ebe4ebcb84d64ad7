//! The fault-injection vocabulary: the demo compose cluster (deploy/compose) on real docker, the
//! faults docker can inflict on one of its nodes (kill, pause, network disconnect, restart), and
//! bounded waits on what the nodes say through their HTTP API, so that a scenario reads as a few
//! lines of "do this, then every node must say that".
//!
//! The test reaches every node's API through a second network it attaches (`edge`), so cutting a
//! node from the cluster network partitions the cluster without hiding the node from the test:
//! docker drops traffic between bridge networks, and gossip and Raft use cluster addresses only.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::cluster::{instance_ids, member_state, member_states};
use crate::common::tools::compose_program;
use crate::common::{get_json, http};

/// The cluster's nodes, as named in deploy/compose/docker-compose.yml.
pub const VOTERS: [&str; 3] = ["v1", "v2", "v3"];
/// The plain members.
pub const MEMBERS: [&str; 3] = ["m1", "m2", "m3"];
/// The token the suite gives the cluster for writes.
const TOKEN: &str = "fault-suite-token";
/// The cluster key of deploy/compose/docker-compose.yml, which the suite keeps.
pub const CLUSTER_KEY: &str = "ZGVtby1vbmx5LWtleS1tYWtlLXlvdXItb3duLWtleSE=";
/// Any single wait for the cluster to settle gives up after this long.
pub const SETTLE: Duration = Duration::from_secs(40);

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program} cannot run: {e}"))
}

/// Runs a docker command that must succeed.
fn docker(args: &[&str]) -> String {
    let out = run("docker", args);
    assert!(
        out.status.success(),
        "docker {}: {}",
        args.join(" "),
        text(&out.stderr)
    );
    text(&out.stdout).trim().to_owned()
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One printed figure of a scenario, in a form a script can pick out of the test output.
pub fn figure(scenario: &str, name: &str, value: impl std::fmt::Display) {
    println!("FIGURE {scenario}: {name} = {value}");
}

/// A duration as a figure shows it: seconds with `decimals` decimals.
pub fn seconds(duration: Duration, decimals: usize) -> String {
    format!("{:.*} s", decimals, duration.as_secs_f64())
}

/// The demo cluster of one test run, removed with everything the test added when dropped.
pub struct Cluster {
    project: String,
    compose: Vec<&'static str>,
    file: PathBuf,
    net: String,
    /// Node name → its container and its address on the edge network (the API listens on
    /// every interface).
    nodes: Vec<(String, String, IpAddr)>,
}

impl Cluster {
    /// Builds the image, brings the compose cluster up, attaches the edge network, and waits
    /// until every node sees all six alive and the voters agree on a leader.
    pub fn up() -> Cluster {
        let build = Command::new("bash")
            .arg(repo().join("deploy/docker/build-image.sh"))
            .arg("vigil:scratch")
            .env("BINARY", env!("CARGO_BIN_EXE_vigil"))
            .output()
            .unwrap();
        assert!(build.status.success(), "{}", text(&build.stderr));
        let pid = std::process::id();
        // A /24 of its own per run, out of docker's default pools, so concurrent runs coexist.
        let net = format!("10.214.{}", 20 + pid % 200);
        let mut cluster = Cluster {
            project: format!("vigilfaults{pid}"),
            compose: compose_program().expect("docker compose is installed"),
            file: repo().join("deploy/compose/docker-compose.yml"),
            net,
            nodes: Vec::new(),
        };
        let started = Instant::now();
        let up = cluster.compose(&["up", "-d"]);
        assert!(up.status.success(), "compose up: {}", text(&up.stderr));
        let edge = cluster.edge_network();
        docker(&["network", "create", "--label", &cluster.label(), &edge]);
        for name in VOTERS.iter().chain(MEMBERS.iter()) {
            let out = cluster.compose(&["ps", "-q", name]);
            let container = text(&out.stdout).trim().to_owned();
            assert!(!container.is_empty(), "no container for {name}");
            docker(&["network", "connect", &edge, &container]);
            let ip = docker(&[
                "inspect",
                "-f",
                &format!("{{{{(index .NetworkSettings.Networks \"{edge}\").IPAddress}}}}"),
                &container,
            ]);
            cluster.nodes.push((
                name.to_string(),
                container,
                ip.parse().expect("an edge address"),
            ));
        }
        cluster.wait("every node sees all six alive", SETTLE, |c| {
            c.all_nodes().iter().all(|n| c.sees_all_alive(n))
        });
        cluster.wait("a leader with quorum", SETTLE, |c| c.leader().is_some());
        figure(
            "startup",
            "compose up to a converged cluster",
            seconds(started.elapsed(), 1),
        );
        cluster
    }

    fn label(&self) -> String {
        format!("com.docker.compose.project={}", self.project)
    }

    fn edge_network(&self) -> String {
        format!("{}_edge", self.project)
    }

    fn cluster_network(&self) -> String {
        format!("{}_cluster", self.project)
    }

    fn compose(&self, args: &[&str]) -> Output {
        let mut command = Command::new(self.compose[0]);
        command
            .args(&self.compose[1..])
            .arg("-f")
            .arg(&self.file)
            .args(["-p", &self.project])
            .args(args)
            .env("VIGIL_NET", &self.net)
            .env("VIGIL_API_TOKEN", TOKEN)
            .env("VIGIL_IMAGE", "vigil:scratch")
            .stdin(Stdio::null());
        command.output().expect("compose runs")
    }

    /// The container running `node`.
    fn container(&self, node: &str) -> String {
        self.node(node).1.clone()
    }

    fn node(&self, name: &str) -> &(String, String, IpAddr) {
        self.nodes
            .iter()
            .find(|(n, _, _)| n == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    /// Every vigil node of the cluster.
    pub fn all_nodes(&self) -> Vec<String> {
        self.nodes.iter().map(|(n, _, _)| n.clone()).collect()
    }

    /// The nodes other than `except`.
    pub fn others(&self, except: &str) -> Vec<String> {
        self.all_nodes()
            .into_iter()
            .filter(|n| n != except)
            .collect()
    }

    fn api_of(&self, node: &str) -> SocketAddr {
        SocketAddr::new(self.node(node).2, 8081)
    }

    /// GET on a node's API: status and JSON body, or None when it does not answer.
    pub fn get(&self, node: &str, path: &str) -> Option<(u16, Value)> {
        get_json(self.api_of(node), path)
    }

    /// The state (`alive`, `suspect`, `dead`, `left`) `observer` gives `node`; None when the
    /// observer does not answer or does not list the node.
    pub fn state(&self, observer: &str, node: &str) -> Option<String> {
        let (_, body) = self.get(observer, "/v1/members")?;
        member_state(&body, node).map(str::to_owned)
    }

    /// The ids `observer` lists as members.
    pub fn listed(&self, observer: &str) -> Option<Vec<String>> {
        let (_, body) = self.get(observer, "/v1/members")?;
        body["members"]
            .is_array()
            .then(|| member_states(&body).into_iter().map(|(id, _)| id).collect())
    }

    /// Whether `observer` answers and lists all six nodes alive.
    pub fn sees_all_alive(&self, observer: &str) -> bool {
        self.all_nodes()
            .iter()
            .all(|n| self.state(observer, n).as_deref() == Some("alive"))
    }

    /// The leader every answering voter with quorum names, when they agree on one.
    pub fn leader(&self) -> Option<String> {
        let mut named = VOTERS.iter().filter_map(|v| {
            let (_, body) = self.get(v, "/v1/leader")?;
            (body["has_quorum"] == true)
                .then(|| body["leader_id"].as_str().map(str::to_owned))
                .flatten()
        });
        let first = named.next()?;
        named.all(|l| l == first).then_some(first)
    }

    /// Whether `voter` answers and says it is in touch with a quorum.
    pub fn has_quorum(&self, voter: &str) -> bool {
        self.get(voter, "/v1/leader")
            .is_some_and(|(_, body)| body["has_quorum"] == true)
    }

    /// Whether `member` answers and its gossip view counts a majority of voters reachable
    /// (`hasQuorum` of `/cluster/status` on a plain member).
    pub fn gossip_quorum(&self, member: &str) -> bool {
        self.get(member, "/cluster/status")
            .is_some_and(|(_, body)| body["hasQuorum"] == true)
    }

    /// Registers instance `id` of service `name` through `node`; the HTTP status (0: no answer).
    pub fn write(&self, node: &str, name: &str, id: &str) -> u16 {
        let body =
            format!(r#"{{"name": "{name}", "id": "{id}", "address": "10.0.0.1", "port": 80}}"#);
        http(
            self.api_of(node),
            "POST",
            "/v1/services",
            Some(TOKEN),
            &body,
        )
        .map(|(code, _)| code)
        .unwrap_or(0)
    }

    /// The instance ids of service `name` in `node`'s copy of the registry.
    pub fn instances(&self, node: &str, name: &str) -> Option<Vec<String>> {
        let (code, body) = self.get(node, &format!("/v1/services/{name}"))?;
        instance_ids(code, &body)
    }

    /// Waits until `condition` holds, for at most `limit`; fails the test naming `what`
    /// otherwise. Returns how long it took.
    pub fn wait(
        &self,
        what: &str,
        limit: Duration,
        condition: impl Fn(&Cluster) -> bool,
    ) -> Duration {
        let start = Instant::now();
        while start.elapsed() < limit {
            if condition(self) {
                return start.elapsed();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "not within {limit:?}: {what}; the nodes' views: {}",
            self.views()
        );
    }

    /// How every node sees every member, for a failure's message.
    fn views(&self) -> String {
        self.all_nodes()
            .iter()
            .map(|observer| match self.get(observer, "/v1/members") {
                Some((_, body)) => format!("{observer}: {:?}", member_states(&body)),
                None => {
                    let logs = run(
                        "docker",
                        &["logs", "--tail", "30", &self.container(observer)],
                    );
                    format!(
                        "{observer}: no answer; its last log lines:\n{}{}",
                        text(&logs.stdout),
                        text(&logs.stderr)
                    )
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Checks `condition` over and over for `window`; fails the test naming `what` the first
    /// time it does not hold.
    pub fn hold(&self, what: &str, window: Duration, condition: impl Fn(&Cluster) -> bool) {
        let start = Instant::now();
        while start.elapsed() < window {
            assert!(
                condition(self),
                "after {:?}: {what} no longer holds",
                start.elapsed()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL to the node's process (the container stops, its address disappears).
    pub fn kill(&self, node: &str) {
        docker(&["kill", &self.container(node)]);
    }

    /// Starts a stopped node again and waits until every node sees all six alive.
    pub fn start(&self, node: &str) -> Duration {
        docker(&["start", &self.container(node)]);
        self.wait(&format!("{node} back and seen alive by all"), SETTLE, |c| {
            c.all_nodes().iter().all(|n| c.sees_all_alive(n))
        })
    }

    /// Freezes every process of the node (the cgroup freezer: SIGSTOP without a signal).
    pub fn pause(&self, node: &str) {
        docker(&["pause", &self.container(node)]);
    }

    /// Thaws a paused node.
    pub fn unpause(&self, node: &str) {
        docker(&["unpause", &self.container(node)]);
    }

    /// Cuts the node off the cluster network; the test still reaches it on the edge network.
    pub fn partition(&self, node: &str) {
        docker(&[
            "network",
            "disconnect",
            &self.cluster_network(),
            &self.container(node),
        ]);
    }

    /// Puts the node back on the cluster network at its own address.
    pub fn heal(&self, node: &str) {
        let ip = format!("{}.{}", self.net, host_octet(node));
        docker(&[
            "network",
            "connect",
            "--ip",
            &ip,
            &self.cluster_network(),
            &self.container(node),
        ]);
    }

    /// `docker restart`: SIGTERM, a grace period, a fresh process on the same store.
    pub fn restart(&self, node: &str) {
        docker(&["restart", "-t", "5", &self.container(node)]);
    }

    /// Starts one more node, `id`, with `key` as its cluster key, on the cluster network with
    /// the cluster's seeds, and waits until its API answers (so it is running and gossiping).
    pub fn start_stranger(&self, id: &str, key: &str) {
        self.start_extra(id, "member", key, 40);
    }

    /// Starts one more node, `id`, in `role`, with the cluster's key, at host `octet` of the
    /// cluster network; its API's address once it answers.
    pub fn start_newcomer(&self, id: &str, role: &str, octet: u8) -> SocketAddr {
        self.start_extra(id, role, CLUSTER_KEY, octet)
    }

    fn start_extra(&self, id: &str, role: &str, key: &str, octet: u8) -> SocketAddr {
        let config = repo().join("deploy/compose/agent.toml");
        let ip = format!("{}.{octet}", self.net);
        let seeds = format!("{0}.11:7946, {0}.12:7946, {0}.13:7946", self.net);
        let name = format!("{}_{id}", self.project);
        docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--label",
            &self.label(),
            "--network",
            &self.cluster_network(),
            "--ip",
            &ip,
            "-v",
            &format!("{}:/etc/vigil/agent.toml:ro", config.display()),
            "-e",
            &format!("VIGIL_NODE_ID={id}"),
            "-e",
            &format!("VIGIL_CLUSTER_ROLE={role}"),
            "-e",
            &format!("VIGIL_API_TOKEN={TOKEN}"),
            "-e",
            &format!("VIGIL_CLUSTER_ADVERTISE={ip}:7946"),
            "-e",
            &format!("VIGIL_CLUSTER_SEEDS={seeds}"),
            "-e",
            &format!("VIGIL_CLUSTER_KEY={key}"),
            "vigil:scratch",
            "agent",
            "-c",
            "/etc/vigil/agent.toml",
        ]);
        docker(&["network", "connect", &self.edge_network(), &name]);
        let addr = docker(&[
            "inspect",
            "-f",
            &format!(
                "{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}",
                self.edge_network()
            ),
            &name,
        ]);
        let api = SocketAddr::new(addr.parse().expect("an edge address"), 8081);
        self.wait(&format!("{id} answers"), SETTLE, |_| {
            http(api, "GET", "/health/live", None, "").is_ok_and(|(code, _)| code == 200)
        });
        api
    }

    /// `POST` (add) or `DELETE` (remove) `/v1/voters/{voter}` through `via`: the status and the
    /// JSON body.
    pub fn change_voters(&self, via: &str, method: &str, voter: &str) -> (u16, Value) {
        let (code, body) = http(
            self.api_of(via),
            method,
            &format!("/v1/voters/{voter}"),
            Some(TOKEN),
            "",
        )
        .unwrap_or((0, String::new()));
        (code, serde_json::from_str(&body).unwrap_or(Value::Null))
    }
}

/// The last octet of a node's cluster address, as deploy/compose/docker-compose.yml assigns it.
fn host_octet(node: &str) -> u8 {
    match node {
        "v1" => 11,
        "v2" => 12,
        "v3" => 13,
        "m1" => 21,
        "m2" => 22,
        "m3" => 23,
        other => panic!("{other} has no fixed address"),
    }
}

impl Drop for Cluster {
    /// Removes every container and network of the run, whatever state the test left them in.
    fn drop(&mut self) {
        let filter = format!("label={}", self.label());
        let listing = run("docker", &["ps", "-aq", "--filter", &filter]);
        for id in text(&listing.stdout).split_whitespace() {
            let _ = run("docker", &["rm", "-f", "-v", id]);
        }
        let _ = run("docker", &["network", "rm", &self.edge_network()]);
        let _ = run("docker", &["network", "rm", &self.cluster_network()]);
    }
}
