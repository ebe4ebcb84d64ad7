//! `exec:COMMAND ARG…` probes: run a command directly (words split with shell-like quoting, but no
//! shell) and judge its exit code as Consul does: 0 passes, 1 warns, anything else or a signal fails.
//!
//! Stdout then stderr are captured up to [`OUTPUT_LIMIT`] bytes; beyond that the pipes are still
//! drained (and the excess discarded), so the command never blocks on a full pipe.
//!
//! Each run starts the command in a process group of its own, and the whole group is killed when
//! the run ends, however it ends: the command exited (anything it left running in the background
//! goes with it), or the probe future was dropped, which is how the engine's timeout, `vigil
//! probe`'s timeout and an agent's shutdown stop it. Killing only the direct child would leave a
//! shell's children running for ever, orphaned. A process that leaves the group on purpose
//! (`setsid`, `setpgid`) is out of reach.

use std::fmt;
use std::io;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rustix::process::{kill_process_group, Pid, Signal};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use vigil_health::{Probe, ProbeFuture, Report};

use crate::kind::{BuildError, Built, Invalid, Kind, ProbeOptions, Target};
use crate::util::truncate_on_char_boundary;

pub(crate) const KIND: Kind = Kind {
    scheme: "exec",
    form: "exec:COMMAND [ARG]... (quoted like a shell, but no shell runs)",
    parse,
};

/// The schemes this file parses.
pub(crate) const KINDS: &[Kind] = &[KIND];

/// Captured output (stdout then stderr) kept in a report.
pub(crate) const OUTPUT_LIMIT: usize = 4096;

/// Appended to output cut at [`OUTPUT_LIMIT`].
pub(crate) const TRUNCATION_NOTE: &str = "… [output truncated at 4 KiB]";

/// After the command exits, how long its pipes may stay open (held by a child it left behind) before
/// the probe reports with what it has.
const PIPE_GRACE: Duration = Duration::from_secs(1);

/// A validated `exec:` probe: the program and its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecSpec {
    argv: Vec<String>,
}

fn parse(_target: &str, rest: &str, _options: &ProbeOptions) -> Result<Arc<dyn Target>, Invalid> {
    let argv = shell_words::split(rest)
        .map_err(|error| Invalid::target(format!("cannot split the command: {error}")))?;
    if argv.first().is_none_or(String::is_empty) {
        return Err(Invalid::target("missing command"));
    }
    Ok(Arc::new(ExecSpec { argv }))
}

impl ExecSpec {
    fn probe(&self) -> ExecProbe {
        ExecProbe { spec: self.clone() }
    }
}

impl Target for ExecSpec {
    fn kind(&self) -> &'static str {
        KIND.scheme
    }

    fn build(&self) -> Result<Built, BuildError> {
        Ok(Built::probe(self.probe()))
    }
}

impl fmt::Display for ExecSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exec:{}", shell_words::join(&self.argv))
    }
}

/// A built exec probe.
pub(crate) struct ExecProbe {
    spec: ExecSpec,
}

impl ExecProbe {
    fn program(&self) -> &str {
        self.spec.argv.first().map_or("", String::as_str)
    }

    /// Starts the command in a new process group, with stdin closed and stdout and stderr piped;
    /// the group is killed when the returned run is dropped.
    fn spawn(&self) -> io::Result<Run> {
        let child = Command::new(self.program())
            .args(self.spec.argv.iter().skip(1))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()?;
        // The group's id is its leader's pid, the child's.
        let group = ProcessGroup(
            child
                .id()
                .and_then(|id| i32::try_from(id).ok())
                .and_then(Pid::from_raw),
        );
        Ok(Run { child, group })
    }

    async fn run(&self) -> Report {
        match self.spawn() {
            Ok(run) => self.finish(run).await,
            Err(error) => {
                let program = self.program();
                let message = match error.kind() {
                    io::ErrorKind::NotFound => format!("command not found: `{program}`"),
                    io::ErrorKind::PermissionDenied => {
                        format!("cannot run `{program}`: permission denied")
                    }
                    _ => format!("cannot run `{program}`: {error}"),
                };
                Report::fail(message).with_error(error)
            }
        }
    }

