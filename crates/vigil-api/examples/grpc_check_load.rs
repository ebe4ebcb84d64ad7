//! A load generator for `grpc.health.v1.Health/Check`: how many calls per second a server answers.
//!
//! ```text
//! cargo run --release -p vigil-api --example grpc_check_load -- \
//!     --addr 127.0.0.1:9091 [--service NAME] [--connections 4] [--concurrency 64] [--duration 10s]
//! ```
//!
//! Opens `--connections` HTTP/2 connections and keeps `--concurrency` calls in flight on each, for
//! `--duration` after a one-second warm-up. Prints one line: `calls=N errors=E seconds=S rate=R`
//! (R = successful calls per second). `bench/probes/run.sh` runs it against `vigil agent`.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

struct Args {
    addr: String,
    service: String,
    connections: usize,
    concurrency: usize,
    duration: Duration,
}

const USAGE: &str = "usage: grpc_check_load --addr IP:PORT [--service NAME] [--connections N] \
                     [--concurrency N] [--duration DUR]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        addr: String::new(),
        service: String::new(),
        connections: 4,
        concurrency: 64,
        duration: Duration::from_secs(10),
    };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let value = given
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let count = || {
            value
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{flag}: {value:?} is not a positive number"))
        };
        match flag.as_str() {
            "--addr" => args.addr = value.clone(),
            "--service" => args.service = value.clone(),
            "--connections" => args.connections = count()?,
            "--concurrency" => args.concurrency = count()?,
            "--duration" => {
                args.duration = vigil_probe::parse_duration(&value)
                    .map_err(|e| format!("--duration: {value:?}: {e}"))?
            }
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    if args.addr.is_empty() {
        return Err(format!("--addr is required\n{USAGE}"));
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let mut clients = Vec::new();
    for _ in 0..args.connections {
        let channel = Channel::from_shared(format!("http://{}", args.addr))
            .map_err(|e| e.to_string())
            .map(|endpoint| endpoint.tcp_nodelay(true));
        let connected = match channel {
            Ok(endpoint) => endpoint.connect().await.map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match connected {
            Ok(channel) => clients.push(HealthClient::new(channel)),
            Err(e) => {
                eprintln!("cannot connect to {}: {e}", args.addr);
                return ExitCode::FAILURE;
            }
        }
    }
    let counting = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for client in &clients {
        for _ in 0..args.concurrency {
            let mut client = client.clone();
            let service = args.service.clone();
            let (counting, stop, calls, errors) = (
                counting.clone(),
                stop.clone(),
                calls.clone(),
                errors.clone(),
            );
            workers.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let request = HealthCheckRequest {
                        service: service.clone(),
                    };
                    let ok = client.check(request).await.is_ok();
                    if counting.load(Ordering::Relaxed) {
                        if ok {
                            calls.fetch_add(1, Ordering::Relaxed);
                        } else {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    counting.store(true, Ordering::Relaxed);
    let start = Instant::now();
    tokio::time::sleep(args.duration).await;
    counting.store(false, Ordering::Relaxed);
    let seconds = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        let _ = worker.await;
    }
    let calls = calls.load(Ordering::Relaxed);
    let errors = errors.load(Ordering::Relaxed);
    println!(
        "calls={calls} errors={errors} seconds={seconds:.3} rate={:.0}",
        calls as f64 / seconds
    );
    if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
