//! `vigil demo` as a new user meets it: a real three-node cluster on 127.0.0.1, its banner, the
//! commands the banner prints run as printed, its log, its signals, and a port already taken.

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

mod common;

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::tools::feed;
use common::{free_port, get_json, http, lines_of, send_signal, wait_for, VIGIL};

/// Nodes of every demo started here.
const NODES: u16 = 3;

/// The first of `NODES` consecutive ports free for TCP and UDP on 127.0.0.1, and a second run
/// of them, a third and a fourth: the demo's API, gossip, gRPC and head server ports. No port is handed out twice in
/// this process, so demos started at once never share one.
fn port_runs() -> [u16; 4] {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let run = || loop {
        let first = free_port();
        let Some(ports) = (0..NODES)
            .map(|i| first.checked_add(i))
            .collect::<Option<Vec<u16>>>()
        else {
            continue;
        };
        let free = ports.iter().all(|&port| {
            TcpListener::bind(("127.0.0.1", port)).is_ok()
                && UdpSocket::bind(("127.0.0.1", port)).is_ok()
        });
        let mut given = GIVEN.lock().unwrap();
        if free && ports.iter().all(|port| !given.contains(port)) {
            given.extend(ports);
            return first;
        }
    };
    [run(), run(), run(), run()]
}

/// A running `vigil demo`, killed when dropped.
struct Demo {
    child: Child,
    api: u16,
    grpc: u16,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
}

impl Demo {
    /// Starts a demo on fresh ports; `log` is its `VIGIL_LOG`, unset when None.
    fn start(log: Option<&str>) -> Demo {
        let [api, gossip, grpc, heads] = port_runs();
        Demo::start_on([api, gossip, grpc, heads], log, &[])
    }

    fn start_on(ports: [u16; 4], log: Option<&str>, flags: &[&str]) -> Demo {
        let [api, gossip, grpc, heads] = ports;
        let mut command = Command::new(VIGIL);
        command
            .args(["demo", "--nodes", &NODES.to_string()])
            .args(["--head-port", &heads.to_string()])
            .args(flags)
            // Its own group, so that dropping it also kills the head servers it started.
            .process_group(0)
            .args(["--port", &api.to_string()])
            .args(["--gossip-port", &gossip.to_string()])
            .args(["--grpc-port", &grpc.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match log {
            Some(filter) => command.env("VIGIL_LOG", filter),
            None => command.env_remove("VIGIL_LOG"),
        };
        let mut child = command.spawn().expect("vigil demo starts");
        let stdout = lines_of(child.stdout.take().unwrap());
        let stderr = lines_of(child.stderr.take().unwrap());
        Demo {
            child,
            api,
            grpc,
            stdout,
            stderr,
        }
    }

    fn addr(&self, node: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.api + node))
    }

