//! `vigil snapshot save|restore|inspect`: backups of the cluster's registry — instances and
//! their health, maintenance, sessions, elections and locks — as files with a checksum.
//!
//! `save` reads the registry on the leader after a majority confirmed it and writes the file
//! only once it has checked it (a temporary file renamed into place, so a failed save leaves no
//! half file). `restore` checks the file whole before sending it, and the agent checks it again
//! before writing it through Raft: a file cut short or changed is refused and changes nothing.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context;
use clap::Subcommand;
use reqwest::Method;
use vigil_api::snapshot::{summary, MAX_SNAPSHOT_BYTES};
use vigil_api::wire::SnapshotSummary;
use vigil_cluster::raft::Backup;

use crate::client::{Agent, Authorized, UNREACHABLE_HINT};

/// How long a save or restore may take: the leader confirms its leadership and, for a
/// restore, commits an entry of up to 8 MiB.
const TIMEOUT: Duration = Duration::from_secs(60);

/// What `vigil snapshot` does.
#[derive(Subcommand)]
pub enum SnapshotCommand {
    /// Save a consistent copy of the cluster's registry (instances, health, maintenance,
    /// sessions, elections, locks) to FILE.
    Save {
        /// Where to write it.
        file: PathBuf,
        #[command(flatten)]
        target: Authorized,
    },
    /// Replace the cluster's registry with the copy in FILE, through Raft.
    Restore {
        /// A file `vigil snapshot save` wrote.
        file: PathBuf,
        #[command(flatten)]
        target: Authorized,
    },
    /// Check FILE and say what it holds; exit 1 if it is damaged.
    Inspect {
        /// A file `vigil snapshot save` wrote.
        file: PathBuf,
        /// Print JSON instead of a line of text.
        #[arg(long)]
        json: bool,
    },
}

/// The agent a save or restore goes to.
fn agent_of(target: &Authorized) -> Agent {
    Agent::new(
        target.agent.addr.clone(),
        target.token(),
        TIMEOUT,
        UNREACHABLE_HINT,
    )
}

/// Runs a snapshot command.
pub async fn run(command: SnapshotCommand) -> anyhow::Result<ExitCode> {
    match command {
        SnapshotCommand::Save { file, target } => {
            let bytes = agent_of(&target)
                .send_bytes(Method::GET, "/v1/snapshot", None)
                .await?;
            let read = checked(&bytes)
                .context("the agent's snapshot does not check out; nothing was written")?;
            write_atomically(&file, &bytes)?;
            report(&file, &read, target.agent.json, "saved")?;
        }
        SnapshotCommand::Restore { file, target } => {
            let bytes = read_file(&file)?;
            checked(&bytes).with_context(|| {
                format!("{} cannot be restored; nothing was changed", file.display())
            })?;
            let answer = agent_of(&target)
                .send_bytes(Method::POST, "/v1/snapshot", Some(bytes))
                .await?;
            let restored: SnapshotSummary = serde_json::from_slice(&answer)
                .context("the agent answered the restore with an unexpected body")?;
            report(&file, &restored, target.agent.json, "restored")?;
        }
        SnapshotCommand::Inspect { file, json } => {
            let bytes = read_file(&file)?;
            let read = checked(&bytes)
                .with_context(|| format!("{} is not a sound snapshot", file.display()))?;
            report(&file, &read, json, "holds")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What `bytes` hold, once their header, length and checksum check out.
fn checked(bytes: &[u8]) -> anyhow::Result<SnapshotSummary> {
    let (header, backup) = Backup::decode(bytes)?;
    Ok(summary(&header, &backup))
}

/// The bytes of `file`, refused past the largest snapshot an agent takes.
fn read_file(file: &Path) -> anyhow::Result<Vec<u8>> {
    let size = std::fs::metadata(file)
        .with_context(|| format!("cannot read {}", file.display()))?
        .len();
    if size > MAX_SNAPSHOT_BYTES as u64 {
        anyhow::bail!(
            "{} is {size} bytes, over the {MAX_SNAPSHOT_BYTES} an agent restores",
            file.display()
        );
    }
    std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))
}

/// Writes `bytes` to a temporary file beside `file`, then renames it into place.
fn write_atomically(file: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = file
        .file_name()
        .with_context(|| format!("{} names no file", file.display()))?;
    let temporary = file.with_file_name(format!(".{}.partial", name.to_string_lossy()));
    std::fs::write(&temporary, bytes)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, file).with_context(|| {
        let _ = std::fs::remove_file(&temporary);
        format!("cannot move the snapshot into {}", file.display())
    })
}

fn report(file: &Path, summary: &SnapshotSummary, json: bool, verb: &str) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(summary)?);
        return Ok(());
    }
    let taken = time::OffsetDateTime::from(UNIX_EPOCH + Duration::from_millis(summary.created_ms));
    println!(
        "{verb} {}: registry at index {} taken {}: {} services, {} instances, {} nodes, {} sessions, {} elections, {} locks ({} bytes, sha256 {})",
        file.display(),
        summary.index,
        vigil_health::rfc3339(taken),
        summary.services,
        summary.instances,
        summary.nodes,
        summary.sessions,
        summary.elections,
        summary.locks,
        summary.bytes,
        summary.sha256,
    );
    Ok(())
}
