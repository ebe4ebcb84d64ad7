//! `vigil up` and `vigil down`: starting a stack from a stack file or a compose file with live
//! progress and a report, supervising it while attached, and stopping it in reverse dependency
//! order.
//!
//! `vigil up` stays attached after the start, like `docker compose up`: it keeps probing and
//! restarting services per their policy, and dependants follow their `on_dependency_unhealthy`
//! policy, until Ctrl-C (or `vigil down`, or SIGTERM), then stops everything. `vigil up -d`
//! does the same in a background supervisor (this program again, with a hidden flag) and returns
//! once the stack is up, having shown the start as it went; `vigil down` stops it.
//!
//! Services with a `register` table are registered with the agent at `--addr` once ready and
//! deregistered as they stop (see [`crate::up_register`]); when the agent cannot be reached or
//! refuses, each such service says so and the stack goes on.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use tokio::sync::watch;
use vigil_up::launch::Backend;
use vigil_up::process::Stopped;
use vigil_up::runner::fmt_duration;
use vigil_up::schedule::{Event, Mode, Notice, Outcome, Phase, Scheduler};
use vigil_up::stack::{Launch, ServiceId, Stack};
use vigil_up::supervise::{HealthState, RunState, Status};
use vigil_up::up::{Observer, Options, Started, Up};
use vigil_up::{compose, report, state, svg};

use crate::up_register::{AgentArgs, AgentRegistry, StackReader};

/// How services are released.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ScheduleArg {
    /// Each service as soon as its own dependencies are satisfied.
    Graph,
    /// Level by level, each waiting for the whole level before it (for comparison).
    Waves,
}

/// Options of `vigil up`.
#[derive(Args, Debug)]
pub struct UpArgs {
    #[command(flatten)]
    stack: StackArgs,
    /// Write the report as JSON to this file.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Write the startup timeline as SVG to this file.
    #[arg(long)]
    timeline: Option<PathBuf>,
    /// Most services starting at once (launched, not yet ready).
    #[arg(long)]
    concurrency: Option<usize>,
    /// `graph`: each service as soon as its dependencies allow; `waves`: level by level.
    #[arg(long, value_enum, default_value = "graph")]
    schedule: ScheduleArg,
    /// Supervise the stack from a background process and return once it is up (`vigil ps`
    /// shows it, `vigil down` stops it).
    #[arg(short, long)]
    detach: bool,
    /// Be the background supervisor `vigil up -d` launches.
    #[arg(long, hide = true, requires = "detach")]
    background: bool,
    #[command(flatten)]
    agent: AgentArgs,
}

/// Which stack: a stack file or a compose file.
#[derive(Args, Debug)]
pub struct StackArgs {
    /// The stack file (TOML).
    #[arg(short, long, default_value = "vigil-stack.toml")]
    file: PathBuf,
    /// A docker compose file instead of a stack file.
    #[arg(long)]
    pub compose: Option<PathBuf>,
    /// The compose project name (default: the compose file's directory name).
    #[arg(long, requires = "compose")]
    project: Option<String>,
}

impl StackArgs {
    /// The stack file or compose file.
    pub fn path(&self) -> &Path {
        self.compose.as_deref().unwrap_or(&self.file)
    }
}

/// Options of `vigil down`.
#[derive(Args, Debug)]
pub struct DownArgs {
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    agent: AgentArgs,
}