    /// The banner, once its last line is out, within `limit`.
    fn banner(&self, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        let mut lines = Vec::new();
        while Instant::now() < deadline {
            match self.stdout.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let last = line.starts_with("Press Ctrl-C");
                    lines.push(line);
                    if last {
                        return lines;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!("no whole banner within {limit:?}; got {lines:#?}");
    }

    /// Waits for the process to end, for at most `limit`.
    fn exit_code(&mut self, limit: Duration) -> Option<i32> {
        let status = wait_for(limit, || self.child.try_wait().unwrap());
        let status = status.unwrap_or_else(|| panic!("vigil demo still runs after {limit:?}"));
        status.code()
    }

    fn signal(&self, signal: &str) {
        send_signal(self.child.id(), signal);
    }

    /// Every line the demo logged so far.
    fn log(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_taken_port_stops_the_demo_at_once_with_the_reason() {
    let ports = port_runs();
    let taken = ports[0] + 1;
    let _squatter = TcpListener::bind(("127.0.0.1", taken)).unwrap();
    let started = Instant::now();
    let mut demo = Demo::start_on(ports, None, &[]);
    let code = demo.exit_code(Duration::from_secs(15));
    let stderr = demo.log().join("\n");
    assert_ne!(code, Some(0), "a demo that cannot start fails: {stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot listen on 127.0.0.1:{taken} (api.bind): Address already in use"
        )),
        "the reason is printed: {stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopped within seconds, not at Ctrl-C: {:?}",
        started.elapsed()
    );
    let banner: Vec<String> = demo.stdout.try_iter().collect();
    assert!(
        banner.is_empty(),
        "no banner for a demo that failed: {banner:?}"
    );
}

#[test]
fn sigterm_while_the_demo_starts_stops_it_cleanly() {
    // At info level the demo logs from its first milliseconds: the signal arrives while the
    // nodes are still starting.
    let mut demo = Demo::start(Some("info"));
    let first = demo.stderr.recv_timeout(Duration::from_secs(20));
    assert!(first.is_ok(), "the demo logs as it starts");
    demo.signal("-TERM");
    assert_eq!(
        demo.exit_code(Duration::from_secs(20)),
        Some(0),
        "a clean stop: {:?}",
        demo.log()
    );
}

#[test]
fn the_demo_starts_quiet_and_every_command_its_banner_prints_works() {
    let mut demo = Demo::start(None);
    let banner = demo.banner(Duration::from_secs(30));
    let first = demo.addr(0);
    wait_for(Duration::from_secs(20), || {
        let (code, leader) = get_json(first, "/v1/leader")?;
        let (ready, _) = get_json(first, "/health/ready")?;
        (code == 200 && leader["leader_id"].is_string() && ready == 200).then_some(())
    })
    .expect("a leader elected and the first node ready within 20 s");

    let vigil = std::fs::canonicalize(VIGIL).unwrap();
    let vigil = vigil.to_str().unwrap();
    let commands: Vec<Vec<String>> = banner
        .iter()
        .map(|line| line.trim())
        .filter(|line| line.starts_with(vigil))
        .map(|line| line.split_whitespace().map(str::to_owned).collect())
        .collect();
    let names: Vec<&str> = commands.iter().map(|c| c[1].as_str()).collect();
    for expected in [
        "members",
        "status",
        "checks",
        "leader",
        "neighbors",
        "watch",
        "probe",
        "console",
        "keyring",
    ] {
        assert!(
            names.contains(&expected),
            "the banner shows `vigil {expected}`: {banner:#?}"
        );
    }
    let home = std::env::temp_dir().join(format!("vigil-demo-home-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    for command in &commands {
        let mut run = Command::new(&command[0]);
        run.args(&command[1..])
            .env_remove("VIGIL_ADDR")
            .env_remove("VIGIL_TOKEN")
            .env("HOME", &home);
        if command[1] == "watch" {
            run.args(["--count", "1"]);
        }
        // The console as printed, fed the first thing a user tries.
        let out = feed(&mut run, "register web 127.0.0.1 8080\nmembers\nstatus\n");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{} works as printed:\n{stdout}{stderr}",
            command.join(" ")
        );
        match command[1].as_str() {
            "console" => {
                assert!(
                    stdout.contains("registered web instance 127.0.0.1:8080"),
                    "{stdout}{stderr}"
                );
                assert!(
                    stdout.lines().any(|l| l.contains("(leader)")),
                    "console members marks the leader: {stdout}"
                );
                assert!(
                    stdout.contains("node        demo-1") && stdout.contains("status "),
                    "console status: {stdout}"
                );
            }
            "keyring" => assert_eq!(
                stdout.lines().filter(|l| l.ends_with("yes")).count(),
                usize::from(NODES),
                "one primary key per node: {stdout}"
            ),
            _ => {}
        }
    }
    let _ = std::fs::remove_dir_all(&home);

    let log = demo.log();
    let loud: Vec<&String> = log
        .iter()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect();
    assert!(
        loud.is_empty(),
        "nothing to warn about while the demo starts: {loud:#?}"
    );

    for node in 0..NODES.min(3) {
        let (_, leader) = get_json(demo.addr(node), "/v1/leader").unwrap();
        let term = leader["term"].as_u64().unwrap();
        let (_, metrics) = http(demo.addr(node), "GET", "/metrics", None, "").unwrap();
        let changes: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix("vigil_leader_changes_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("vigil_leader_changes_total in {metrics}"));
        if term == 1 {
            assert_eq!(changes, 1, "one election, one change (node {node})");
        } else {
            assert!(
                (1..=term).contains(&changes),
                "{changes} changes over {term} terms (node {node})"
            );
        }
    }
    let out = Command::new(VIGIL)
        .args(["probe", &format!("grpc://127.0.0.1:{}", demo.grpc)])
        .output()
        .unwrap();
    assert!(out.status.success());

    demo.signal("-INT");
    assert_eq!(demo.exit_code(Duration::from_secs(20)), Some(0));
}

/// The PID of head server `id` in the line the demo prints once its head servers run.
fn head_pid(line: &str, id: &str) -> Option<u32> {
    let after = &line[line.find(&format!("{id} ("))?..];
    let pid = after.split("pid ").nth(1)?;
    pid.split(')').next()?.parse().ok()
}

#[test]
fn the_demo_head_servers_hand_over_and_take_back_with_preempt() {
    let ports = port_runs();
    let demo = Demo::start_on(ports, None, &["--preempt"]);
    demo.banner(Duration::from_secs(30));
    let line = wait_for(Duration::from_secs(30), || {
        demo.stdout.try_iter().find(|l| l.contains("head servers"))
    })
    .expect("the demo says where its head servers are");
    let pid = head_pid(&line, "head_server_1").unwrap_or_else(|| panic!("a PID in {line}"));
    let leader = |want: &str| {
        wait_for(Duration::from_secs(30), || {
            let (code, body) = get_json(demo.addr(2), "/v1/elections/head-servers")?;
            let leader = &body["leader"];
            (code == 200 && leader["id"] == want).then(|| leader["token"].as_u64())?
        })
        .unwrap_or_else(|| {
            panic!(
                "{want} leads: {:?}",
                get_json(demo.addr(2), "/v1/elections/head-servers")
            )
        })
    };
    let first = leader("head_server_1");
    send_signal(pid, "-KILL");
    let second = leader("head_server_2");
    assert!(second > first, "{first} then {second}");
    // Started again as the README shows: with preempt, it takes leadership back.
    let mut again = Command::new(VIGIL)
        .args(["fake-service", "--port", &ports[3].to_string()])
        .spawn()
        .unwrap();
    let third = leader("head_server_1");
    assert!(third > second, "{second} then {third}");
    let _ = again.kill();
    let _ = again.wait();
}
