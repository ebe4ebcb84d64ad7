//! `vigil up` registering its services with a running agent: a one-voter `vigil agent`, a
//! stack of `vigil fake-service` processes with `register` tables, and the agent's discovery
//! answers as the services start, die and are stopped by `vigil down`.

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::raft::{agreed_leader, scratch, Node, SETTLE};
use common::{free_port, lines_of, send_signal, wait_for, TOKEN, VIGIL};
use serde_json::Value;

/// The ids of the instances of `service` that `node` lists for `query` (`""` or `"?healthy"`);
/// none once the service is unknown.
fn ids(node: &Node, service: &str, query: &str) -> Option<Vec<String>> {
    let (code, body) = node.get(&format!("/v1/services/{service}{query}"))?;
    match code {
        200 => Some(
            body["instances"]
                .as_array()?
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_owned))
                .collect(),
        ),
        404 => Some(Vec::new()),
        _ => None,
    }
}

/// Waits until `node` lists exactly `want` for `service` and `query`.
fn lists(node: &Node, service: &str, query: &str, want: &[&str], what: &str) {
    wait_for(SETTLE, || {
        (ids(node, service, query)? == want).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "{what}: /v1/services/{service}{query} lists {:?}, not {want:?}",
            ids(node, service, query)
        )
    });
}

/// The PID `vigil up`'s state file in `dir` gives service `name`.
fn pid_of(dir: &Path, name: &str) -> u32 {
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(".vigil/stack.toml/state.json")).unwrap(),
    )
    .unwrap();
    let pid = state["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .and_then(|s| s["process"]["pid"].as_u64())
        .unwrap_or_else(|| panic!("no pid of {name} in {state}"));
    u32::try_from(pid).unwrap()
}

/// A stack file in a directory of its own: `api`, restarted only after half an hour or more
/// once it dies, with an HTTP check, and `once`, never restarted, with the default TCP check
/// and the default id. Returns the directory and the id `once` gets.
fn stack(test: &str) -> (PathBuf, String) {
    let dir = scratch(test);
    let (api, once) = (free_port(), free_port());
    let stack = format!(
        r#"[services.api]
command = ["vigil", "fake-service", "--port", "{api}"]
backoff = "1h"
backoff_max = "1h"
health = {{ probe = "http://127.0.0.1:{api}/health", start_interval = "50ms" }}
[services.api.register]
id = "api-1"
address = "127.0.0.1"
port = {api}
tags = ["v2"]
[[services.api.register.checks]]
probe = "http://127.0.0.1:{api}/health"
interval = "200ms"

[services.once]
command = ["vigil", "fake-service", "--port", "{once}"]
restart = "no"
register = {{ address = "127.0.0.1", port = {once} }}
"#
    );
    std::fs::write(dir.join("stack.toml"), stack).unwrap();
    (dir, format!("once-127.0.0.1:{once}"))
}

