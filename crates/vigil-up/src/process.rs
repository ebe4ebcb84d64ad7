//! Local processes: launching a service's command in its own process group with its output in a
//! log file, and stopping a process group with SIGTERM, a grace period, then SIGKILL — both for
//! children of this process and, for `vigil down`, for processes another `vigil up` started.
//!
//! Each service runs in a process group of its own so that a Ctrl-C in the terminal reaches
//! vigil alone (which then stops services in dependency order), and so that stopping a service
//! also stops whatever it forked.

use std::fs::OpenOptions;
use std::io;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use rustix::process::{kill_process, kill_process_group, test_kill_process, Pid, Signal};
use tokio::process::{Child, Command};

use crate::stack::CommandSpec;

/// Starts `spec` in a new process group, stdin closed, stdout and stderr appended to `log` (or
/// discarded without one).
pub fn spawn(spec: &CommandSpec, log: Option<&Path>) -> io::Result<Child> {
    let Some((program, args)) = spec.argv.split_first() else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty command"));
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .process_group(0)
        .kill_on_drop(false);
    if let Some(dir) = &spec.workdir {
        command.current_dir(dir);
    }
    match log {
        Some(path) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| {
                    io::Error::new(e.kind(), format!("its log {}: {e}", path.display()))
                })?;
            command.stdout(file.try_clone()?).stderr(file);
        }
        None => {
            command.stdout(Stdio::null()).stderr(Stdio::null());
        }
    }
    command
        .spawn()
        .map_err(|e| spawn_error(program, spec.workdir.as_deref(), e))
}

/// Why `program` could not be run, naming it (the system's own words name no file).
fn spawn_error(program: &str, workdir: Option<&Path>, e: io::Error) -> io::Error {
    let what = match (e.kind(), workdir) {
        (io::ErrorKind::NotFound, Some(dir)) if !dir.is_dir() => {
            format!("its workdir {} does not exist", dir.display())
        }
        (io::ErrorKind::NotFound, _) if program.contains('/') => {
            format!("program {program} does not exist")
        }
        (io::ErrorKind::NotFound, _) => format!("program {program} is not on the PATH"),
        (io::ErrorKind::PermissionDenied, _) => {
            format!("program {program} is not executable (permission denied)")
        }
        _ => format!("program {program}: {e}"),
    };
    io::Error::new(e.kind(), what)
}

/// How a stop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stopped {
    /// It exited after SIGTERM (or had already exited).
    Terminated,
    /// It ignored SIGTERM for the grace period and was killed.
    Killed,
    /// It was still there after SIGKILL.
    Stuck,
}

impl Stopped {
    /// How the stop is written in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Stopped::Terminated => "stopped",
            Stopped::Killed => "killed after the grace period",
            Stopped::Stuck => "would not stop",
        }
    }
}

/// How long SIGKILL may take to be seen before a process counts as stuck.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Whom a stop signals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reach {
    /// The child's process group (a child started by [`spawn`]).
    Group,
    /// The child alone (a child in its parent's group).
    Process,
}

fn signal(pid: u32, signal: Signal, reach: Reach) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        // It may be gone already; that is what stopping wants.
        let _ = match reach {
            Reach::Group => kill_process_group(pid, signal),
            Reach::Process => kill_process(pid, signal),
        };
    }
}

/// Stops a child started by [`spawn`]: SIGTERM to its group, up to `grace` for it to exit, then
/// SIGKILL.
pub async fn stop_child(child: &mut Child, grace: Duration) -> Stopped {
    stop(child, grace, Reach::Group).await
}

/// Stops a child that runs in this process's group: SIGTERM to it alone, up to `grace` for it
/// to exit, then SIGKILL.
pub async fn stop_process(child: &mut Child, grace: Duration) -> Stopped {
    stop(child, grace, Reach::Process).await
}

async fn stop(child: &mut Child, grace: Duration, reach: Reach) -> Stopped {
    let Some(pid) = child.id() else {
        return Stopped::Terminated;
    };
    signal(pid, Signal::TERM, reach);
    if tokio::time::timeout(grace, child.wait()).await.is_ok() {
        return Stopped::Terminated;
    }
    signal(pid, Signal::KILL, reach);
    match tokio::time::timeout(KILL_WAIT, child.wait()).await {
        Ok(_) => Stopped::Killed,
        Err(_) => Stopped::Stuck,
    }
}

/// The start time of a process (clock ticks after boot, field 22 of `/proc/PID/stat`), which
/// tells a process from a later one that reused its PID. `None` when it is gone or a zombie.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields are counted after the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// Whether the process with this PID is the one that started at `started` and still runs.
pub fn alive(pid: u32, started: u64) -> bool {
    let exists = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .is_some_and(|p| test_kill_process(p).is_ok());
    exists && start_time(pid) == Some(started)
}

/// Stops a process group this process did not start (identified by its leader's PID and start
/// time): SIGTERM, up to `grace`, then SIGKILL. The leader is watched through `/proc`, every
/// 20 ms.
pub async fn stop_group(pid: u32, started: u64, grace: Duration) -> Stopped {
    if !alive(pid, started) {
        return Stopped::Terminated;
    }
    signal(pid, Signal::TERM, Reach::Group);
    if wait_gone(pid, started, grace).await {
        return Stopped::Terminated;
    }
    signal(pid, Signal::KILL, Reach::Group);
    if wait_gone(pid, started, KILL_WAIT).await {
        Stopped::Killed
    } else {
        Stopped::Stuck
    }
}

/// Waits up to `limit` for the process to be gone; whether it is.
pub async fn wait_gone(pid: u32, started: u64, limit: Duration) -> bool {
    // Elapsed time, not a deadline: no `limit` can overflow the clock.
    let began = tokio::time::Instant::now();
    loop {
        if !alive(pid, started) {
            return true;
        }
        if began.elapsed() >= limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Keeps a service's log under about `cap` bytes: once it is larger, its content moves to
/// `<log>.1` (replacing the previous one) and the log is emptied in place. The service keeps
/// writing through the descriptor it was started with, opened for appending, so its next line
/// lands at the start of the emptied file; no process needs to reopen anything, and a service
/// outlives a supervisor that died. Lines written between the copy and the truncation are
/// lost. Returns whether the log was cut.
pub fn cap_log(log: &Path, cap: u64) -> io::Result<bool> {
    let size = match std::fs::metadata(log) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if size <= cap {
        return Ok(false);
    }
    let mut older = log.as_os_str().to_owned();
    older.push(".1");
    std::fs::copy(log, &older)?;
    OpenOptions::new().write(true).open(log)?.set_len(0)?;
    Ok(true)
}

/// Sends SIGTERM to one process (not its group).
pub fn terminate(pid: u32) {
    signal(pid, Signal::TERM, Reach::Process);
}
