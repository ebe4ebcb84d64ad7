//! `vigil demo`: a local node with sample checks, running until Ctrl-C.
//!
//! The node is configured by the embedded `demo.toml` (through the same loader as `vigil agent`),
//! plus one check that only code can express: a cache that flaps. The demo feeds its TTL check
//! through the real HTTP API with the token it generated, as a watched process would.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use rand::Rng;
use vigil_health::{CheckSpec, Engine, Report};

use crate::agent::{self, Extras};
use crate::config;

/// Options of `vigil demo`.
#[derive(Args)]
pub struct DemoArgs {
    /// Port of the demo node's API on 127.0.0.1.
    #[arg(long, default_value_t = 8081)]
    port: u16,
}

const DEMO_CONFIG: &str = include_str!("demo.toml");

/// Runs the demo node.
pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let source = DEMO_CONFIG.replace("{port}", &args.port.to_string());
    let mut config = config::parse(&source, "demo.toml").map_err(|e| anyhow::anyhow!("{e}"))?;
    let token = format!("{:032x}", rand::rng().random::<u128>());
    config.api.token = Some(token.clone());
    let extras = Extras {
        on_ready: Some(Box::new(move |engine: &Engine, addr: SocketAddr| {
            add_flaky_check(engine);
            feed_ttl(addr, token.clone());
            print_banner(engine, addr, &token);
        })),
    };
    agent::run(config, extras).await
}

/// A non-critical check that fails about a third of the time, so the node turns `degraded` and
/// back, and the score moves.
fn add_flaky_check(engine: &Engine) {
    let spec = CheckSpec::new("cache-flaky")
        .description("a cache that misbehaves now and then")
        .interval(Duration::from_secs(3))
        .timeout(Duration::from_secs(1))
        .component("cache");
    let registered = engine.register(spec, || async {
        let latency_ms: u64 = rand::rng().random_range(1..40);
        tokio::time::sleep(Duration::from_millis(latency_ms)).await;
        if rand::rng().random_bool(0.35) {
            Report::fail("cache GET timed out on 1 of 3 shards").with_detail("shards_down", 1)
        } else {
            Report::pass("3 of 3 shards answering").with_detail("shards_up", 3)
        }
    });
    if let Err(e) = registered {
        tracing::error!("demo: cannot register cache-flaky: {e}");
    }
}

/// Pushes `pass` to the TTL check every 2 seconds through the HTTP API, as a batch worker would.
fn feed_ttl(addr: SocketAddr, token: String) {
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let url = format!("http://{addr}/v1/checks/batch-job/pass");
        for batch in 1u64.. {
            let sent = client
                .put(&url)
                .bearer_auth(&token)
                .body(format!("batch {batch} processed"))
                .send()
                .await;
            if let Err(e) = sent.and_then(|r| r.error_for_status()) {
                tracing::warn!("demo: TTL update failed: {e}");
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
}

fn print_banner(engine: &Engine, addr: SocketAddr, token: &str) {
    let base = format!("http://{addr}");
    let checks = engine.snapshot().checks().len();
    println!(
        "vigil demo: node \"{}\" with {checks} checks",
        engine.config().node_id
    );
    for (what, path) in [
        ("status", "/health"),
        ("readiness", "/health/ready"),
        ("liveness", "/health/live"),
        ("checks", "/health/checks"),
        ("summary", "/health/summary"),
        ("kube-style", "/readyz?verbose"),
        ("metrics", "/metrics"),
        ("events", "/v1/events"),
    ] {
        println!("  {what:<11} {base}{path}");
    }
    println!("  API token   {token}");
    println!();
    println!("  try:  vigil status --addr {base}");
    println!("        vigil checks --addr {base}");
    println!("        curl -X PUT -H 'Authorization: Bearer {token}' -d 'stuck' {base}/v1/checks/batch-job/fail");
    println!();
    println!("Press Ctrl-C to stop (the node reports `stopping` before it closes).");
}
