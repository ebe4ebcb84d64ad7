//! Database probes against hostile servers on loopback: each answers the client's first message
//! with a header announcing a huge message, then streams bytes. The probe must fail with the
//! `max_reply_bytes` message, and this process must not buffer what the server sends.

mod common;

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use vigil_health::Verdict;

/// What a hostile server sends at most per connection: far beyond any limit the probe may keep.
const FLOOD_BYTES: usize = 1 << 30;

/// A server that answers every connection's first bytes with `header` and then up to
/// [`FLOOD_BYTES`] of filler, until the client goes away.
async fn hostile_server(header: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut first = [0u8; 1024];
                let read = tokio::time::timeout(common::BOUND, socket.read(&mut first)).await;
                if !matches!(read, Ok(Ok(n)) if n > 0) {
                    return;
                }
                if socket.write_all(header).await.is_err() {
                    return;
                }
                let filler = vec![b'x'; 64 * 1024];
                let mut sent = 0;
                while sent < FLOOD_BYTES {
                    if socket.write_all(&filler).await.is_err() {
                        return;
                    }
                    sent += filler.len();
                }
            });
        }
    });
    addr
}

/// A field of /proc/self/status in bytes (`VmRSS`, `VmHWM`).
fn memory(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches(" kB").parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .expect("field present")
}

/// Runs `target` against the hostile server and checks the verdict, the message and the peak
/// memory of this process.
async fn probe_fails_within_memory_bound(target: &str) {
    let before = memory("VmRSS");
    let report = common::run_default(target).await;
    let grown = memory("VmHWM").saturating_sub(before);
    eprintln!("{target}: peak memory grew by {} KiB", grown >> 10);
    assert!(
        grown < 256 << 20,
        "{target}: peak memory grew by {} MiB while the server sent a huge reply",
        grown >> 20
    );
    assert_eq!(report.verdict, Verdict::Fail, "{report:?}");
    assert!(
        report.message.contains("max_reply_bytes = 4194304"),
        "{}",
        report.message
    );
}

/// One test for every kind: the peak memory is the process's, so the runs must not overlap.
#[tokio::test]
async fn database_probes_do_not_buffer_huge_replies() {
    // An `R` (authentication) message claiming 2 GiB, in answer to the startup message.
    let postgres = hostile_server(b"R\x7f\xff\xff\xf0").await;
    probe_fails_within_memory_bound(&format!("postgres://vigil@{postgres}/db")).await;
    // A bulk string claiming 4 GB, in answer to the first command.
    let redis = hostile_server(b"$4000000000\r\n").await;
    for scheme in ["redis", "redis-pubsub", "redis-kv"] {
        probe_fails_within_memory_bound(&format!("{scheme}://{redis}")).await;
    }
}
