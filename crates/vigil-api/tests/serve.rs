//! The API's serve loop against hostile clients, over real loopback sockets: idle and half-sent
//! connections are closed within bounds, the probe endpoints answer while an attacker holds more
//! sockets than the limit, and errors the HTTP layer makes itself are JSON too.

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use vigil_api::serve::{serve, App, ServeLimits};
use vigil_api::{Api, Token};
use vigil_health::{CheckSpec, Engine, Thresholds, Verdict};

/// No single wait in these tests lasts longer.
const BOUND: Duration = Duration::from_secs(20);

/// A healthy node's API served as an agent serves it, with `limits`; the server stops when the
/// test's runtime ends.
async fn start(limits: ServeLimits) -> SocketAddr {
    start_app(healthy_api().app(), limits).await
}

/// `app` served with `limits` on a new loopback port.
async fn start_app(app: App, limits: ServeLimits) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, app, limits, std::future::pending()));
    addr
}

/// The API of a node with one passing check.
fn healthy_api() -> Api {
    let engine = Engine::builder().node_id("n1").stagger(false).build();
    engine
        .register_ttl(
            CheckSpec::new("job").thresholds(Thresholds::immediate()),
            Duration::from_secs(3600),
        )
        .unwrap();
    engine.start();
    engine.update_ttl("job", Verdict::Pass, None).unwrap();
    Api {
        engine,
        token: Token::new(None),
        read_token: Token::default(),
        cluster: None,
        leadership: None,
        neighbors: None,
        catalog: None,
        instances: None,
        webhooks: Default::default(),
        reload: Default::default(),
    }
}

/// Sends `request` on a new connection and reads the answer until the server closes it.
async fn exchange(addr: SocketAddr, request: &[u8]) -> (u16, String, String) {
    let answer = tokio::time::timeout(BOUND, async {
        let mut socket = TcpStream::connect(addr).await.unwrap();
        socket.write_all(request).await.unwrap();
        let mut bytes = Vec::new();
        let _ = socket.read_to_end(&mut bytes).await;
        bytes
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "no answer within the bound to {:?}",
            String::from_utf8_lossy(&request[..request.len().min(60)])
        )
    });
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    (status, head.to_ascii_lowercase(), body.to_owned())
}

