//! `vigil agent` under systemd's `Type=notify`, as systemd sees it: the test binds the datagram
//! socket that `NOTIFY_SOCKET` names and reads what the real agent binary sends — READY=1 once
//! its API answers, watchdog pings, RELOADING=1 then READY=1 around a SIGHUP, STOPPING=1 on
//! SIGTERM.

#![cfg(target_os = "linux")] // abstract sockets, as systemd may name, are Linux's
#![allow(clippy::unwrap_used)] // a test that cannot bind its socket or start the agent should stop at once

mod common;

use std::ffi::OsString;
use std::net::{SocketAddr as IpAddress, TcpStream};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, http, node_config, send_signal, temp_file, wait_for, VIGIL};

/// How long the agent may take to start, or to answer a signal.
const BOUND: Duration = Duration::from_secs(20);

/// The service manager's side: the socket, what `NOTIFY_SOCKET` says to reach it, and every
/// notification received, in order.
struct Manager {
    socket: UnixDatagram,
    address: OsString,
    /// The socket's file, for one bound in the file system.
    path: Option<PathBuf>,
    seen: Vec<Vec<String>>,
}

impl Manager {
    /// A socket in the file system.
    fn bind(name: &str) -> Manager {
        let path = std::env::temp_dir().join(format!("vigil-notify-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let socket = UnixDatagram::bind(&path).unwrap();
        Manager {
            socket,
            address: path.clone().into_os_string(),
            path: Some(path),
            seen: Vec::new(),
        }
    }

    /// A socket in the abstract namespace, which `NOTIFY_SOCKET` writes with a leading `@`.
    fn bind_abstract(name: &str) -> Manager {
        let name = format!("vigil-notify-{}-{name}", std::process::id());
        let address = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = UnixDatagram::bind_addr(&address).unwrap();
        Manager {
            socket,
            address: format!("@{name}").into(),
            path: None,
            seen: Vec::new(),
        }
    }

    /// The next notification (its `KEY=value` lines); fails the test after `BOUND`.
    fn next(&mut self, waiting_for: &str) -> Vec<String> {
        self.socket.set_read_timeout(Some(BOUND)).unwrap();
        let mut buf = vec![0; 4096];
        let n = self
            .socket
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("{waiting_for} within {BOUND:?}: {e}; got {:?}", self.seen));
        let lines: Vec<String> = String::from_utf8_lossy(&buf[..n])
            .lines()
            .map(str::to_owned)
            .collect();
        self.seen.push(lines.clone());
        lines
    }

    /// Skips notifications until one with line `wanted`, which it returns.
    fn until(&mut self, wanted: &str) -> Vec<String> {
        let deadline = Instant::now() + BOUND;
        loop {
            assert!(Instant::now() < deadline, "{wanted} within {BOUND:?}");
            let lines = self.next(wanted);
            if lines.iter().any(|l| l == wanted) {
                return lines;
            }
        }
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A running agent, killed if the test fails before it stops.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the agent with a config of one check, `NOTIFY_SOCKET` at `manager` and `env` besides.
fn start(manager: &Manager, env: &[(&str, String)]) -> (Running, IpAddress) {
    let port = free_port();
    let config = node_config(
        "notified",
        "[shutdown]\ndrain = \"0s\"\ntimeout = \"2s\"\n[[checks]]\nname = \"api\"\nprobe = \"tcp://127.0.0.1:{port}\"\ninterval = \"1s\"\n",
    )
    .replace("{port}", &port.to_string());
    let path = temp_file(&format!("notify-{port}.toml"), &config);
    let child = Command::new(VIGIL)
        .args(["agent", "-c"])
        .arg(&path)
        .env("NOTIFY_SOCKET", &manager.address)
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (Running(child), format!("127.0.0.1:{port}").parse().unwrap())
}

fn has(lines: &[String], prefix: &str) -> bool {
    lines.iter().any(|l| l.starts_with(prefix))
}

#[test]
fn the_agent_tells_systemd_it_is_ready_alive_reloading_and_stopping() {
    let mut manager = Manager::bind("watchdog");
    // A 400 ms watchdog: the agent pings every 200 ms.
    let (agent, api) = start(&manager, &[("WATCHDOG_USEC", "400000".to_owned())]);
    let pid = agent.0.id();

    let ready = manager.until("READY=1");
    // Checked the moment READY=1 arrives: the API accepts connections and answers readiness.
    assert!(
        TcpStream::connect(api).is_ok(),
        "the API accepts a connection when READY=1 arrives"
    );
    let (code, _) = http(api, "GET", "/health/ready", None, "").expect("/health/ready answers");
    assert!(
        code == 200 || code == 503,
        "/health/ready answers 200 or 503, not {code}"
    );
    assert!(
        ready.contains(&format!("MAINPID={pid}")),
        "READY=1 names the agent's pid {pid}: {ready:?}"
    );
    assert!(
        has(&ready, "STATUS="),
        "READY=1 comes with a STATUS=: {ready:?}"
    );

    for _ in 0..3 {
        manager.until("WATCHDOG=1");
    }

    send_signal(pid, "-HUP");
    let reloading = manager.until("RELOADING=1");
    assert!(
        has(&reloading, "MONOTONIC_USEC="),
        "RELOADING=1 comes with MONOTONIC_USEC=: {reloading:?}"
    );
    let reloaded = manager.until("READY=1");
    assert!(
        reloaded
            .iter()
            .any(|l| l.starts_with("STATUS=") && l.ends_with("config reloaded")),
        "READY=1 after the reload says it was applied: {reloaded:?}"
    );
    manager.until("WATCHDOG=1");

    send_signal(pid, "-TERM");
    manager.until("STOPPING=1");
    let mut agent = agent;
    let exited = wait_for(BOUND, || agent.0.try_wait().unwrap());
    assert!(
        exited.is_some_and(|status| status.success()),
        "the agent exits cleanly within {BOUND:?} of SIGTERM: {exited:?}"
    );
}

#[test]
fn a_watchdog_meant_for_another_process_is_not_pinged() {
    // The socket is abstract this time, as systemd's own can be.
    let mut manager = Manager::bind_abstract("other-pid");
    // Pings would come every 10 ms if the watchdog were the agent's.
    let (agent, _) = start(
        &manager,
        &[
            ("WATCHDOG_USEC", "20000".to_owned()),
            ("WATCHDOG_PID", "1".to_owned()),
        ],
    );
    let pid = agent.0.id();
    manager.until("READY=1");
    send_signal(pid, "-HUP");
    manager.until("RELOADING=1");
    manager.until("READY=1");
    send_signal(pid, "-TERM");
    manager.until("STOPPING=1");
    assert!(
        !manager.seen.iter().flatten().any(|l| l == "WATCHDOG=1"),
        "no WATCHDOG=1 for a watchdog of pid 1: {:?}",
        manager.seen
    );
}
