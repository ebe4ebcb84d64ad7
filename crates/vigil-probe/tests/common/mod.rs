//! Helpers shared by the integration tests.

#![allow(dead_code)]

/// Skipping a test that lacks an outside server, as the command's tests skip theirs.
#[path = "../../../vigil/tests/common/skip.rs"]
pub mod skip;

use std::time::Duration;

use vigil_health::Report;
use vigil_probe::{Built, ProbeOptions, ProbeSpec};

/// Every probe run in the tests is cut after this; no test waits longer for anything.
pub const BOUND: Duration = Duration::from_secs(20);

/// Parses, builds and runs a target once, bounded by [`BOUND`].
pub async fn run(target: &str, options: &ProbeOptions) -> Report {
    let spec = ProbeSpec::parse(target, options).expect("target parses");
    let Built::Probe(probe) = spec.build().expect("probe builds") else {
        panic!("{target} is not a ttl target");
    };
    assert_eq!(probe.kind(), spec.kind());
    tokio::time::timeout(BOUND, probe.probe())
        .await
        .expect("probe finished within the bound")
}

/// Runs a target with default options.
pub async fn run_default(target: &str) -> Report {
    run(target, &ProbeOptions::default()).await
}
