//! `vigil logs`: what a service of a stack started by `vigil up` wrote to its stdout and stderr,
//! from the log the supervisor keeps for it in the stack's state directory (the part cut off
//! last first, see [`vigil_up::process::cap_log`]); with `--follow`, what it writes next, until
//! Ctrl-C or until the stack is stopped.
//!
//! `-f` names the stack file, as for `up`, `down` and `ps`; following is `--follow` or `-F`, as
//! `tail -F` follows a file that is cut in place.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use vigil_up::state::{self, State};

use crate::up_cmd::StackArgs;

/// How often a followed log is looked at.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Options of `vigil logs`.
#[derive(Args, Debug)]
pub struct LogsArgs {
    /// The service.
    service: String,
    #[command(flatten)]
    stack: StackArgs,
    /// Keep printing what the service writes, until Ctrl-C or until the stack is stopped.
    #[arg(short = 'F', long)]
    follow: bool,
}

/// Runs `vigil logs`.
pub async fn run(args: &LogsArgs) -> anyhow::Result<ExitCode> {
    if args.stack.compose.is_some() {
        anyhow::bail!(
            "a compose stack's output is kept by docker: `docker compose logs {}`",
            args.service
        );
    }
    let path = args.stack.path();
    let dir = state::dir_for(path);
    let log = log_of(&dir, &args.service)?;
    let mut out = std::io::stdout();
    let mut older = log.as_os_str().to_owned();
    older.push(".1");
    if let Ok(text) = std::fs::read(&older) {
        out.write_all(&text)?;
    }
    let mut offset = copy_from(&log, 0, &mut out)?;
    out.flush()?;
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        let up = State::read(&dir).ok().flatten().is_some();
        tokio::time::sleep(FOLLOW_POLL).await;
        let size = std::fs::metadata(&log).map_or(0, |m| m.len());
        if size < offset {
            // Cut in place: what it writes now starts at the beginning again.
            offset = 0;
        }
        offset = copy_from(&log, offset, &mut out)?;
        out.flush()?;
        if !up {
            return Ok(ExitCode::SUCCESS);
        }
    }
}

/// The log of `service` in the state directory `dir`, which must exist.
fn log_of(dir: &Path, service: &str) -> anyhow::Result<PathBuf> {
    let logs = dir.join("logs");
    let valid = !service.is_empty()
        && service
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !service.starts_with('.');
    let log = logs.join(format!("{service}.log"));
    if valid && log.is_file() {
        return Ok(log);
    }
    let mut known: Vec<String> = std::fs::read_dir(&logs)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_suffix(".log"))
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default();
    known.sort();
    if known.is_empty() {
        anyhow::bail!("no service has a log in {}", logs.display());
    }
    anyhow::bail!(
        "no log of service \"{service}\" in {}; services with one: {}",
        logs.display(),
        known.join(", ")
    )
}

/// Writes what `log` holds from `offset` on; returns the offset reached.
fn copy_from(log: &Path, offset: u64, out: &mut impl Write) -> anyhow::Result<u64> {
    let mut file = match std::fs::File::open(log) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(offset),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", log.display())),
    };
    file.seek(SeekFrom::Start(offset))?;
    let mut buffer = Vec::new();
    file.read_to_end(&mut buffer)
        .with_context(|| format!("cannot read {}", log.display()))?;
    out.write_all(&buffer)?;
    Ok(offset + buffer.len() as u64)
}
