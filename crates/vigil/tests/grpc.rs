//! The gRPC surface against clients and servers vigil did not write: Python's `grpcio` with
//! `grpcio-health-checking` calls vigil's `grpc.health.v1.Health` (Check and Watch), and
//! `vigil probe grpc://…` checks a Python health server, in plaintext and over TLS.
//!
//! Without python3 and those packages (or openssl, for TLS) the tests are skipped, saying so,
//! unless `VIGIL_REQUIRE_TOOLS` is set.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::certs::certificates;
use common::skip::skip;
use common::{free_port, http, lines_of, node_config, vigil, Agent, TOKEN};

const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python");

/// Whether python3 with grpcio and grpcio-health-checking is here; when not, the test is to be
/// skipped, or with `VIGIL_REQUIRE_TOOLS` set fails.
fn python_grpc() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import grpc, grpc_health.v1.health"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        skip("python3 with grpcio and grpcio-health-checking (pip install grpcio grpcio-health-checking)");
    }
    ok
}

/// A Python process whose standard output is read line by line.
struct Script {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Script {
    fn start(script: &str, args: &[&str]) -> Script {
        let mut child = Command::new("python3")
            .arg(format!("{SCRIPTS}/{script}"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = lines_of(child.stdout.take().unwrap());
        let stdin = child.stdin.take();
        Script {
            child,
            stdin,
            lines,
        }
    }

    /// The next line, waiting at most 20 s.
    fn line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(20))
            .expect("a line from the python script within 20 s")
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn check(grpc: &str, name: &str) -> String {
    Script::start("health_client.py", &["check", grpc, name]).line()
}

fn put(agent: &Agent, path: &str, body: &str) {
    let (code, answer) = http(agent.addr, "PUT", path, Some(TOKEN), body).unwrap();
    assert!((200..300).contains(&code), "PUT {path}: {code} {answer}");
}

#[test]
fn python_client_checks_and_watches_vigil() {
    if !python_grpc() {
        return;
    }
    let grpc_port = free_port();
    let agent = Agent::start(&node_config(
        "grpc-node",
        &format!(
            r#"token = "{TOKEN}"
[grpc]
bind = "127.0.0.1:{grpc_port}"
services = {{ "app.Api" = ["job"] }}
[[checks]]
name = "job"
probe = "ttl"
ttl = "1h"
critical = true
"#
        ),
    ));
    let grpc = format!("127.0.0.1:{grpc_port}");

    // No result yet: the node is starting and the check has no verdict.
    assert_eq!(check(&grpc, ""), "NOT_SERVING");
    assert_eq!(check(&grpc, "job"), "NOT_SERVING");
    assert_eq!(check(&grpc, "app.Api"), "NOT_SERVING");
    assert_eq!(check(&grpc, "no-such-check"), "NOT_FOUND");

    let node = Script::start("health_client.py", &["watch", &grpc, ""]);
    let job = Script::start("health_client.py", &["watch", &grpc, "job"]);
    let later = Script::start("health_client.py", &["watch", &grpc, "later"]);
    assert_eq!(node.line(), "NOT_SERVING");
    assert_eq!(job.line(), "NOT_SERVING");
    assert_eq!(
        later.line(),
        "SERVICE_UNKNOWN",
        "an unknown name is not an error"
    );

    put(&agent, "/v1/checks/job/pass", "working");
    assert_eq!(job.line(), "SERVING");
    assert_eq!(node.line(), "SERVING");
    assert_eq!(check(&grpc, ""), "SERVING");
    assert_eq!(check(&grpc, "job"), "SERVING");
    assert_eq!(check(&grpc, "app.Api"), "SERVING");

    put(&agent, "/v1/checks/job/fail", "broken");
    assert_eq!(job.line(), "NOT_SERVING");
    assert_eq!(node.line(), "NOT_SERVING");
    assert_eq!(check(&grpc, "app.Api"), "NOT_SERVING");

    // The stream of an unknown name stayed open: registering the check shows on it.
    put(
        &agent,
        "/v1/checks/later",
        r#"{"probe": "ttl", "ttl": "1h"}"#,
    );
    assert_eq!(later.line(), "NOT_SERVING");
    put(&agent, "/v1/checks/later/pass", "");
    assert_eq!(later.line(), "SERVING");

    // Shutting down: every watcher hears NOT_SERVING, then its stream ends.
    put(&agent, "/v1/checks/job/pass", "working again");
    assert_eq!(job.line(), "SERVING");
    assert_eq!(node.line(), "SERVING");
    agent.signal("-TERM");
    assert_eq!(later.line(), "NOT_SERVING");
    assert_eq!(later.line(), "END");
    assert_eq!(job.line(), "NOT_SERVING");
    assert_eq!(node.line(), "NOT_SERVING");
}

/// `vigil probe grpc://…` → (exit code, first line of output).
fn probe(args: &[&str]) -> (i32, String) {
    let output = vigil(&[&["probe"], args].concat());
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn vigil_probe_exits_like_grpc_health_probe_against_python() {
    if !python_grpc() {
        return;
    }
    let server = Script::start("health_server.py", &[]);
    let port = server.line();
    let target = |name: &str| format!("grpc://127.0.0.1:{port}{name}");

    let (code, out) = probe(&[&target("")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("SERVING"), "{out}");
    assert_eq!(probe(&[&target("/up")]).0, 0);
    let (code, out) = probe(&[&target("/down")]);
    assert_eq!(code, 4, "not serving: {out}");
    assert!(out.contains("NOT_SERVING"), "{out}");
    let (code, out) = probe(&[&target("/unknown")]);
    assert_eq!(code, 3, "an RPC failure (NOT_FOUND): {out}");
    assert!(out.contains("NotFound"), "{out}");
    let (code, out) = probe(&["grpc://127.0.0.1"]);
    assert_eq!(code, 1, "bad arguments: {out}");

    drop(server);
    let closed = free_port();
    let (code, out) = probe(&[&format!("grpc://127.0.0.1:{closed}")]);
    assert_eq!(code, 2, "connection failure: {out}");
}

#[test]
fn vigil_probe_speaks_tls_to_python() {
    if !python_grpc() {
        return;
    }
    let Some(certs) = certificates("grpc", "DNS:localhost") else {
        return;
    };
    let ca = certs.ca.as_str();
    let server = Script::start("health_server.py", &[&certs.server, &certs.server_key]);
    let port = server.line();
    let target = format!("grpc://127.0.0.1:{port}");

    let (code, out) = probe(&[
        &target,
        "--tls-ca-cert",
        ca,
        "--tls-server-name",
        "localhost",
    ]);
    assert_eq!(code, 0, "trusted CA and name: {out}");
    let (code, out) = probe(&[
        &target,
        "--tls-ca-cert",
        ca,
        "--tls-server-name",
        "elsewhere",
    ]);
    assert_eq!(code, 2, "a name the certificate does not carry: {out}");
    let (code, out) = probe(&[&target, "--tls-ca-cert", ca]);
    assert_eq!(code, 2, "127.0.0.1 is not in the certificate: {out}");
    let (code, out) = probe(&[&target, "--tls", "--tls-no-verify"]);
    assert_eq!(code, 0, "no verification: {out}");
    let (code, out) = probe(&[&target, "--tls"]);
    assert_eq!(
        code, 2,
        "an untrusted certificate is a connection failure: {out}"
    );
    let (code, out) = probe(&[&target]);
    assert_ne!(code, 0, "plaintext to a TLS port fails: {out}");
    let (code, out) = probe(&[&target, "--tls-ca-cert", "/nonexistent.pem"]);
    assert_eq!(code, 1, "an unreadable CA file is a bad argument: {out}");
    drop(server);

    // Mutual TLS: the server asks for a client certificate signed by the CA.
    let server = Script::start("health_server.py", &[&certs.server, &certs.server_key, ca]);
    let target = format!("grpc://localhost:{}", server.line());
    let (code, out) = probe(&[&target, "--tls-ca-cert", ca]);
    assert!(
        code == 2 || code == 3,
        "without a client certificate: {out}"
    );
    let (code, out) = probe(&[
        &target,
        "--tls-ca-cert",
        ca,
        "--tls-client-cert",
        &certs.client,
        "--tls-client-key",
        &certs.client_key,
    ]);
    assert_eq!(code, 0, "with the client certificate: {out}");
    let (code, out) = probe(&[
        &target,
        "--tls-ca-cert",
        ca,
        "--tls-client-cert",
        &certs.client,
    ]);
    assert_eq!(
        code, 1,
        "a certificate without its key is a bad argument: {out}"
    );
}

/// The names of a server certificate for an agent on 127.0.0.1.
const BOTH: &str = "DNS:localhost,IP:127.0.0.1";

#[test]
fn python_client_checks_vigil_over_tls() {
    if !python_grpc() {
        return;
    }
    let Some(certs) = certificates("grpc-server", BOTH) else {
        return;
    };
    let grpc = format!("127.0.0.1:{}", free_port());
    let probes = format!("127.0.0.1:{}", free_port());
    let agent = Agent::start_waiting_on(
        &node_config(
            "grpc-tls",
            &format!(
                "tls_cert = \"{}\"\ntls_key = \"{}\"\nprobe_bind = \"{probes}\"\n\
                 [grpc]\nbind = \"{grpc}\"\n\
                 [[checks]]\nname = \"job\"\nprobe = \"ttl\"\nttl = \"1h\"\n",
                certs.server, certs.server_key
            ),
        ),
        probes.parse().unwrap(),
    );
    let status = |ca: &str| Script::start("health_client.py", &["check", &grpc, "", ca]).line();
    assert_eq!(
        status(&certs.ca),
        "NOT_SERVING",
        "the TTL check has not passed yet"
    );
    let other = certificates("grpc-other", BOTH).unwrap();
    assert_eq!(
        status(&other.ca),
        "UNAVAILABLE",
        "a server of another CA is refused"
    );
    drop(agent);
}
