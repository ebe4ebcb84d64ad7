//! `disk:` and `memory` probes on the machine running the tests.

mod common;

use vigil_health::Verdict;
use vigil_probe::ProbeOptions;

fn max_used(ratio: f64) -> ProbeOptions {
    ProbeOptions {
        max_used: Some(ratio),
        ..ProbeOptions::default()
    }
}

#[tokio::test]
async fn disk_root_reports_its_usage() {
    let report = common::run("disk:/", &max_used(1.0)).await;
    assert_eq!(report.verdict, Verdict::Pass, "{report:?}");
    assert!(report.message.starts_with("disk /: "), "{}", report.message);
    assert!(report.message.contains("% used"), "{}", report.message);
    let total = report.details["total_bytes"].as_u64().expect("total_bytes");
    let used = report.details["used_bytes"].as_u64().expect("used_bytes");
    let available = report.details["available_bytes"]
        .as_u64()
        .expect("available_bytes");
    let ratio = report.details["used_ratio"].as_f64().expect("used_ratio");
    assert!(total > 0);
    assert!(used + available <= total);
    assert!((0.0..=1.0).contains(&ratio));
    assert_eq!(report.details["path"], "/");
}

#[tokio::test]
async fn disk_above_max_used_fails() {
    let report = common::run("disk:/", &max_used(0.0)).await;
    assert_eq!(report.verdict, Verdict::Fail, "{report:?}");
    assert!(
        report.message.contains("above the 0.0% limit"),
        "{}",
        report.message
    );
}

#[tokio::test]
async fn disk_on_a_missing_path_fails_naming_it() {
    let report = common::run_default("disk:/nonexistent/vigil-probe-test").await;
    assert_eq!(report.verdict, Verdict::Fail, "{report:?}");
    assert!(
        report
            .message
            .starts_with("cannot stat /nonexistent/vigil-probe-test: "),
        "{}",
        report.message
    );
    assert!(
        report.message.contains("No such file"),
        "{}",
        report.message
    );
}

#[tokio::test]
async fn memory_within_max_used_passes() {
    let report = common::run("memory", &max_used(1.0)).await;
    assert_eq!(report.verdict, Verdict::Pass, "{report:?}");
    assert!(report.message.starts_with("memory: "), "{}", report.message);
    assert!(report.details["total_bytes"].as_u64().expect("total_bytes") > 0);
    for key in ["used_bytes", "available_bytes", "used_ratio"] {
        assert!(report.details.contains_key(key), "{key}");
    }
}

#[tokio::test]
async fn memory_above_a_tiny_max_used_fails() {
    let report = common::run("memory", &max_used(1e-9)).await;
    assert_eq!(report.verdict, Verdict::Fail, "{report:?}");
    assert!(report.message.contains("above the"), "{}", report.message);
}
