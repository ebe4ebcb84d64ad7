//! `tcp://` probes against real sockets on 127.0.0.1.

mod common;

use tokio::net::TcpListener;
use vigil_health::Verdict;

#[tokio::test]
async fn listening_port_passes_and_names_the_address() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("local address");
    let report = common::run_default(&format!("tcp://{address}")).await;
    assert_eq!(report.verdict, Verdict::Pass, "{report:?}");
    assert!(
        report
            .message
            .starts_with(&format!("connected to {address} in ")),
        "{}",
        report.message
    );
    assert_eq!(report.details["address"], address.to_string());
    assert_eq!(report.error, None);
}

#[tokio::test]
async fn host_name_is_resolved_and_both_are_named() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("local address").port();
    let report = common::run_default(&format!("tcp://localhost:{port}")).await;
    // localhost may resolve to ::1 first; the probe tries every address until one connects.
    assert_eq!(report.verdict, Verdict::Pass, "{report:?}");
    assert!(
        report
            .message
            .contains(&format!("localhost:{port} (127.0.0.1:{port})")),
        "{}",
        report.message
    );
}

#[tokio::test]
async fn closed_port_fails_with_the_reason() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("local address");
    drop(listener);
    let report = common::run_default(&format!("tcp://{address}")).await;
    assert_eq!(report.verdict, Verdict::Fail, "{report:?}");
    assert!(
        report
            .message
            .starts_with(&format!("cannot connect to {address}: ")),
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