    /// Waits for the child while draining its output, then judges the exit status. Whatever is
    /// left of the process group is killed on return (or when the future is dropped).
    async fn finish(&self, run: Run) -> Report {
        let Run {
            mut child,
            group: _group,
        } = run;
        let mut stdout = Capture::default();
        let mut stderr = Capture::default();
        let stdout_pipe = child.stdout.take();
        let stderr_pipe = child.stderr.take();
        let status = {
            let drain = async {
                tokio::join!(stdout.drain(stdout_pipe), stderr.drain(stderr_pipe));
            };
            tokio::pin!(drain);
            let exited = tokio::select! {
                status = child.wait() => Some(status),
                () = &mut drain => None,
            };
            match exited {
                Some(status) => {
                    // The pipes normally close with the command; a child it left running may hold
                    // them open, so give them a moment and then go on with what was read.
                    let _ = tokio::time::timeout(PIPE_GRACE, &mut drain).await;
                    status
                }
                None => child.wait().await,
            }
        };
        let output = render_output(&stdout, &stderr);
        match status {
            Ok(status) => judge(status, output),
            Err(error) => Report::fail(format!("waiting for `{}` failed: {error}", self.program()))
                .with_error(error),
        }
    }
}

/// A started command and its process group.
struct Run {
    child: Child,
    group: ProcessGroup,
}

/// The process group of one run, killed with `SIGKILL` when dropped. Dropped while its leader is
/// still unreaped (a timeout) or while members remain, the id cannot have been reused; once the
/// leader is reaped and every member gone, the kill finds no group (ESRCH) unless the id was
/// recycled within that instant.
struct ProcessGroup(Option<Pid>);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if let Some(group) = self.0 {
            // ESRCH (nothing left) is the usual answer, and there is nothing to do about others.
            let _ = kill_process_group(group, Signal::KILL);
        }
    }
}

impl Probe for ExecProbe {
    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(self.run())
    }

    fn kind(&self) -> &'static str {
        KIND.scheme
    }
}

/// The Consul verdict for an exit status, with the output in the message and details.
fn judge(status: ExitStatus, output: String) -> Report {
    let trimmed = output.trim();
    let with_output = |head: String| {
        if trimmed.is_empty() {
            head
        } else {
            format!("{head}: {trimmed}")
        }
    };
    let report = match status.code() {
        Some(0) => Report::pass(with_output("exit code 0".to_owned())),
        Some(1) => Report::warn(with_output("exit code 1".to_owned())),
        Some(code) => Report::fail(with_output(format!("exit code {code}"))),
        None => {
            let (head, signal) = describe_signal(status);
            let report = Report::fail(with_output(head));
            match signal {
                Some(signal) => report.with_detail("signal", signal),
                None => report,
            }
        }
    };
    let report = match status.code() {
        Some(code) => report.with_detail("exit_code", code),
        None => report,
    };
    report.with_detail("output", trimmed)
}

#[cfg(unix)]
fn describe_signal(status: ExitStatus) -> (String, Option<i32>) {
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(signal) => (format!("killed by signal {signal}"), Some(signal)),
        None => ("ended without an exit code".to_owned(), None),
    }
}

#[cfg(not(unix))]
fn describe_signal(_status: ExitStatus) -> (String, Option<i32>) {
    ("ended without an exit code".to_owned(), None)
}

/// The first [`OUTPUT_LIMIT`] bytes of one pipe, and how many bytes it carried in all.
#[derive(Default)]
struct Capture {
    kept: Vec<u8>,
    total: u64,
}

