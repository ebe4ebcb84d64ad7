//! Clusters of voters running Raft for the registry tests: one [`Node`] per `vigil agent`
//! process with its own config, store and log under a scratch directory, and a wait for the
//! voters to agree on a leader.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use serde_json::Value;

use super::cluster::{instance_ids, FAST_GOSSIP};
use super::{free_port, get_json, http, send_signal, spawn_agent, wait_for, TOKEN};

/// Patience for anything Raft or gossip has to settle.
pub const SETTLE: Duration = Duration::from_secs(20);

/// One agent of a test cluster: its config, its store, and its process while it runs.
pub struct Node {
    pub id: String,
    pub config: PathBuf,
    pub log: PathBuf,
    pub child: Option<Child>,
    pub api: SocketAddr,
}

impl Node {
    /// Writes the config of `id` (its API on a fresh port) and starts it.
    pub fn start(
        id: &str,
        dir: &Path,
        gossip: u16,
        seeds: &[u16],
        voter: bool,
        voters: &[&str],
    ) -> Node {
        Node::start_with(id, dir, gossip, seeds, voter, voters, "")
    }

    /// [`Node::start`] with `extra` (more sections, e.g. `[dns]`) at the end of its config.
    pub fn start_with(
        id: &str,
        dir: &Path,
        gossip: u16,
        seeds: &[u16],
        voter: bool,
        voters: &[&str],
        extra: &str,
    ) -> Node {
        let home = dir.join(id);
        std::fs::create_dir_all(&home).unwrap();
        let api_port = free_port();
        let seeds: Vec<String> = seeds.iter().map(|p| format!("\"127.0.0.1:{p}\"")).collect();
        let voters: Vec<String> = voters.iter().map(|v| format!("\"{v}\"")).collect();
        let role = if voter { "voter" } else { "member" };
        let config = format!(
            r#"[node]
id = "{id}"
[api]
bind = "127.0.0.1:{api_port}"
token = "{TOKEN}"
[[checks]]
name = "heart"
probe = "ttl"
ttl = "1h"
critical = true
[cluster]
bind = "127.0.0.1:{gossip}"
seeds = [{seeds}]
role = "{role}"
voters = [{voters}]
data_dir = "{data}"
election_timeout = "500ms"
{FAST_GOSSIP}
{extra}"#,
            seeds = seeds.join(", "),
            voters = voters.join(", "),
            data = home.join("raft").display(),
        );
        let path = home.join("vigil.toml");
        std::fs::write(&path, config).unwrap();
        let mut node = Node {
            id: id.to_owned(),
            config: path,
            log: home.join("agent.log"),
            child: None,
            api: format!("127.0.0.1:{api_port}").parse().unwrap(),
        };
        node.spawn();
        node
    }

    /// Starts the agent on its config and store, its log appended to the node's, and waits
    /// until it answers.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let home = self.config.parent().unwrap();
        self.child = Some(spawn_agent(&self.config, home, log.into(), self.api));
        // The TTL check starts unknown; pass it so the node is healthy.
        self.put_check("pass");
    }

    pub fn put_check(&self, verdict: &str) {
        let (code, body) = http(
            self.api,
            "PUT",
            &format!("/v1/checks/heart/{verdict}"),
            Some(TOKEN),
            "test",
        )
        .unwrap();
        assert_eq!(code, 200, "{body}");
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            send_signal(child.id(), signal);
        }
    }

    pub fn get(&self, path: &str) -> Option<(u16, Value)> {
        get_json(self.api, path)
    }

    pub fn leader(&self) -> Option<Value> {
        self.get("/v1/leader").map(|(_, v)| v)
    }

    /// Registers an instance: the status and JSON body, or status 0 when no answer came in
    /// time (under faults a write may wait out the client: it is then not acknowledged).
    pub fn register(&self, name: &str, id: &str, extra: &str) -> (u16, Value) {
        let body = format!(
            r#"{{"name": "{name}", "id": "{id}", "address": "10.0.0.1", "port": 8080{extra}}}"#
        );
        match http(self.api, "POST", "/v1/services", Some(TOKEN), &body) {
            Ok((code, body)) => (code, serde_json::from_str(&body).unwrap_or(Value::Null)),
            Err(_) => (0, Value::Null),
        }
    }

    pub fn instances(&self, name: &str, consistent: bool) -> Option<Vec<String>> {
        let query = if consistent { "?consistent" } else { "" };
        let (code, body) = self.get(&format!("/v1/services/{name}{query}"))?;
        instance_ids(code, &body)
    }
}

impl Drop for Node {
    /// Stops the agent; removes its files unless the test failed (they hold its log).
    fn drop(&mut self) {
        self.kill();
        if !std::thread::panicking() {
            if let Some(home) = self.config.parent() {
                let _ = std::fs::remove_dir_all(home);
                if let Some(scratch) = home.parent() {
                    let _ = std::fs::remove_dir(scratch);
                }
            }
        }
    }
}

pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vigil-leadership-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub const VOTERS: [&str; 3] = ["v1", "v2", "v3"];

/// Three voters seeded through one another.
pub fn three_voters(name: &str) -> (Vec<Node>, Vec<u16>, PathBuf) {
    three_voters_with(name, |_| String::new())
}

/// [`three_voters`], the config of voter `i` ending with `extra(i)`.
pub fn three_voters_with(
    name: &str,
    extra: impl Fn(usize) -> String,
) -> (Vec<Node>, Vec<u16>, PathBuf) {
    let dir = scratch(name);
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let nodes = VOTERS
        .iter()
        .enumerate()
        .map(|(i, id)| Node::start_with(id, &dir, ports[i], &ports, true, &VOTERS, &extra(i)))
        .collect();
    (nodes, ports, dir)
}

/// Waits until every running node among `nodes` names the same leader, and exactly one of
/// them says it leads; returns the leader's index.
pub fn agreed_leader(nodes: &[Node]) -> usize {
    wait_for(SETTLE, || {
        let running: Vec<(usize, Value)> = nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.child.is_some())
            .map(|(i, n)| n.leader().map(|l| (i, l)))
            .collect::<Option<_>>()?;
        let first = running.first()?.1["leader_id"].as_str()?.to_owned();
        let agreed = running
            .iter()
            .all(|(_, l)| l["leader_id"] == first.as_str() && l["term"] == running[0].1["term"]);
        let leading: Vec<usize> = running
            .iter()
            .filter(|(_, l)| l["is_leader"] == true)
            .map(|(i, _)| *i)
            .collect();
        (agreed
            && leading.len() == 1
            && nodes[leading[0]].id == first
            && running.iter().all(|(_, l)| l["has_quorum"] == true))
        .then(|| leading[0])
    })
    .unwrap_or_else(|| {
        let views: Vec<Option<Value>> = nodes.iter().map(Node::leader).collect();
        panic!("the running voters agree on one leader: {views:?}")
    })
}
