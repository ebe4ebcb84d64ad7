//! Webhooks as a receiver sees them: a real agent posts its check events to a local HTTP
//! receiver, signed (the signature checked with `openssl`, an HMAC nobody here wrote), filtered
//! by category and severity, retried while the receiver fails; and a webhook whose receiver is
//! down only retries, drops what its queue cannot hold and counts it, while the agent keeps
//! answering.

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::skip::skip;
use common::{free_port, http, node_config, wait_for, Agent, TOKEN};
use serde_json::Value;

const SECRET: &str = "webhook-test-secret-0123456789";
const BOUND: Duration = Duration::from_secs(20);

/// One request as the receiver read it: its headers (lowercased names) and body.
struct Delivery {
    headers: Vec<(String, String)>,
    body: String,
}

impl Delivery {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A receiver on a fresh port that answers 500 to the first `failures` requests and 200 to the
/// rest, passing each request it read on.
fn receiver(failures: usize) -> (u16, mpsc::Receiver<Delivery>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (send, received) = mpsc::channel();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(BOUND));
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = Vec::new();
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.trim_end().split_once(':') {
                    headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
                }
            }
            let length: usize = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let status = if n < failures {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let body = String::from_utf8_lossy(&body).into_owned();
            if send.send(Delivery { headers, body }).is_err() {
                break;
            }
        }
    });
    (port, received, seen)
}

/// The HMAC-SHA256 of `message` under `key`, in hex, as `openssl dgst` computes it.
fn openssl_hmac(key: &str, message: &str) -> Option<String> {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", key])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(message.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.rsplit(' ').next().map(|hex| hex.trim().to_owned())
}

fn metric(agent: &Agent, url: &str, outcome: &str) -> u64 {
    let (_, text) = http(agent.addr, "GET", "/metrics", None, "").unwrap();
    let series = format!("vigil_webhook_deliveries_total{{url=\"{url}\",outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn verdict(agent: &Agent, verdict: &str) {
    let (code, body) = http(
        agent.addr,
        "PUT",
        &format!("/v1/checks/job/{verdict}"),
        Some(TOKEN),
        "",
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
}

/// An agent `id` with a TTL check `job` and one webhook, whose keys are `webhook`.
fn hooked_agent(id: &str, webhook: &str) -> Agent {
    Agent::start(&node_config(
        id,
        &format!(
            "token = \"{TOKEN}\"\n[[checks]]\nname = \"job\"\nprobe = \"ttl\"\nttl = \"1h\"\n[[webhooks]]\n{webhook}\n"
        ),
    ))
}

#[test]
fn check_events_reach_a_receiver_signed_filtered_and_retried() {
    let (port, deliveries, _) = receiver(2);
    let url = format!("http://127.0.0.1:{port}/hook");
    let agent = hooked_agent(
        "hooked",
        &format!(
            r#"url = "{url}"
events = ["check"]
min_severity = "warning"
secret = "{SECRET}"
timeout = "2s"
retries = 5"#
        ),
    );
    // Passing is info: below the webhook's minimum, so not sent.
    verdict(&agent, "pass");
    verdict(&agent, "fail");
    // Two answers of 500 first: the event arrives with the third attempt.
    let mut got = Vec::new();
    while got.len() < 3 {
        let delivery = deliveries
            .recv_timeout(BOUND)
            .expect("the receiver gets the event, retried after its failures");
        got.push(delivery);
    }
    let delivery = &got[2];
    assert_eq!(delivery.body, got[0].body, "a retry sends the same event");
    let body: Value = serde_json::from_str(&delivery.body).unwrap();
    assert_eq!(body["type"], "check_changed", "{body}");
    assert_eq!(body["node"], "hooked");
    assert!(
        matches!(body["severity"].as_str(), Some("warning" | "critical")),
        "{body}"
    );
    let text = body["text"].as_str().unwrap();
    assert!(text.starts_with("[hooked] check job: passing → "), "{text}");
    assert_eq!(body["event"]["check"], "job");

    let timestamp = delivery.header("x-vigil-timestamp").unwrap();
    let signature = delivery.header("x-vigil-signature").unwrap();
    match openssl_hmac(SECRET, &format!("{timestamp}.{}", delivery.body)) {
        Some(hex) => assert_eq!(signature, format!("sha256={hex}")),
        None => skip("openssl to check the HMAC-SHA256 signature"),
    }

    let counted = wait_for(BOUND, || {
        (metric(&agent, &url, "delivered") == 1).then_some(())
    });
    assert!(counted.is_some(), "one delivery counted");
    assert_eq!(metric(&agent, &url, "retried"), 2);
    assert_eq!(metric(&agent, &url, "failed"), 0);
    // The status change the failure caused is not a check event: never sent.
    assert!(deliveries.recv_timeout(Duration::from_millis(300)).is_err());
}

#[test]
fn a_receiver_that_is_down_costs_retries_and_drops_not_the_agent() {
    // Nothing listens on this port: every attempt is refused.
    let url = format!("http://127.0.0.1:{}/hook", free_port());
    let agent = hooked_agent(
        "unheard",
        &format!("url = \"{url}\"\nevents = [\"check\", \"status\"]\nretries = 1\nqueue = 2"),
    );
    for _ in 0..10 {
        verdict(&agent, "pass");
        verdict(&agent, "fail");
        let (code, _) = http(agent.addr, "GET", "/health/live", None, "").unwrap();
        assert_eq!(code, 200, "the agent answers while its webhook fails");
    }
    let settled = wait_for(BOUND, || {
        let failed = metric(&agent, &url, "failed");
        let dropped = metric(&agent, &url, "dropped");
        (failed >= 1 && dropped >= 1).then_some((failed, dropped))
    });
    let (failed, dropped) = settled.expect("events given up and dropped are counted");
    assert!(
        metric(&agent, &url, "retried") >= failed,
        "each failure was retried once"
    );
    assert_eq!(metric(&agent, &url, "delivered"), 0);
    assert!(dropped + failed <= 60, "{dropped} dropped, {failed} failed");
}