/// Runs `vigil up`.
pub async fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    let path = args.stack.path().to_owned();
    let loaded = match &args.stack.compose {
        Some(file) => compose::load(file),
        None => vigil_up::parse::load_with(&path, &StackReader),
    };
    let mut stack = match loaded {
        Ok(stack) => stack,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::FAILURE);
        }
    };
    run_vigil_as_self(&mut stack);
    let state_dir = state::dir_for(&path);
    if let Some(existing) = state::State::read(&state_dir)? {
        let running = existing
            .supervisor
            .is_some_and(|s| vigil_up::process::alive(s.pid, s.start_time))
            || existing.services.iter().any(|s| {
                s.process
                    .is_some_and(|p| vigil_up::process::alive(p.pid, p.start_time))
            });
        if running {
            anyhow::bail!(
                "{} is already up (state in {}); stop it first with `vigil down -f {}`",
                path.display(),
                state_dir.display(),
                path.display()
            );
        }
    }
    if args.detach && !args.background {
        return launch_background(&state_dir, &stack_flag(&args.stack)).await;
    }
    if args.background {
        vigil_up::background::leave_session().context("cannot leave the terminal's session")?;
    }
    let backend = match &args.stack.compose {
        Some(file) => {
            let project = args
                .stack
                .project
                .clone()
                .unwrap_or_else(|| compose::default_project_name(file));
            // `vigil down` may run from another directory: the state file keeps the full path.
            let file = file
                .canonicalize()
                .with_context(|| format!("cannot find {}", file.display()))?;
            Backend::Compose(
                compose::Project::prepare(&file, &project)
                    .await
                    .context("cannot create the compose project's containers")?,
            )
        }
        None => {
            let logs = state_dir.join("logs");
            std::fs::create_dir_all(&logs)
                .with_context(|| format!("cannot create {}", logs.display()))?;
            Backend::Process {
                log_dir: Some(logs),
            }
        }
    };
    let mode = match args.schedule {
        ScheduleArg::Graph => Mode::Graph,
        ScheduleArg::Waves => Mode::Waves,
    };
    let (interrupt_tx, mut interrupt) = watch::channel(false);
    let (signal_tx, signal_rx) = watch::channel(None);
    tokio::spawn(async move {
        let signal = wait_for_signal().await;
        let _ = signal_tx.send(Some(signal));
        let _ = interrupt_tx.send(true);
    });

    let mut up = Up::new(
        stack,
        Options {
            mode,
            concurrency: args.concurrency,
            backend,
            state_dir: Some(state_dir.clone()),
            registry: Some(Arc::new(AgentRegistry::new(&args.agent))),
        },
    );
    let mut progress = Progress::new(std::io::stdout().is_terminal() && !args.background);
    let started = up.start(&mut progress, &mut interrupt).await;
    progress.finish(up.scheduler());
    let (outcome, report) = match started {
        Started::Done(outcome, report) => (Some(outcome), report),
        Started::Interrupted(report) => (None, report),
    };
    println!("\n{}", report.table());
    write_outputs(&report, args.report.as_deref(), args.timeline.as_deref())?;

    let code = match outcome {
        Some(Outcome::Up { .. }) => {
            if args.background {
                up.settle(&mut progress).await;
                let log = state_dir.join(state::SUPERVISOR_LOG);
                println!(
                    "stack is up; supervised in the background by pid {}, which logs to {}",
                    std::process::id(),
                    log.display()
                );
                vigil_up::background::output_to(&log)
                    .with_context(|| format!("cannot write {}", log.display()))?;
            } else {
                println!(
                    "stack is up; supervising it (Ctrl-C or `vigil down {}` stops it)",
                    stack_flag(&args.stack)
                );
            }
            up.supervise(&mut progress, &mut interrupt).await;
            let signal = *signal_rx.borrow();
            match signal {
                // Ctrl-C interrupts, as it does during the start.
                Some(StopSignal::Interrupt) => {
                    println!("interrupted; stopping");
                    ExitCode::from(130)
                }
                // SIGTERM, which is how `vigil down` asks: a stop on request.
                Some(StopSignal::Terminate) | None => {
                    println!("stopping");
                    ExitCode::SUCCESS
                }
            }
        }
        Some(Outcome::Failed { .. }) => {
            println!("start failed; stopping what was started");
            ExitCode::FAILURE
        }
        None => {
            println!("interrupted; stopping what was started");
            ExitCode::from(130)
        }
    };
    let results = up.stop(&mut progress).await;
    let stuck: Vec<&str> = results
        .iter()
        .filter(|(_, s)| *s == Stopped::Stuck)
        .map(|(n, _)| n.as_str())
        .collect();
    if !stuck.is_empty() {
        eprintln!("error: would not stop: {}", stuck.join(", "));
        return Ok(ExitCode::FAILURE);
    }
    Ok(code)
}

