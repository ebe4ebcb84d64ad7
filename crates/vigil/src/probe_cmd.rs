//! `vigil probe TARGET`: run one probe, print one line, exit with a code scripts can act on.
//!
//! | exit | meaning |
//! | --- | --- |
//! | 0 | healthy (pass) |
//! | 1 | bad arguments (unparsable target or option) |
//! | 2 | unhealthy (fail) |
//! | 3 | timed out |
//! | 4 | warning (exec exit code 1, HTTP 429) |
//!
//! Docker's `HEALTHCHECK CMD ["vigil", "probe", "http://127.0.0.1:8080/health"]` needs no shell.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use vigil_api::checkdef::parse_duration;
use vigil_health::Verdict;
use vigil_probe::{Built, ProbeOptions, ProbeSpec};

/// Options of `vigil probe`.
#[derive(Args)]
pub struct ProbeArgs {
    /// http(s)://host:port/path, tcp://host:port, exec:CMD ARGS, disk:/path or memory.
    target: String,
    /// Give up after this long.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
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
    #[arg(long = "expect-status")]
    expect_status: Vec<u16>,
    /// Substring the HTTP response body must contain.
    #[arg(long)]
    expect_body: Option<String>,
    /// Accept any TLS certificate.
    #[arg(long)]
    insecure: bool,
    /// Disk or memory: the highest used ratio that passes.
    #[arg(long)]
    max_used: Option<f64>,
    /// Print nothing; only the exit code tells.
    #[arg(short, long)]
    quiet: bool,
}

const BAD_ARGUMENTS: u8 = 1;
const UNHEALTHY: u8 = 2;
const TIMED_OUT: u8 = 3;
const WARNING: u8 = 4;

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
    match tokio::time::timeout(args.timeout, probe.probe()).await {
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
                Verdict::Fail => ("unhealthy", UNHEALTHY),
            };
            let message = report.message.lines().next().unwrap_or_default();
            say(format!("{word}: {message}"));
            ExitCode::from(code)
        }
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
    };
    let spec = ProbeSpec::parse(&args.target, &options).map_err(|e| e.to_string())?;
    match spec.build().map_err(|e| e.to_string())? {
        Built::Probe(probe) => Ok(probe),
        Built::Ttl(_) => Err("a ttl check is pushed to an agent, it cannot be probed".to_owned()),
    }
}
