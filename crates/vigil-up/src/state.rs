//! The state file of a running stack: which process (or container) runs each service, each
//! service's stop order and grace period, what it is doing (running, waiting, restarting; healthy
//! or not; restarts), and the `vigil up` process supervising them, attached or in the
//! background. The supervisor keeps it current, rewriting it whole (a temporary file renamed
//! over it) at each change; `vigil ps` shows it and `vigil down` reads it to stop the stack.
//!
//! It lives next to the stack file, in `.vigil/<stack file name>/state.json`, beside the
//! services' logs (`.vigil/<stack file name>/logs/<service>.log`) and a background supervisor's
//! own (`supervisor.log`), so `vigil down -f FILE` finds it from the same argument
//! `vigil up -f FILE` was given.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::process::Stopped;
use crate::register::{Instance, RegistryOutcome};
use crate::supervise::Status;

/// The name of a background supervisor's log in the state directory.
pub const SUPERVISOR_LOG: &str = "supervisor.log";

/// The directory of a stack's state file and logs.
pub fn dir_for(stack_file: &Path) -> PathBuf {
    let name = stack_file
        .file_name()
        .map_or_else(|| "stack".into(), |n| n.to_string_lossy().into_owned());
    stack_file
        .parent()
        .unwrap_or(Path::new(""))
        .join(".vigil")
        .join(name)
}

/// What `vigil down` needs to stop a stack.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct State {
    /// The `vigil up` process supervising the stack.
    pub supervisor: Option<Proc>,
    /// Whether the stack is still starting or up.
    #[serde(default)]
    pub phase: StackPhase,
    /// The compose project, for a compose stack.
    pub compose: Option<ComposeState>,
    /// The services launched so far, in stack order.
    pub services: Vec<ServiceState>,
}

/// Where a stack is.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StackPhase {
    /// `vigil up` is starting it.
    #[default]
    Starting,
    /// It started (perhaps degraded), and its supervisor watches it.
    Up,
}

/// A process and its start time, which tells it from a later process reusing its PID.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Proc {
    /// Process id.
    pub pid: u32,
    /// Start time in clock ticks after boot (see [`crate::process::start_time`]).
    pub start_time: u64,
}

/// The compose project of a compose stack.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ComposeState {
    /// The compose file.
    pub file: PathBuf,
    /// The project name.
    pub project: String,
}

/// One launched service.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServiceState {
    /// Its name.
    pub name: String,
    /// Its dependency level: services stop deepest level first.
    pub level: usize,
    /// Milliseconds between SIGTERM and SIGKILL.
    pub stop_grace_ms: u64,
    /// Its current process group leader, for a local process.
    pub process: Option<Proc>,
    /// Its container, for a compose service.
    pub container: Option<String>,
    /// The instance it is registered as, while it is (see [`crate::register`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered: Option<Instance>,
    /// When its current process started, in seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<u64>,
    /// What it is doing, as its supervisor last saw.
    #[serde(default)]
    pub status: Status,
}

impl State {
    /// Reads the state file in `dir`; `Ok(None)` when there is none.
    pub fn read(dir: &Path) -> io::Result<Option<State>> {
        match std::fs::read_to_string(dir.join("state.json")) {
            Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", dir.join("state.json").display()),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes the state file in `dir` (atomically: a reader never sees half a file).
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let text = serde_json::to_string_pretty(self).map_err(io::Error::other)?;
        let tmp = dir.join("state.json.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(tmp, dir.join("state.json"))
    }

    /// Removes the state file in `dir`, if any.
    pub fn remove(dir: &Path) -> io::Result<()> {
        match std::fs::remove_file(dir.join("state.json")) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Records how each service's stop ended, in stop order, for the `vigil down` that asked
    /// the supervisor to stop (it reads them with [`State::take_stops`]).
    pub fn write_stops(dir: &Path, stops: &[StopRecord]) -> io::Result<()> {
        let text = serde_json::to_string(stops).map_err(io::Error::other)?;
        let tmp = dir.join("stops.json.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(tmp, dir.join("stops.json"))
    }

    /// The stops [`State::write_stops`] recorded, removing them; `None` when there are none.
    pub fn take_stops(dir: &Path) -> Option<Vec<StopRecord>> {
        let path = dir.join("stops.json");
        let text = std::fs::read_to_string(&path).ok()?;
        let _ = std::fs::remove_file(&path);
        serde_json::from_str(&text).ok()
    }
}

/// How a supervisor's stop of one service ended.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StopRecord {
    /// The service.
    pub name: String,
    /// How its process ended.
    pub stopped: Stopped,
    /// How its deregistration went, when it was registered.
    pub deregistered: Option<RegistryOutcome>,
}