/// Longest `vigil up -d` waits, once its supervisor's output ended, for the state file to say
/// the stack is up.
const HANDOVER: Duration = Duration::from_secs(10);

/// `vigil up -d`: launches the background supervisor (this program, with the same arguments and
/// `--background`), passes on what it prints during the start, and returns once it says the
/// stack is up (exit 0) or it exits (its exit code). Ctrl-C asks it to stop what it started.
async fn launch_background(state_dir: &Path, flag: &str) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("cannot create {}", state_dir.display()))?;
    let me = std::env::current_exe().context("cannot find this program")?;
    let mut child = tokio::process::Command::new(me)
        .args(std::env::args_os().skip(1))
        .arg("--background")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(false)
        .spawn()
        .context("cannot start the background supervisor")?;
    let pid = child.id().unwrap_or_default();
    let (Some(mut out), Some(mut err)) = (child.stdout.take(), child.stderr.take()) else {
        anyhow::bail!("the background supervisor has no output to read");
    };
    let copy = async {
        tokio::join!(
            pass_on(&mut out, std::io::stdout()),
            pass_on(&mut err, std::io::stderr())
        );
    };
    tokio::pin!(copy);
    let mut interrupted = false;
    tokio::select! {
        () = &mut copy => {}
        _ = wait_for_signal() => {
            interrupted = true;
            vigil_up::process::terminate(pid);
            copy.await;
        }
    }
    let began = tokio::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(match status.code() {
                _ if interrupted => ExitCode::from(130),
                Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
                None => ExitCode::FAILURE,
            });
        }
        let state = state::State::read(state_dir).ok().flatten();
        if state.is_some_and(|s| {
            s.phase == state::StackPhase::Up && s.supervisor.is_some_and(|p| p.pid == pid)
        }) {
            println!(
                "detached; `vigil ps {flag}` shows the stack, `vigil logs SERVICE {flag}` a service's output, `vigil down {flag}` stops it"
            );
            return Ok(ExitCode::SUCCESS);
        }
        if began.elapsed() > HANDOVER {
            anyhow::bail!(
                "the background supervisor (pid {pid}) neither said the stack is up nor exited; see {}",
                state_dir.join(state::SUPERVISOR_LOG).display()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Copies what the supervisor prints to this program's own output, as it comes, until it ends.
async fn pass_on(from: &mut (impl tokio::io::AsyncRead + Unpin), mut to: impl Write) {
    use tokio::io::AsyncReadExt;
    let mut buffer = [0u8; 4096];
    while let Ok(n) = from.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        // Nobody reading our output is no reason to stop the supervisor's start.
        let _ = to.write_all(&buffer[..n]);
        let _ = to.flush();
    }
}

/// Runs `vigil down`.
pub async fn down(args: DownArgs) -> anyhow::Result<ExitCode> {
    let path = args.stack.path();
    let dir = state::dir_for(path);
    let registry = AgentRegistry::new(&args.agent);
    let results = vigil_up::down::down(&dir, &registry, |r| {
        if let Some(text) = r.deregistered.as_ref().and_then(|o| o.describe()) {
            println!("{:<24} {text}", r.name);
        }
        println!("{:<24} {}", r.name, r.stopped.as_str());
    })
    .await
    .with_context(|| format!("cannot stop {}", path.display()))?;
    if results.is_empty() {
        println!("{}: nothing is running", path.display());
    }
    let stuck: Vec<&str> = results
        .iter()
        .filter(|r| r.stopped == Stopped::Stuck)
        .map(|r| r.name.as_str())
        .collect();
    if stuck.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("error: would not stop: {}", stuck.join(", "));
        Ok(ExitCode::FAILURE)
    }
}

