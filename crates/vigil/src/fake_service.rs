//! `vigil fake-service`: a tiny stand-in for a real service, for trying `vigil up` on a stack
//! without its programs (`examples/mooseng.toml`), for the tests and for the compose images.
//!
//! It serves HTTP on `--port`: `GET /health` answers 503 until `--ready-after` has passed, then
//! 200; any other path 404. With `--listen-late` it does not even listen before then, so a `tcp://`
//! probe sees it come up. It can also fail its first starts (`--fail-first`, counted in a file),
//! exit by itself (`--exit-after`, `--exit-code`, and `--sick-before-exit` to fail its probe
//! first, as a service shutting down does), ignore SIGTERM (`--ignore-term`), or turn unhealthy
//! when a file appears (`--unhealthy-file`, which each start removes, so a restart is a cure).
//! It prints one line to stdout once it listens, for `vigil logs` to show.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::Instant;

/// Options of `vigil fake-service`.
#[derive(Args, Debug)]
pub struct FakeServiceArgs {
    /// Port to serve on.
    #[arg(long)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Time after start until `/health` answers 200.
    #[arg(long, default_value = "0s", value_parser = |t: &str| vigil_probe::limits::READY_AFTER.parse(t))]
    ready_after: Duration,
    /// Listen only once ready (a TCP probe fails until then).
    #[arg(long)]
    listen_late: bool,
    /// Exit with status 1 on the first K starts (counted in `--count-file`).
    #[arg(long, default_value_t = 0, requires = "count_file")]
    fail_first: u32,
    /// How long a failing start runs before it exits.
    #[arg(long, default_value = "100ms", value_parser = |t: &str| vigil_probe::limits::FAIL_AFTER.parse(t))]
    fail_after: Duration,
    /// File counting starts, for `--fail-first`.
    #[arg(long)]
    count_file: Option<PathBuf>,
    /// Exit by itself after this long.
    #[arg(long, value_parser = |t: &str| vigil_probe::limits::EXIT_AFTER.parse(t))]
    exit_after: Option<Duration>,
    /// Status to exit with after `--exit-after`.
    #[arg(long, default_value_t = 0)]
    exit_code: u8,
    /// `/health` answers 503 this long before `--exit-after` ends it, as a service whose port
    /// closes while it shuts down.
    #[arg(long, requires = "exit_after", value_parser = |t: &str| vigil_probe::limits::SICK_BEFORE_EXIT.parse(t))]
    sick_before_exit: Option<Duration>,
    /// Ignore SIGTERM (only SIGKILL stops it).
    #[arg(long)]
    ignore_term: bool,
    /// `/health` answers 503 while this file exists; each start removes it first.
    #[arg(long)]
    unhealthy_file: Option<PathBuf>,
}

/// Runs the fake service until it exits by itself or is stopped.
pub async fn run(args: FakeServiceArgs) -> anyhow::Result<ExitCode> {
    let began = Instant::now();
    if let Some(path) = &args.count_file {
        let starts = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
            .unwrap_or(0)
            + 1;
        std::fs::write(path, starts.to_string())
            .with_context(|| format!("cannot write {}", path.display()))?;
        if starts <= args.fail_first {
            tokio::time::sleep(args.fail_after).await;
            eprintln!(
                "fake-service: failing start {starts} of {} on purpose",
                args.fail_first
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    if let Some(path) = &args.unhealthy_file {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot remove {}", path.display()));
            }
            _ => {}
        }
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch SIGTERM")?;
    let ready_at = began + args.ready_after;
    let exit_at = args.exit_after.map(|d| began + d);
    let sick_at = exit_at
        .zip(args.sick_before_exit)
        .map(|(exit, early)| exit.checked_sub(early).unwrap_or(began));
    let serve = serve(&args, ready_at, sick_at);
    tokio::pin!(serve);
    loop {
        tokio::select! {
            result = &mut serve => return result.map(|()| ExitCode::SUCCESS),
            _ = term.recv() => {
                if args.ignore_term {
                    eprintln!("fake-service: ignoring SIGTERM");
                } else {
                    return Ok(ExitCode::SUCCESS);
                }
            }
            () = sleep_until(exit_at) => return Ok(ExitCode::from(args.exit_code)),
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn serve(
    args: &FakeServiceArgs,
    ready_at: Instant,
    sick_at: Option<Instant>,
) -> anyhow::Result<()> {
    if args.listen_late {
        tokio::time::sleep_until(ready_at).await;
    }
    let addr = format!("{}:{}", args.host, args.port);
    let listener = TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    println!("fake-service: listening on {addr}");
    loop {
        let (mut stream, _) = listener.accept().await.context("accept")?;
        let sick = args
            .unhealthy_file
            .as_ref()
            .is_some_and(|path| path.exists())
            || sick_at.is_some_and(|at| Instant::now() >= at);
        tokio::spawn(async move {
            let mut request = [0u8; 1024];
            let read =
                tokio::time::timeout(Duration::from_secs(2), stream.read(&mut request)).await;
            let Ok(Ok(n)) = read else { return };
            let line = String::from_utf8_lossy(&request[..n]);
            let path = line.split_whitespace().nth(1).unwrap_or("/");
            let (status, body) = match path {
                "/health" if sick => ("503 Service Unavailable", "unhealthy\n"),
                "/health" if Instant::now() >= ready_at => ("200 OK", "ok\n"),
                "/health" => ("503 Service Unavailable", "starting\n"),
                _ => ("404 Not Found", "not found\n"),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}
