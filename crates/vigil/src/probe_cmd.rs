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
//! `grpc://` targets exit as `grpc_health_probe` does (their kind says so: [`ProbeSpec::exit_code`]), so scripts and Kubernetes configs written for
//! it keep working: 0 `SERVING`, 1 bad arguments, 2 connection failure (including a connect
//! timeout), 3 RPC failure (including an RPC timeout or an unknown service), 4 any status other
//! than `SERVING`. The two schemes agree on 0 and 1, and on 2 and 3 meaning "down" and "no answer
//! in time" in the common case.
//!
//! Docker's `HEALTHCHECK CMD ["vigil", "probe", "http://127.0.0.1:8080/health"]` needs no shell.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use vigil_health::Verdict;
use vigil_probe::{exit, Built, ProbeOptions, ProbeSpec};

/// Options of `vigil probe`. Options may come before or after the target.
#[derive(Args)]
#[command(override_usage = "vigil probe [OPTIONS] <TARGET>")]
pub struct ProbeArgs {
    /// http(s)://host:port/path, tcp://host:port, grpc://host:port[/service], postgres://…,
    /// redis://…, redis-pubsub://…, redis-kv://…, exec:CMD ARGS, disk:/path or memory.
    target: String,
    /// The probe's options, the same ones a check takes.
    #[command(flatten)]
    options: ProbeOptions,
    /// Print nothing; only the exit code tells.
    #[arg(short, long)]
    quiet: bool,
}

impl ProbeArgs {
    /// These arguments, trusting `ca` (`--ca-cert`) when `--tls-ca-cert` is not given.
    pub fn trusting(mut self, ca: Option<std::path::PathBuf>) -> Self {
        if self.options.tls_ca.is_none() {
            self.options.tls_ca = ca;
        }
        self
    }
}

/// `--timeout` when clap gives none (its default is the same).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The exit code of a command line clap refused, when it is a `vigil probe` command line:
/// clap's own code, 2, would read as "unhealthy", so a typo in a `HEALTHCHECK` would look like a
/// service that is down. `None` for other commands, for `--help` and `--version`.
pub fn usage_error_code(error: &clap::Error, args: &[std::ffi::OsString]) -> Option<ExitCode> {
    let probe = args.get(1).is_some_and(|command| command == "probe");
    (probe && error.use_stderr()).then(|| ExitCode::from(exit::BAD_ARGUMENTS))
}

/// Runs the probe and maps its verdict to the exit code.
pub async fn run(args: ProbeArgs) -> ExitCode {
    let quiet = args.quiet;
    let say = |line: String| {
        if !quiet {
            println!("{line}");
        }
    };
    let (spec, probe) = match build(&args) {
        Ok(built) => built,
        Err(e) => {
            eprintln!("vigil probe: {e}");
            return ExitCode::from(exit::BAD_ARGUMENTS);
        }
    };
    let timeout = args.options.timeout.unwrap_or(DEFAULT_TIMEOUT);
    match tokio::time::timeout(timeout, probe.probe()).await {
        Err(_) => {
            say(format!(
                "timeout: {} did not answer within {}",
                args.target,
                vigil_text::humanize(timeout)
            ));
            ExitCode::from(spec.exit_code(None))
        }
        Ok(report) => {
            let word = match report.verdict {
                Verdict::Pass => "ok",
                Verdict::Warn => "warning",
                Verdict::Fail => "unhealthy",
            };
            let message = report.message.lines().next().unwrap_or_default();
            say(format!("{word}: {message}"));
            ExitCode::from(spec.exit_code(Some(&report)))
        }
    }
}

fn build(args: &ProbeArgs) -> Result<(ProbeSpec, Arc<dyn vigil_health::Probe>), String> {
    let spec = ProbeSpec::parse(&args.target, &args.options).map_err(|e| e.to_string())?;
    match spec.build().map_err(|e| e.to_string())? {
        Built::Probe(probe) => Ok((spec, probe)),
        Built::Ttl(_) => Err("a ttl check is pushed to an agent, it cannot be probed".to_owned()),
    }
}