/// `vigil up` attached, with its output read line by line.
struct Up {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Up {
    fn start(dir: &Path, agent: &str) -> Up {
        let mut child = Command::new(VIGIL)
            .args(["up", "-f", "stack.toml", "--addr", agent, "--token", TOKEN])
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = lines_of(child.stdout.take().unwrap());
        Up {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (at most [`SETTLE`]) for a line containing `needle`.
    fn wait_for(&mut self, needle: &str) {
        let deadline = Instant::now() + SETTLE;
        while !self.seen.iter().any(|l| l.contains(needle)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("no line with {needle:?} in:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Waits (at most [`SETTLE`]) for `vigil up` to exit; its exit code.
    fn exit_code(&mut self) -> Option<i32> {
        let status =
            wait_for(SETTLE, || self.child.try_wait().unwrap()).expect("vigil up did not exit");
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(1)) {
            self.seen.push(line);
        }
        status.code()
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn vigil_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(VIGIL)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_stack_registers_its_services_while_they_run_and_deregisters_them_at_vigil_down() {
    let home = scratch("up-register-agent");
    let gossip = free_port();
    let agent = Node::start("v1", &home, gossip, &[gossip], true, &["v1"]);
    agreed_leader(std::slice::from_ref(&agent));
    let (dir, once_id) = stack("up-register");

    let mut up = Up::start(&dir, &format!("http://{}", agent.api));
    up.wait_for("stack is up; supervising it");
    up.wait_for("api: registered as service api instance api-1");
    lists(&agent, "api", "?healthy", &["api-1"], "api is up");
    let (_, body) = agent.get("/v1/services/api").unwrap();
    let instance = &body["instances"][0];
    assert_eq!(instance["tags"], serde_json::json!(["v2"]), "{instance}");
    assert_eq!(instance["node"], "v1", "on the agent's node: {instance}");
    up.wait_for(&format!(
        "once: registered as service once instance {once_id}"
    ));
    lists(&agent, "once", "?healthy", &[&once_id], "once is up");

    // A dead process fails the agent's check: the instance leaves the healthy answers but
    // stays registered, as vigil up will start it again.
    send_signal(pid_of(&dir, "api"), "-KILL");
    lists(&agent, "api", "?healthy", &[], "api's process is dead");
    lists(&agent, "api", "", &["api-1"], "api is still registered");

    // A service that will not run again is deregistered.
    send_signal(pid_of(&dir, "once"), "-KILL");
    up.wait_for("once: deregistered service once instance");
    lists(&agent, "once", "", &[], "once stopped for good");

    let down = vigil_in(&dir, &["down", "-f", "stack.toml"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert_eq!(up.exit_code(), Some(0), "{}", up.seen.join("\n"));
    let deregistered = up
        .seen
        .iter()
        .position(|l| l == "api: deregistered service api instance api-1");
    let stopped = up.seen.iter().position(|l| l == "api: stopped");
    assert!(
        deregistered.is_some() && deregistered < stopped,
        "deregistered, then stopped:\n{}",
        up.seen.join("\n")
    );
    lists(&agent, "api", "", &[], "vigil down deregistered api");

    // Detached, the state file keeps what is registered, and `vigil down` deregisters it.
    let addr = format!("http://{}", agent.api);
    let agent_flags = ["--addr", addr.as_str(), "--token", TOKEN];
    let up = vigil_in(
        &dir,
        &[&["up", "-d", "-f", "stack.toml"], &agent_flags[..]].concat(),
    );
    assert!(up.status.success(), "{}", text(&up.stderr));
    lists(&agent, "api", "?healthy", &["api-1"], "api is up again");
    let down = vigil_in(
        &dir,
        &[&["down", "-f", "stack.toml"], &agent_flags[..]].concat(),
    );
    assert!(down.status.success(), "{}", text(&down.stderr));
    let said = text(&down.stdout);
    assert!(
        said.lines().any(
            |l| l.starts_with("api ") && l.ends_with("deregistered service api instance api-1")
        ),
        "{said}"
    );
    lists(
        &agent,
        "api",
        "",
        &[],
        "vigil down deregistered the detached api",
    );
    lists(&agent, "once", "", &[], "and once");
}

#[test]
fn without_an_agent_each_service_says_so_and_the_stack_still_starts() {
    let (dir, _) = stack("up-register-no-agent");
    let nobody = format!("http://127.0.0.1:{}", free_port());
    let up = vigil_in(&dir, &["up", "-d", "-f", "stack.toml", "--addr", &nobody]);
    let stdout = text(&up.stdout);
    assert!(up.status.success(), "{stdout}{}", text(&up.stderr));
    for service in ["api", "once"] {
        let said = format!("{service}: not registered as service {service} instance ");
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&said))
            .unwrap_or_else(|| panic!("no line {said:?} in:\n{stdout}"));
        assert!(
            line.contains(&format!("cannot reach the agent at {nobody}")),
            "{line}"
        );
    }
    let down = vigil_in(&dir, &["down", "-f", "stack.toml", "--addr", &nobody]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert_eq!(text(&down.stdout).matches("stopped").count(), 2);
}