/// How the stack is named on a command line: `-f FILE` or `--compose FILE`.
pub fn stack_flag(args: &StackArgs) -> String {
    match &args.compose {
        Some(file) => format!("--compose {}", file.display()),
        None => format!("-f {}", args.file.display()),
    }
}

/// A command whose program is `vigil` runs this very binary, so a stack file can use
/// `vigil fake-service` or `vigil probe` whether or not vigil is on the PATH.
fn run_vigil_as_self(stack: &mut Stack) {
    let Ok(me) = std::env::current_exe() else {
        return;
    };
    for service in &mut stack.services {
        if let Launch::Command(command) = &mut service.launch {
            if command.argv.first().is_some_and(|p| p == "vigil") {
                command.argv[0] = me.display().to_string();
            }
        }
    }
}

fn write_outputs(
    report: &report::Report,
    json: Option<&Path>,
    timeline: Option<&Path>,
) -> anyhow::Result<()> {
    let write = |path: &Path, contents: String| {
        // `--report .vigil/stack.json` works before anything made `.vigil/`.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
    };
    if let Some(path) = json {
        write(path, report.json())?;
    }
    if let Some(path) = timeline {
        write(path, svg::render(report))?;
    }
    Ok(())
}

/// What asked `vigil up` to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StopSignal {
    /// Ctrl-C (SIGINT): exit 130, as interrupted programs do.
    Interrupt,
    /// SIGTERM, which `vigil down` sends.
    Terminate,
}

async fn wait_for_signal() -> StopSignal {
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    match term {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => StopSignal::Interrupt,
                _ = term.recv() => StopSignal::Terminate,
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            StopSignal::Interrupt
        }
    }
}

/// Live progress on a terminal: a board of one line per service redrawn in place — during the
/// start, where each service is; after it, what each is doing (state, health, restarts, what it
/// waits on) — with the latest events below it. Elsewhere (a pipe, a background supervisor's
/// log), one timestamped line per event.
struct Progress {
    tty: bool,
    drawn: usize,
    messages: Vec<String>,
    /// The start is over: the board shows supervision, and events go below it.
    supervising: bool,
}

/// Events kept below the board after the start: the latest ones.
const MESSAGES_SHOWN: usize = 12;

impl Progress {
    fn new(tty: bool) -> Self {
        Progress {
            tty,
            drawn: 0,
            messages: Vec::new(),
            supervising: false,
        }
    }

    fn line(&mut self, text: String) {
        if self.tty {
            self.messages.push(text);
            if self.supervising && self.messages.len() > MESSAGES_SHOWN {
                self.messages.remove(0);
            }
        } else {
            println!("{text}");
        }
    }

    /// Redraws the board in place: `rows`, then the messages.
    fn draw(&mut self, rows: &[String]) {
        let mut out = std::io::stdout().lock();
        if self.drawn > 0 {
            let _ = write!(out, "\x1b[{}A", self.drawn);
        }
        for row in rows.iter().chain(&self.messages) {
            let _ = writeln!(out, "\x1b[2K {row}");
        }
        self.drawn = rows.len() + self.messages.len();
        let _ = out.flush();
    }

    fn draw_start(&mut self, scheduler: &Scheduler, now: Duration) {
        let stack = scheduler.stack();
        let width = name_width(stack);
        let rows: Vec<String> = stack
            .services
            .iter()
            .enumerate()
            .map(|(i, service)| {
                let record = &scheduler.records()[i];
                let phase = scheduler.phase(ServiceId(i));
                let since = match (record.launched, record.settled()) {
                    (Some(l), Some(s)) => s.saturating_sub(l),
                    (Some(l), None) => now.saturating_sub(l),
                    _ => Duration::ZERO,
                };
                let mark = match phase {
                    Phase::Ready | Phase::Completed => "✔",
                    Phase::Failed => "✘",
                    Phase::Waiting => "·",
                    Phase::Starting | Phase::Started => "…",
                };
                format!(
                    "{mark} {:<width$}  {:<9} {:>8}{}",
                    service.name,
                    phase.as_str(),
                    if record.launched.is_some() {
                        fmt_duration(since)
                    } else {
                        String::new()
                    },
                    restarts(record.restarts.len())
                )
            })
            .collect();
        self.draw(&rows);
    }

