//! `http://` probes against a tiny HTTP/1.1 server on 127.0.0.1 that writes canned responses and
//! hands every request it read back to the test.

mod common;

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use vigil_health::Verdict;
use vigil_probe::ProbeOptions;

/// A server answering every request with one canned response.
struct Server {
    address: SocketAddr,
    requests: mpsc::UnboundedReceiver<String>,
}

impl Server {
    async fn start(status: &str, body: &str) -> Server {
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("local address");
        let (sender, requests) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer(stream, response.clone(), sender.clone()));
            }
        });
        Server { address, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// The request the server received (head and body, as text).
    async fn request(&mut self) -> String {
        tokio::time::timeout(common::BOUND, self.requests.recv())
            .await
            .expect("a request within the bound")
            .expect("server runs")
    }
}

/// Reads one request (head, then `content-length` bytes of body), reports it and answers.
async fn answer(mut stream: TcpStream, response: String, requests: mpsc::UnboundedSender<String>) {
    let mut request = Vec::new();
    let mut buffer = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => request.extend_from_slice(&buffer[..read]),
        }
    };
    let head = String::from_utf8_lossy(&request[..head_end]).to_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while request.len() < head_end + length {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => request.extend_from_slice(&buffer[..read]),
        }
    }
    let _ = requests.send(String::from_utf8_lossy(&request).into_owned());
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[tokio::test]
async fn status_200_passes() {
    let mut server = Server::start("200 OK", "fine").await;
    let url = server.url("/health");
    let report = common::run_default(&url).await;
    assert_eq!(report.verdict, Verdict::Pass, "{report:?}");
    assert!(
        report
            .message
            .starts_with(&format!("GET {url} → 200 OK in ")),
        "{}",
        report.message
    );
    assert_eq!(report.details["status"], 200);
    assert!(!report.details.contains_key("body"));
    let request = server.request().await;
    assert!(request.starts_with("GET /health HTTP/1.1\r\n"), "{request}");
    assert!(request.contains("user-agent: vigil/"), "{request}");
}

#[tokio::test]
async fn status_500_fails_and_shows_the_start_of_the_body() {
    let body = format!("database down{}", "x".repeat(1000));
    let server = Server::start("500 Internal Server Error", &body).await;
    let report = common::run_default(&server.url("/")).await;
    assert_eq!(report.verdict, Verdict::Fail, "{report:?}");
    assert!(
        report.message.contains("→ 500 Internal Server Error in "),
        "{}",
        report.message
    );
    assert!(
        report.message.ends_with("; expected a 2xx status"),
        "{}",
        report.message
    );
    assert_eq!(report.details["status"], 500);
    let shown = report.details["body"].as_str().expect("body shown");
    assert_eq!(shown.len(), 200);
    assert!(shown.starts_with("database down"));
}

#[tokio::test]
async fn status_429_warns() {
    let server = Server::start("429 Too Many Requests", "slow down").await;
    let report = common::run_default(&server.url("/")).await;
    assert_eq!(report.verdict, Verdict::Warn, "{report:?}");
    assert!(
        report.message.contains("→ 429 Too Many Requests in "),
        "{}",
        report.message
    );
    assert_eq!(report.details["body"], "slow down");
}

