//! `vigil probe TARGET`: run one probe, print one line, exit with a code scripts can act on.
//!
//! | exit | meaning |
//! | --- | --- |
//! | 0 | healthy (pass) |
//! | 1 | bad arguments (unknown or missing argument, unparsable target or option) |
//! | 2 | unhealthy (fail) |
//! | 3 | timed out |
//! | 4 | warning (exec exit code 1, HTTP 429) |
//!
//! `grpc://` targets exit as `grpc_health_probe` does, so scripts and Kubernetes configs written for
//! it keep working: 0 `SERVING`, 1 bad arguments, 2 connection failure (including a connect
//! timeout), 3 RPC failure (including an RPC timeout or an unknown service), 4 any status other
//! than `SERVING`. The two schemes agree on 0 and 1, and on 2 and 3 meaning "down" and "no answer
//! in time" in the common case.
//!
//! Docker's `HEALTHCHECK CMD ["vigil", "probe", "http://127.0.0.1:8080/health"]` needs no shell.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use vigil_health::Verdict;
use vigil_probe::{limits, Built, ProbeOptions, ProbeSpec};

/// Options of `vigil probe`. Options may come before or after the target.
#[derive(Args)]
#[command(override_usage = "vigil probe [OPTIONS] <TARGET>")]
pub struct ProbeArgs {
    /// http(s)://host:port/path, tcp://host:port, grpc://host:port[/service], postgres://…,
    /// redis://…, redis-pubsub://…, redis-kv://…, exec:CMD ARGS, disk:/path or memory.
    target: String,
    /// Give up after this long.
    #[arg(long, default_value = "10s", value_parser = |text: &str| limits::PROBE_TIMEOUT.parse(text))]
    timeout: Duration,
    /// HTTP method.
    #[arg(short = 'X', long)]
    method: Option<String>,
    /// HTTP request header, as "Name: value" (repeatable).
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// HTTP request body.
    #[arg(long)]
    body: Option<String>,
    /// HTTP status that passes (repeatable; default any 2xx).
    #[arg(long = "expect-status", value_parser = status_code)]
    expect_status: Vec<u16>,
    /// Substring the HTTP response body must contain.
    #[arg(long)]
    expect_body: Option<String>,
    /// Accept any TLS certificate.
    #[arg(long, alias = "tls-no-verify")]
    insecure: bool,
    /// gRPC: connect over TLS.
    #[arg(long)]
    tls: bool,
    /// gRPC: PEM file of the certificate authorities to trust.
    #[arg(long)]
    tls_ca_cert: Option<PathBuf>,
    /// gRPC: PEM file of the client certificate.
    #[arg(long)]
    tls_client_cert: Option<PathBuf>,
    /// gRPC: PEM file of the client certificate's key.
    #[arg(long)]
    tls_client_key: Option<PathBuf>,
    /// gRPC: the name the server certificate must carry.
    #[arg(long)]
    tls_server_name: Option<String>,
    /// Disk or memory: the highest used ratio that passes.
    #[arg(long)]
    max_used: Option<f64>,
    /// PostgreSQL or Redis: the most bytes read from the server (default 4194304, 4 MiB).
    #[arg(long)]
    max_reply_bytes: Option<u64>,
    /// Print nothing; only the exit code tells.
    #[arg(short, long)]
    quiet: bool,
}

const BAD_ARGUMENTS: u8 = 1;
const UNHEALTHY: u8 = 2;
const TIMED_OUT: u8 = 3;
const WARNING: u8 = 4;
/// grpc_health_probe's codes for what went wrong.
const GRPC_CONNECTION_FAILURE: u8 = 2;
const GRPC_RPC_FAILURE: u8 = 3;
const GRPC_NOT_SERVING: u8 = 4;

/// An HTTP status code, `100..=599`.
fn status_code(text: &str) -> Result<u16, String> {
    text.trim()
        .parse()
        .ok()
        .filter(|code| (100..=599).contains(code))
        .ok_or_else(|| "expected an HTTP status code from 100 to 599, e.g. 200".to_owned())
}