    /// The start is over: the board is drawn once more as it ended, and what follows is printed
    /// below it.
    fn finish(&mut self, scheduler: &Scheduler) {
        if self.tty {
            let now = scheduler
                .records()
                .iter()
                .filter_map(|r| r.settled())
                .max()
                .unwrap_or_default();
            self.draw_start(scheduler, now);
            self.drawn = 0;
            self.messages.clear();
            self.supervising = true;
        }
    }
}

fn name_width(stack: &Stack) -> usize {
    stack
        .services
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(8)
}

/// `  (2 restarts)`, or nothing.
fn restarts(n: usize) -> String {
    match n {
        0 => String::new(),
        1 => "  (1 restart)".to_owned(),
        n => format!("  ({n} restarts)"),
    }
}

impl Observer for Progress {
    fn event(&mut self, scheduler: &Scheduler, id: ServiceId, at: Duration, event: &Event) {
        if self.tty && !self.supervising {
            return;
        }
        let name = &scheduler.stack().service(id).name;
        let record = &scheduler.records()[id.0];
        let text = match event {
            Event::Started => format!("started (attempt {})", record.attempts),
            Event::Healthy => "healthy".to_owned(),
            Event::Unhealthy { reason } => format!("unhealthy: {reason}"),
            Event::Exited { description } => format!("exited ({description})"),
            Event::Completed => "completed".to_owned(),
            Event::Restarting { reason } => format!("restarting: {reason}"),
            Event::Failed { reason } => format!("FAILED: {reason}"),
        };
        self.line(format!("[{:>7.2}s] {name}: {text}", at.as_secs_f64()));
    }

    fn notice(&mut self, notice: &Notice) {
        let text = match notice {
            Notice::Degraded { message, .. } => format!("DEGRADED: {message}"),
            Notice::Fatal { message } => format!("error: {message}"),
        };
        if self.tty {
            self.messages.push(text);
        } else {
            eprintln!("{text}");
        }
    }

    fn note(&mut self, service: &str, text: &str) {
        self.line(format!("{service}: {text}"));
    }

    fn statuses(&mut self, stack: &Stack, statuses: &[Status]) {
        if !(self.tty && self.supervising) {
            return;
        }
        let width = name_width(stack);
        let rows: Vec<String> = stack
            .services
            .iter()
            .zip(statuses)
            .map(|(service, status)| {
                let mark = match (status.state, status.health) {
                    (_, HealthState::Unhealthy) | (RunState::Failed | RunState::Exited, _) => "✘",
                    _ if !status.waiting_on.is_empty() => "·",
                    (RunState::Running, HealthState::Healthy | HealthState::None)
                    | (RunState::Completed, _) => "✔",
                    _ => "…",
                };
                let waiting = if status.waiting_on.is_empty() {
                    String::new()
                } else {
                    format!("  waiting on {}", status.waiting_on.join(", "))
                };
                format!(
                    "{mark} {:<width$}  {:<10} {:<9}{}{waiting}",
                    service.name,
                    status.shown(),
                    status.health.as_str(),
                    restarts(usize::try_from(status.restarts).unwrap_or(usize::MAX))
                )
            })
            .collect();
        self.draw(&rows);
    }

    fn tick(&mut self, scheduler: &Scheduler, now: Duration) {
        if self.tty && !self.supervising {
            self.draw_start(scheduler, now);
        }
    }

    fn stopped(&mut self, service: &str, stopped: Stopped) {
        println!("{service}: {}", stopped.as_str());
    }
}