async fn ready(addr: SocketAddr) -> u16 {
    exchange(
        addr,
        b"GET /health/ready HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await
    .0
}

/// Opens `count` connections, sending `prefix` on each (nothing for an idle one).
async fn open(addr: SocketAddr, count: usize, prefix: &[u8]) -> Vec<TcpStream> {
    let mut sockets = Vec::with_capacity(count);
    for _ in 0..count {
        let mut socket = TcpStream::connect(addr).await.unwrap();
        if !prefix.is_empty() {
            socket.write_all(prefix).await.unwrap();
        }
        sockets.push(socket);
    }
    sockets
}

/// Waits until the server has closed every socket (reading whatever it sent first); fails if any
/// is still open at `deadline`.
async fn wait_closed(what: &str, sockets: Vec<TcpStream>, deadline: Instant) {
    for (index, mut socket) in sockets.into_iter().enumerate() {
        let closed = tokio::time::timeout_at(deadline, async {
            let mut buffer = [0u8; 4096];
            loop {
                match socket.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "{what} connection {index} is still open");
    }
}

const HALF_HEAD: &[u8] = b"GET /health HTTP/1.1\r\nHost: t\r\nX-Slow: ";
const HALF_BODY: &[u8] =
    b"PUT /v1/checks/slow HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n{\"probe\": ";

#[tokio::test]
async fn idle_and_half_sent_connections_are_closed_within_their_timeouts() {
    let limits = ServeLimits {
        max_connections: 1000,
        header_read_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(2),
        stall_timeout: Duration::from_secs(3),
    };
    let addr = start(limits).await;
    let idle = open(addr, 20, b"").await;
    let half_head = open(addr, 20, HALF_HEAD).await;
    let half_body = open(addr, 10, HALF_BODY).await;
    // A kept-alive connection after one full request, then silence.
    let mut kept = open(addr, 1, b"GET /health/live HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let mut first = [0u8; 64];
    let read = tokio::time::timeout(BOUND, kept[0].read(&mut first)).await;
    assert!(matches!(read, Ok(Ok(n)) if n > 0), "the first answer came");

    // Generous against each timeout (1 s, 2 s, 3 s): what matters is that they end at all.
    let deadline = Instant::now() + Duration::from_secs(15);
    wait_closed("idle", idle, deadline).await;
    wait_closed("half-sent head", half_head, deadline).await;
    wait_closed("kept-alive", kept, deadline).await;
    wait_closed("half-sent body", half_body, deadline).await;
    assert_eq!(ready(addr).await, 200);
}

#[tokio::test]
async fn probes_answer_while_more_sockets_than_the_limit_are_held() {
    // Timeouts far beyond the test: only the connection limit can keep the probes answerable.
    let limits = ServeLimits {
        max_connections: 32,
        header_read_timeout: Duration::from_secs(600),
        request_timeout: Duration::from_secs(600),
        stall_timeout: Duration::from_secs(600),
    };
    let addr = start(limits).await;
    assert_eq!(ready(addr).await, 200);
    let mut held = Vec::new();
    let mut busy = Vec::new();
    for round in 0..4 {
        held.extend(open(addr, 40, b"").await);
        held.extend(open(addr, 20, HALF_HEAD).await);
        busy.extend(open(addr, 5, HALF_BODY).await);
        assert_eq!(ready(addr).await, 200, "round {round}");
    }
    // To make room the server closed the oldest connections without a request in progress: every
    // idle and half-sent head but the newest few. The half-sent bodies are requests in progress,
    // left to their timeout while idle connections remain to be closed.
    let deadline = Instant::now() + Duration::from_secs(10);
    let newest = held.split_off(held.len() - 32);
    wait_closed("evicted", held, deadline).await;
    drop(newest);
    // Past the limit in requests in progress alone, connections go too (which ones depends on
    // how far each got when the next arrived): never more than the limit stay open.
    busy.extend(open(addr, 40, HALF_BODY).await);
    assert_eq!(ready(addr).await, 200);
    let total = busy.len();
    let closed = count_closed(busy, total - 32, Instant::now() + Duration::from_secs(10)).await;
    assert!(closed >= total - 32, "{closed} of {total} closed");
    assert_eq!(ready(addr).await, 200);
}

/// Waits until at least `enough` of `sockets` are closed by the server, or `deadline`; returns how
/// many were.
async fn count_closed(sockets: Vec<TcpStream>, enough: usize, deadline: Instant) -> usize {
    let mut waits = tokio::task::JoinSet::new();
    for mut socket in sockets {
        waits.spawn(async move {
            let mut buffer = [0u8; 4096];
            loop {
                match socket.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        });
    }
    let mut closed = 0;
    while closed < enough {
        match tokio::time::timeout_at(deadline, waits.join_next()).await {
            Ok(Some(_)) => closed += 1,
            Ok(None) | Err(_) => break,
        }
    }
    closed
}

/// Status, JSON content type and an `error` text, for an error answer.
fn assert_json_error(expected: u16, (status, head, body): (u16, String, String)) {
    assert_eq!(status, expected, "{head}\n{body}");
    assert!(
        head.contains("content-type: application/json"),
        "{expected}: {head}"
    );
    let json: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    assert!(
        json["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn every_error_is_json() {
    let addr = start(ServeLimits::default()).await;

    // 413: a body over the limit, refused on its announced length.
    let too_long =
        b"PUT /v1/checks/big HTTP/1.1\r\nHost: t\r\nContent-Length: 3000000\r\nConnection: close\r\n\r\n";
    assert_json_error(413, exchange(addr, too_long).await);

    // 431: more header fields than the server parses.
    let mut many = b"GET /health HTTP/1.1\r\nHost: t\r\n".to_vec();
    for i in 0..120 {
        many.extend_from_slice(format!("X-Field-{i}: {i}\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    assert_json_error(431, exchange(addr, &many).await);

    // 400: a path segment that is not UTF-8.
    let not_utf8 = b"GET /v1/checks/%FF%FE HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    assert_json_error(400, exchange(addr, not_utf8).await);

    // 400: not HTTP at all.
    assert_json_error(400, exchange(addr, b"HELLO\r\n\r\n").await);

    // 404 and 405 stay JSON, and a success is untouched.
    let missing = b"GET /nowhere HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    assert_json_error(404, exchange(addr, missing).await);
    let wrong_method = b"POST /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    assert_json_error(405, exchange(addr, wrong_method).await);
    assert_eq!(ready(addr).await, 200);
}

/// The probe endpoints and `/metrics` are answered ahead of the router; what a client gets must
/// not depend on which path answered, for `GET` and for `HEAD`.
#[tokio::test]
async fn direct_answers_are_the_routers_answers() {
    let api = healthy_api();
    let routed = start_app(api.clone().router().into(), ServeLimits::default()).await;
    let direct = start_app(api.app(), ServeLimits::default()).await;
    // Both servers share one engine: compare once its first result is published.
    let deadline = Instant::now() + BOUND;
    while ready(direct).await != 200 {
        assert!(Instant::now() < deadline, "/health/ready never became 200");
        tokio::task::yield_now().await;
    }
    let paths = [
        "/health/ready",
        "/livez",
        "/readyz",
        "/readyz?verbose",
        "/readyz?verbose&exclude=job",
        "/livez?exclude=shutdown&verbose=1",
        "/health/checks",
        "/health/nope",
    ];
    for method in ["GET", "HEAD"] {
        for path in paths {
            let request =
                format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
            let (routed_status, routed_head, routed_body) =
                exchange(routed, request.as_bytes()).await;
            let (direct_status, direct_head, direct_body) =
                exchange(direct, request.as_bytes()).await;
            assert_eq!(direct_status, routed_status, "{method} {path}");
            assert_eq!(direct_body, routed_body, "{method} {path}");
            for header in ["content-type", "content-length"] {
                assert_eq!(
                    header_value(&direct_head, header),
                    header_value(&routed_head, header),
                    "{header} of {method} {path}"
                );
            }
            if method == "HEAD" {
                assert!(direct_body.is_empty(), "HEAD {path} sent a body");
            }
        }
    }
    // Bodies with a per-request uptime: the same shape and type, the uptime aside.
    for path in ["/health", "/health/live", "/metrics"] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let (routed_status, routed_head, _) = exchange(routed, request.as_bytes()).await;
        let (direct_status, direct_head, body) = exchange(direct, request.as_bytes()).await;
        assert_eq!(direct_status, 200, "{path}");
        assert_eq!(routed_status, 200, "{path}");
        assert_eq!(
            header_value(&direct_head, "content-type"),
            header_value(&routed_head, "content-type"),
            "content-type of {path}"
        );
        assert!(body.contains("uptime"), "{path} has no uptime: {body}");
    }
}

/// The value of `name` in a lower-cased response head.
fn header_value(head: &str, name: &str) -> Option<String> {
    head.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}: ")))
        .map(str::to_owned)
}

/// Reads answers off `socket` until it closes: status and body of each, in order.
async fn read_answers(socket: &mut TcpStream) -> Vec<(u16, String)> {
    let mut bytes = Vec::new();
    tokio::time::timeout(BOUND, socket.read_to_end(&mut bytes))
        .await
        .expect("the server closed the connection within the bound")
        .unwrap();
    let mut answers = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let text = String::from_utf8_lossy(rest);
        let (head, _) = text.split_once("\r\n\r\n").expect("a whole head");
        let head_len = head.len() + 4;
        let head = head.to_ascii_lowercase();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let length: usize = header_value(&head, "content-length").map_or(0, |v| v.parse().unwrap());
        let is_head_answer = answers.len() == 1;
        let length = if is_head_answer { 0 } else { length };
        let body = String::from_utf8_lossy(&rest[head_len..head_len + length]).into_owned();
        answers.push((status, body));
        rest = &rest[head_len + length..];
    }
    answers
}

/// Requests answered from memory and requests the router answers, pipelined on one kept-alive
/// connection, are all answered, in order, however the bytes arrive.
#[tokio::test]
async fn pipelined_direct_and_routed_requests_answer_in_order() {
    let addr = start(ServeLimits::default()).await;
    let deadline = Instant::now() + BOUND;
    while ready(addr).await != 200 {
        assert!(Instant::now() < deadline, "/health/ready never became 200");
        tokio::task::yield_now().await;
    }
    let requests = concat!(
        "GET /livez HTTP/1.1\r\nHost: t\r\n\r\n",
        "HEAD /health/ready HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET /v1/checks/job HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET /readyz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    for piece in [requests.len(), 7, 1] {
        let mut socket = TcpStream::connect(addr).await.unwrap();
        for chunk in requests.as_bytes().chunks(piece) {
            socket.write_all(chunk).await.unwrap();
        }
        let answers = read_answers(&mut socket).await;
        let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
        assert_eq!(statuses, [200, 200, 200, 200], "in pieces of {piece}");
        assert_eq!(answers[0].1, "ok", "in pieces of {piece}");
        assert!(answers[1].1.is_empty(), "HEAD sent no body");
        assert!(answers[2].1.contains("\"job\""), "{}", answers[2].1);
        assert_eq!(answers[3].1, "ok", "in pieces of {piece}");
    }
}

/// A `/metrics` large enough to be sent from its sealed file, and a `/health` of the same checks,
/// arrive whole and the same as the router's, their uptimes aside: on connections that close, on
/// one kept alive, and on one whose reader takes them a few kilobytes at a time.
#[tokio::test]
async fn large_shared_bodies_arrive_whole() {
    let api = healthy_api();
    for i in 0..120 {
        api.engine
            .register_ttl(
                CheckSpec::new(format!("a-check-with-a-long-name-to-fill-the-text-{i}"))
                    .thresholds(Thresholds::immediate()),
                Duration::from_secs(3600),
            )
            .unwrap();
    }
    let routed = start_app(api.clone().router().into(), ServeLimits::default()).await;
    let direct = start_app(api.app(), ServeLimits::default()).await;
    let without_uptime = |body: &str| -> String {
        let metrics = body
            .lines()
            .filter(|line| !line.starts_with("vigil_uptime_seconds"))
            .collect::<Vec<_>>()
            .join("\n");
        // `/health` ends with `"uptime":N}`.
        match metrics.rfind("\"uptime\":") {
            Some(at) if metrics.starts_with('{') => metrics[..at].to_owned(),
            _ => metrics,
        }
    };
    for path in ["/metrics", "/health"] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let (_, _, routed_body) = exchange(routed, request.as_bytes()).await;
        assert!(
            routed_body.len() > 20_000,
            "{path}: {} bytes",
            routed_body.len()
        );
        for _ in 0..3 {
            let (status, head, body) = exchange(direct, request.as_bytes()).await;
            assert_eq!(status, 200, "{path}");
            assert_eq!(
                header_value(&head, "content-length"),
                Some(body.len().to_string()),
                "{path}"
            );
            assert_eq!(
                without_uptime(&body),
                without_uptime(&routed_body),
                "{path}"
            );
        }

        // Kept alive, three answers back to back; then the same to a reader with a receive
        // buffer of a few kilobytes, which the server fills again and again.
        for receive_buffer in [None, Some(4096)] {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            if let Some(size) = receive_buffer {
                socket.set_recv_buffer_size(size).unwrap();
            }
            let mut socket = socket.connect(direct).await.unwrap();
            let keep = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
            socket.write_all(keep.as_bytes()).await.unwrap();
            socket.write_all(keep.as_bytes()).await.unwrap();
            socket.write_all(request.as_bytes()).await.unwrap();
            let mut bytes = Vec::new();
            let mut chunk = [0; 1024];
            tokio::time::timeout(BOUND, async {
                loop {
                    match socket.read(&mut chunk).await.unwrap() {
                        0 => break,
                        n => bytes.extend_from_slice(&chunk[..n]),
                    }
                }
            })
            .await
            .unwrap();
            let text = String::from_utf8(bytes).unwrap();
            let answers: Vec<&str> = text.split("HTTP/1.1 200 OK\r\n").skip(1).collect();
            assert_eq!(answers.len(), 3, "{path}");
            for answer in answers {
                let (head, body) = answer.split_once("\r\n\r\n").unwrap();
                let head = head.to_ascii_lowercase();
                assert_eq!(
                    header_value(&format!("x\n{head}"), "content-length"),
                    Some(body.len().to_string()),
                    "{path}"
                );
                assert_eq!(without_uptime(body), without_uptime(&routed_body), "{path}");
            }
        }
    }
}

/// A handler that waits on purpose (a blocking query) gets the time it asked for, past the
/// request and stall timeouts; one that is merely slow still gets `408`.
#[tokio::test]
async fn a_blocking_wait_outlasts_the_request_and_stall_timeouts() {
    use axum::http::request::Parts;
    use axum::routing::get;

    let pause = Duration::from_millis(2500);
    let router = axum::Router::new()
        .route(
            "/blocking",
            get(move |parts: Parts| async move {
                vigil_api::serve::allow_wait(&parts, pause);
                tokio::time::sleep(pause).await;
                "changed"
            }),
        )
        .route(
            "/slow",
            get(move || async move {
                tokio::time::sleep(pause).await;
                "late"
            }),
        );
    let limits = ServeLimits {
        request_timeout: Duration::from_secs(1),
        stall_timeout: Duration::from_secs(2),
        ..ServeLimits::default()
    };
    let addr = start_app(App::from(router), limits).await;
    let (status, _, body) = exchange(
        addr,
        b"GET /blocking HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "changed"));
    let (status, _, _) = exchange(
        addr,
        b"GET /slow HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 408);
}
