//! What the command's integration tests share: running `vigil` and `vigil agent` processes on
//! 127.0.0.1, a raw HTTP client for their API, bounded waits on what it answers, and signals.
//! [`cluster`] adds test clusters and readers of their membership and registry; [`tools`] the
//! external programs some tests check against, and [`skip`] what a test does without them.

#![allow(dead_code, clippy::unwrap_used)] // each test file uses its own subset

pub mod certs;
pub mod cluster;
pub mod raft;
pub mod skip;
pub mod tools;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `vigil` binary under test.
pub const VIGIL: &str = env!("CARGO_BIN_EXE_vigil");
/// The API token the tests' agents are given for writes.
pub const TOKEN: &str = "test-token-0123456789";

/// How long a freshly started agent may take before its API answers.
const STARTUP: Duration = Duration::from_secs(20);

/// Runs `vigil` with `args` to its end.
pub fn vigil(args: &[&str]) -> Output {
    Command::new(VIGIL).args(args).output().expect("vigil runs")
}

/// Writes `contents` to `name` in this test process's own temporary folder.
pub fn temp_file(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vigil-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// Where [`free_port`] picks from: below the kernel's ephemeral range (32768–60999 on Linux), so
/// no socket bound to port 0 and no outgoing connection of a running agent can take a port between
/// its pick and the agent binding it.
const PICKED_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A port free for TCP and UDP, never handed out before in this process.
pub fn free_port() -> u16 {
    static NEXT: Mutex<Option<u16>> = Mutex::new(None);
    let mut next = NEXT.lock().unwrap();
    // Test binaries run one after another, each from its own offset, so a port one binary's
    // agent still holds in TIME_WAIT is not the first the next binary tries.
    let span = PICKED_PORTS.end - PICKED_PORTS.start;
    let mut candidate = next.unwrap_or_else(|| {
        let offset = (std::process::id() as u64).wrapping_mul(7919) % u64::from(span);
        PICKED_PORTS.start + offset as u16
    });
    for _ in 0..span {
        let port = candidate;
        candidate = if candidate + 1 >= PICKED_PORTS.end {
            PICKED_PORTS.start
        } else {
            candidate + 1
        };
        let free = TcpListener::bind(("127.0.0.1", port)).is_ok()
            && std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok();
        if free {
            *next = Some(candidate);
            return port;
        }
    }
    panic!("no free port in {PICKED_PORTS:?}");
}

/// One HTTP/1.1 exchange: the status, the status line with the headers, and the body.
fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> std::io::Result<(u16, String, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    Ok((status, head.to_owned(), body.to_owned()))
}

/// A minimal HTTP/1.1 client: method, path, optional bearer token and body → (status, body).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> std::io::Result<(u16, String)> {
    exchange(addr, method, path, token, body).map(|(status, _, body)| (status, body))
}

/// The status, and the status line with the headers, of a GET.
pub fn http_head(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    exchange(addr, "GET", path, None, "").map(|(status, head, _)| (status, head))
}

/// A GET whose body is read as JSON (Null when it is not); None when nothing answers.
pub fn get_json(addr: SocketAddr, path: &str) -> Option<(u16, Value)> {
    let (code, body) = http(addr, "GET", path, None, "").ok()?;
    Some((code, serde_json::from_str(&body).unwrap_or(Value::Null)))
}

/// Polls `probe` until it returns Some, for at most `limit`.
pub fn wait_for<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(value) = probe() {
            return Some(value);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Sends `signal` (as `kill` spells it: `-TERM`, `-STOP`, …) to process `pid`.
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

/// Reads `stream` line by line on a thread of its own, so a test can wait for a line with a
/// time bound; the receiver disconnects when the stream ends.
pub fn lines_of(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// Starts `vigil agent -c config` in `workdir` (where a voter keeps its Raft store by default),
/// its log going to `stderr`, and waits until its API on `api` answers.
pub fn spawn_agent(config: &Path, workdir: &Path, stderr: Stdio, api: SocketAddr) -> Child {
    let mut child = Command::new(VIGIL)
        .args(["agent", "-c"])
        .arg(config)
        .current_dir(workdir)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("agent starts");
    let answered = wait_for(STARTUP, || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the agent for {api} exited before answering: {status}");
        }
        http(api, "GET", "/health/live", None, "").ok()
    });
    if answered.is_none() {
        let _ = child.kill();
        panic!("the agent on {api} answers within {STARTUP:?}");
    }
    child
}

/// The config of agent `id` with its API on `{port}` (see [`Agent::start`]), followed by `rest`:
/// keys at the top of `rest` still belong to `[api]`.
pub fn node_config(id: &str, rest: &str) -> String {
    format!("[node]\nid = \"{id}\"\n[api]\nbind = \"127.0.0.1:{{port}}\"\n{rest}")
}

/// A running `vigil agent`, killed when dropped; its log is kept on a pipe (`child.stderr`).
pub struct Agent {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Agent {
    /// Starts an agent on `config`, where `{port}` stands for a fresh port for its API, and
    /// waits until that API answers.
    pub fn start(config: &str) -> Agent {
        Agent::launch(config, None)
    }

    /// [`Agent::start`] for an agent whose API is not on plain HTTP: it is started once the
    /// plain listener at `plain` (its `probe_bind`) answers.
    pub fn start_waiting_on(config: &str, plain: SocketAddr) -> Agent {
        Agent::launch(config, Some(plain))
    }

    fn launch(config: &str, plain: Option<SocketAddr>) -> Agent {
        let port = free_port();
        let config = config.replace("{port}", &port.to_string());
        let path = temp_file(&format!("agent-{port}.toml"), &config);
        let workdir = path.with_extension("d");
        std::fs::create_dir_all(&workdir).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let child = spawn_agent(&path, &workdir, Stdio::piped(), plain.unwrap_or(addr));
        Agent { child, addr }
    }

    /// GET `path`: the status and the body as JSON (Null when it is not).
    pub fn get(&self, path: &str) -> (u16, Value) {
        get_json(self.addr, path).expect("agent reachable")
    }

    /// Polls GET `path` until `accept` takes the answer, for at most `limit`; returns that
    /// answer, or fails the test naming `what` and the last answer seen.
    pub fn wait_until(
        &self,
        path: &str,
        limit: Duration,
        what: &str,
        accept: impl Fn(u16, &Value) -> bool,
    ) -> (u16, Value) {
        let mut last = (0, Value::Null);
        let accepted = wait_for(limit, || {
            last = self.get(path);
            accept(last.0, &last.1).then(|| last.clone())
        });
        accepted.unwrap_or_else(|| {
            panic!(
                "{what}: not within {limit:?}; GET {path} last answered {} {}",
                last.0, last.1
            )
        })
    }

    /// Sends `signal` to the agent's process.
    pub fn signal(&self, signal: &str) {
        send_signal(self.child.id(), signal);
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `vigil fake-service` process on 127.0.0.1:`port`, standing in for a service instance: killed
/// by PID to make the instance die, started again on the same port to bring it back.
pub struct FakeService {
    /// Where it listens.
    pub port: u16,
    child: Option<Child>,
}

impl FakeService {
    /// Starts one on `port`.
    pub fn start(port: u16) -> FakeService {
        let mut service = FakeService { port, child: None };
        service.restart();
        service
    }

    /// Starts it again (after [`FakeService::kill`]).
    pub fn restart(&mut self) {
        let child = Command::new(VIGIL)
            .args(["fake-service", "--port", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// Kills it with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for FakeService {
    fn drop(&mut self) {
        self.kill();
    }
}
