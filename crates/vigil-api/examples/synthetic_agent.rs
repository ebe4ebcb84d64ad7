//! A synthetic agent for benchmarks: N in-process closure checks on one engine, served by the full
//! agent router (`vigil_api::Api`) on a tokio multi-thread runtime, like `vigil agent`.
//!
//! A TOML config cannot express in-process checks (closures: no network, no subprocess), so
//! `bench/many-checks.sh` runs this instead of `vigil agent`:
//!
//! ```text
//! cargo run --release -p vigil-api --example synthetic_agent -- \
//!     --checks 10000 --interval 1s --bind 127.0.0.1:9100 [--fail-every 1000] [--workers N]
//! ```
//!
//! Each check is an async closure that returns `Report::pass`, except that one run in every
//! `--fail-every` runs (counted over all checks; 0 = never) returns `Report::fail`, so the failure
//! path of the engine is exercised too. Checks are non-critical, so the node stays ready (healthy or
//! degraded). The first runs are staggered over the interval (the engine's default).
//!
//! It prints `listening on ADDR` once the API is up and stops on SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use vigil_api::{Api, Token};
use vigil_health::{CheckSpec, Engine, Report};

struct Args {
    checks: usize,
    interval: Duration,
    bind: SocketAddr,
    fail_every: u64,
    workers: Option<usize>,
}

const USAGE: &str = "usage: synthetic_agent [--checks N] [--interval DUR] [--bind IP:PORT] \
                     [--fail-every N] [--workers N]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        checks: 10_000,
        interval: Duration::from_secs(1),
        bind: SocketAddr::from(([127, 0, 0, 1], 9100)),
        fail_every: 1000,
        workers: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.to_owned());
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value:?}: {e}");
        match flag.as_str() {
            "--checks" => args.checks = value.parse().map_err(|e| bad(&e))?,
            "--interval" => {
                args.interval = vigil_probe::parse_duration(&value).map_err(|e| bad(&e))?
            }
            "--bind" => args.bind = value.parse().map_err(|e| bad(&e))?,
            "--fail-every" => args.fail_every = value.parse().map_err(|e| bad(&e))?,
            "--workers" => args.workers = Some(value.parse().map_err(|e| bad(&e))?),
            _ => return Err(format!("unknown argument {flag:?}\n{USAGE}")),
        }
    }
    if args.interval.is_zero() {
        return Err("--interval must be greater than zero".to_owned());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = args.workers {
        builder.worker_threads(workers);
    }
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("synthetic_agent: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::builder().node_id("synthetic").stagger(true).build();
    let runs = Arc::new(AtomicU64::new(0));
    let fail_every = args.fail_every;
    // A run's timeout: the interval, at most 1 s (irrelevant for these instant closures).
    let timeout = args.interval.min(Duration::from_secs(1));
    for i in 0..args.checks {
        let runs = runs.clone();
        engine.register(
            CheckSpec::new(format!("synthetic-{i:05}"))
                .component(format!("group-{}", i % 10))
                .interval(args.interval)
                .timeout(timeout),
            move || {
                let n = runs.fetch_add(1, Ordering::Relaxed) + 1;
                async move {
                    if fail_every != 0 && n.is_multiple_of(fail_every) {
                        Report::fail("synthetic failure")
                    } else {
                        Report::pass("ok")
                    }
                }
            },
        )?;
    }
    engine.start();

    let listener = TcpListener::bind(args.bind).await?;
    let addr = listener.local_addr()?;
    let app = Api {
        engine: engine.clone(),
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
    .router();
    println!(
        "listening on {addr} with {} checks every {:?}",
        args.checks, args.interval
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(term) => term,
                    Err(_) => return std::future::pending().await,
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        })
        .await?;
    engine.stop();
    Ok(())
}