#[tokio::test]
async fn other_statuses_fail_by_default() {
    for status in [
        "204 No Content",
        "301 Moved Permanently",
        "404 Not Found",
        "503 Service Unavailable",
    ] {
        let server = Server::start(status, "").await;
        let report = common::run_default(&server.url("/")).await;
        let expected = if status.starts_with('2') {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
        assert_eq!(report.verdict, expected, "{status}: {report:?}");
    }
}

#[tokio::test]
async fn expect_status_sets_the_passing_codes() {
    let expect = |codes: &[u16]| ProbeOptions {
        expect_status: Some(codes.to_vec()),
        ..ProbeOptions::default()
    };
    let server = Server::start("503 Service Unavailable", "").await;
    let report = common::run(&server.url("/"), &expect(&[200, 503])).await;
    assert_eq!(report.verdict, Verdict::Pass, "{report:?}");

    let server = Server::start("200 OK", "").await;
    let report = common::run(&server.url("/"), &expect(&[204, 304])).await;
    assert_eq!(report.verdict, Verdict::Fail, "{report:?}");
    assert!(
        report.message.ends_with("; expected status 204 or 304"),
        "{}",
        report.message
    );

    // With expect_status, 429 is just another code.
    let server = Server::start("429 Too Many Requests", "").await;
    let report = common::run(&server.url("/"), &expect(&[200])).await;
    assert_eq!(report.verdict, Verdict::Fail, "{report:?}");
}

#[tokio::test]
async fn expect_body_must_be_found_in_the_body() {
    let expect = |text: &str| ProbeOptions {
        expect_body: Some(text.into()),
        ..ProbeOptions::default()
    };
    let server = Server::start("200 OK", r#"{"status":"UP","db":"ok"}"#).await;
    let report = common::run(&server.url("/"), &expect(r#""status":"UP""#)).await;
    assert_eq!(report.verdict, Verdict::Pass, "{report:?}");

    let report = common::run(&server.url("/"), &expect(r#""status":"DOWN""#)).await;
    assert_eq!(report.verdict, Verdict::Fail, "{report:?}");
    assert!(
        report
            .message
            .ends_with(r#"; the body does not contain "\"status\":\"DOWN\"""#),
        "{}",
        report.message
    );
    assert_eq!(report.details["body"], r#"{"status":"UP","db":"ok"}"#);
}

#[tokio::test]
async fn method_headers_and_body_reach_the_server() {
    let mut server = Server::start("201 Created", "").await;
    let options = ProbeOptions {
        method: Some("PUT".into()),
        headers: vec![
            ("X-Token".into(), "abc123".into()),
            ("User-Agent".into(), "custom-agent".into()),
        ],
        body: Some(r#"{"ping":true}"#.into()),
        ..ProbeOptions::default()
    };
    let url = server.url("/v1/ping?deep=1");
    let report = common::run(&url, &options).await;
    assert_eq!(report.verdict, Verdict::Pass, "{report:?}");
    assert!(
        report
            .message
            .starts_with(&format!("PUT {url} → 201 Created")),
        "{}",
        report.message
    );
    let request = server.request().await;
    let lower = request.to_lowercase();
    assert!(
        request.starts_with("PUT /v1/ping?deep=1 HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(lower.contains("\r\nx-token: abc123\r\n"), "{request}");
    assert!(
        lower.contains("\r\nuser-agent: custom-agent\r\n"),
        "{request}"
    );
    assert!(!lower.contains("user-agent: vigil/"), "{request}");
    assert!(request.ends_with("\r\n\r\n{\"ping\":true}"), "{request}");
}

#[tokio::test]
async fn refused_connection_fails_with_the_reason() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("local address");
    drop(listener);
    let url = format!("http://{address}/");
    let report = common::run_default(&url).await;
    assert_eq!(report.verdict, Verdict::Fail, "{report:?}");
    assert!(
        report.message.starts_with(&format!("GET {url} failed: ")),
        "{}",
        report.message
    );
    assert!(
        report.message.to_lowercase().contains("refused"),
        "{}",
        report.message
    );
    assert!(report.error.is_some());
}

#[tokio::test]
async fn https_to_a_plain_http_server_fails_even_without_verification() {
    // The server answers in plain text whatever it receives; the TLS handshake cannot succeed.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .await;
            let _ = stream.shutdown().await;
        }
    });
    let options = ProbeOptions {
        tls_skip_verify: true,
        ..ProbeOptions::default()
    };
    let report = common::run(&format!("https://{address}/"), &options).await;
    assert_eq!(report.verdict, Verdict::Fail, "{report:?}");
    assert!(report.message.contains("failed: "), "{}", report.message);
}
