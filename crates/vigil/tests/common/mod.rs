//! Helpers shared by the command's integration tests: running `vigil`, agents, raw HTTP.

#![allow(dead_code, clippy::unwrap_used)] // each test file uses its own subset

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const VIGIL: &str = env!("CARGO_BIN_EXE_vigil");
pub const TOKEN: &str = "test-token-0123456789";

pub fn vigil(args: &[&str]) -> Output {
    Command::new(VIGIL).args(args).output().expect("vigil runs")
}

pub fn temp_file(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vigil-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A minimal HTTP/1.1 client: method, path, optional bearer token and body → (status, body).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: test\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
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

pub struct Agent {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Agent {
    pub fn start(config: &str) -> Agent {
        let port = free_port();
        let config = config.replace("{port}", &port.to_string());
        let path = temp_file(&format!("agent-{port}.toml"), &config);
        // A working directory of its own: a voter keeps its Raft store there by default.
        let workdir = path.with_extension("d");
        std::fs::create_dir_all(&workdir).unwrap();
        let child = Command::new(VIGIL)
            .args(["agent", "-c"])
            .arg(&path)
            .current_dir(&workdir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("agent starts");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        wait_for(Duration::from_secs(20), || {
            http(addr, "GET", "/health/live", None, "").ok()
        })
        .expect("agent answers within 20 s");
        Agent { child, addr }
    }

    pub fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let (code, body) = http(self.addr, "GET", path, None, "").expect("agent reachable");
        (
            code,
            serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
        )
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