/// The exit code of a command line clap refused, when it is a `vigil probe` command line:
/// clap's own code, 2, would read as "unhealthy", so a typo in a `HEALTHCHECK` would look like a
/// service that is down. `None` for other commands, for `--help` and `--version`.
pub fn usage_error_code(error: &clap::Error, args: &[std::ffi::OsString]) -> Option<ExitCode> {
    let probe = args.get(1).is_some_and(|command| command == "probe");
    (probe && error.use_stderr()).then(|| ExitCode::from(BAD_ARGUMENTS))
}

/// Runs the probe and maps its verdict to the exit code.
pub async fn run(args: ProbeArgs) -> ExitCode {
    let quiet = args.quiet;
    let say = |line: String| {
        if !quiet {
            println!("{line}");
        }
    };
    let probe = match build(&args) {
        Ok(probe) => probe,
        Err(e) => {
            eprintln!("vigil probe: {e}");
            return ExitCode::from(BAD_ARGUMENTS);
        }
    };
    let grpc = probe.kind() == "grpc";
    match tokio::time::timeout(args.timeout, probe.probe()).await {
        Err(_) if grpc => {
            say(format!(
                "timeout: {} did not answer within {}",
                args.target,
                vigil_health::humanize(args.timeout)
            ));
            ExitCode::from(GRPC_RPC_FAILURE)
        }
        Err(_) => {
            say(format!(
                "timeout: {} did not answer within {}",
                args.target,
                vigil_health::humanize(args.timeout)
            ));
            ExitCode::from(TIMED_OUT)
        }
        Ok(report) => {
            let (word, code) = match report.verdict {
                Verdict::Pass => ("ok", 0),
                Verdict::Warn => ("warning", WARNING),
                Verdict::Fail if grpc => ("unhealthy", grpc_failure_code(&report)),
                Verdict::Fail => ("unhealthy", UNHEALTHY),
            };
            let message = report.message.lines().next().unwrap_or_default();
            say(format!("{word}: {message}"));
            ExitCode::from(code)
        }
    }
}

/// The exit code of a failed gRPC probe, from the step its report names.
fn grpc_failure_code(report: &vigil_health::Report) -> u8 {
    match report.details.get("failure").and_then(|f| f.as_str()) {
        Some(vigil_probe::grpc::FAILURE_CONNECT) => GRPC_CONNECTION_FAILURE,
        Some(vigil_probe::grpc::FAILURE_NOT_SERVING) => GRPC_NOT_SERVING,
        _ => GRPC_RPC_FAILURE,
    }
}

fn build(args: &ProbeArgs) -> Result<std::sync::Arc<dyn vigil_health::Probe>, String> {
    let headers = args
        .headers
        .iter()
        .map(|h| {
            h.split_once(':')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| format!("header {h:?} must look like \"Name: value\""))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let options = ProbeOptions {
        method: args.method.clone(),
        headers,
        body: args.body.clone(),
        expect_status: (!args.expect_status.is_empty()).then(|| args.expect_status.clone()),
        expect_body: args.expect_body.clone(),
        tls_skip_verify: args.insecure,
        max_used: args.max_used,
        ttl: None,
        tls: args.tls,
        tls_ca: args.tls_ca_cert.clone(),
        tls_cert: args.tls_client_cert.clone(),
        tls_key: args.tls_client_key.clone(),
        tls_server_name: args.tls_server_name.clone(),
        timeout: Some(args.timeout),
        max_reply_bytes: args.max_reply_bytes,
    };
    let spec = ProbeSpec::parse(&args.target, &options).map_err(|e| e.to_string())?;
    match spec.build().map_err(|e| e.to_string())? {
        Built::Probe(probe) => Ok(probe),
        Built::Ttl(_) => Err("a ttl check is pushed to an agent, it cannot be probed".to_owned()),
    }
}