impl Capture {
    /// Reads the pipe to its end, keeping what fits and discarding the rest.
    async fn drain(&mut self, pipe: Option<impl AsyncRead + Unpin>) {
        let Some(mut pipe) = pipe else { return };
        let mut buffer = [0u8; 8192];
        loop {
            match pipe.read(&mut buffer).await {
                Ok(0) => return,
                Ok(read) => {
                    let room = OUTPUT_LIMIT.saturating_sub(self.kept.len());
                    self.kept.extend_from_slice(&buffer[..read.min(room)]);
                    self.total = self.total.saturating_add(read as u64);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }
}

/// Stdout then stderr as text, cut at [`OUTPUT_LIMIT`] bytes with [`TRUNCATION_NOTE`] if anything
/// was left out.
fn render_output(stdout: &Capture, stderr: &Capture) -> String {
    let mut bytes = Vec::with_capacity(stdout.kept.len() + stderr.kept.len());
    bytes.extend_from_slice(&stdout.kept);
    bytes.extend_from_slice(&stderr.kept);
    let discarded = stdout.total.saturating_add(stderr.total) > bytes.len() as u64;
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    let cut = truncate_on_char_boundary(&mut text, OUTPUT_LIMIT);
    if cut || discarded {
        let kept = text.trim_end().len();
        text.truncate(kept);
        text.push(' ');
        text.push_str(TRUNCATION_NOTE);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(bytes: &[u8]) -> Capture {
        let mut capture = Capture::default();
        capture
            .kept
            .extend_from_slice(&bytes[..bytes.len().min(OUTPUT_LIMIT)]);
        capture.total = bytes.len() as u64;
        capture
    }

    #[test]
    fn output_within_the_limit_is_kept_whole() {
        let text = render_output(&capture(b"out\n"), &capture(b"err\n"));
        assert_eq!(text, "out\nerr\n");
    }

    #[test]
    fn output_is_cut_on_a_char_boundary_with_a_note() {
        // "x" then two-byte characters: byte 4096 falls inside one.
        let long = format!("x{}", "é".repeat(3000));
        let text = render_output(&capture(long.as_bytes()), &capture(b""));
        let body = text.strip_suffix(TRUNCATION_NOTE).expect("note at the end");
        let body = body.strip_suffix(' ').expect("space before the note");
        assert!(body.len() <= OUTPUT_LIMIT);
        assert!(body.ends_with('é'));
        assert_eq!(body.len(), 4095);
    }

    #[test]
    fn stderr_past_the_limit_is_cut() {
        let out = vec![b'o'; 3000];
        let err = vec![b'e'; 3000];
        let text = render_output(&capture(&out), &capture(&err));
        assert!(text.starts_with(&"o".repeat(3000)));
        assert!(text.ends_with(TRUNCATION_NOTE));
        assert_eq!(text.matches('e').count(), OUTPUT_LIMIT - 3000 + 1); // + the `e` of "truncated"
    }

    /// The child of a dropped probe future is killed: the engine's timeout relies on it.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn dropping_the_probe_kills_the_command() {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        use rustix::process::{pidfd_open, Pid, PidfdFlags};

        let probe = ExecSpec {
            argv: vec!["sleep".into(), "600".into()],
        }
        .probe();
        let run = probe.spawn().expect("sleep starts");
        let pid = run
            .child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(Pid::from_raw)
            .expect("a running child has a pid");
        // Opened before the kill, so the pid cannot be reused under us.
        let pidfd = pidfd_open(pid, PidfdFlags::empty()).expect("pidfd_open");

        let cut = tokio::time::timeout(Duration::from_millis(100), probe.finish(run)).await;
        assert!(cut.is_err(), "sleep 600 finished: {cut:?}");

        // A pidfd turns readable when its process has exited; wait for that, at most 20 s.
        let exited = tokio::task::spawn_blocking(move || {
            let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
            let bound = Timespec {
                tv_sec: 20,
                tv_nsec: 0,
            };
            poll(&mut fds, Some(&bound)).expect("poll")
        })
        .await
        .expect("poll thread");
        assert_eq!(
            exited, 1,
            "sleep 600 still runs after its probe was dropped"
        );
    }
}
