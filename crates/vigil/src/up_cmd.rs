//! `vigil up` and `vigil down`: starting a stack from a stack file or a compose file with live
//! progress and a report, supervising it while attached, and stopping it in reverse dependency
//! order.
//!
//! `vigil up` stays attached after the start, like `docker compose up`: it keeps restarting
//! services per their policy and reporting health changes until Ctrl-C (or `vigil down`, or
//! SIGTERM), then stops everything. `vigil up -d` returns once the stack is up and leaves it
//! running unsupervised; `vigil down` stops it.
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
    /// Return once the stack is up and leave it running unsupervised (`vigil down` stops it).
    #[arg(short, long)]
    detach: bool,
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
    compose: Option<PathBuf>,
    /// The compose project name (default: the compose file's directory name).
    #[arg(long, requires = "compose")]
    project: Option<String>,
}

impl StackArgs {
    fn path(&self) -> &Path {
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
    let mut progress = Progress::new(std::io::stdout().is_terminal());
    let started = up.start(&mut progress, &mut interrupt).await;
    progress.finish(up.scheduler());
    let (outcome, report) = match started {
        Started::Done(outcome, report) => (Some(outcome), report),
        Started::Interrupted(report) => (None, report),
    };
    println!("\n{}", report.table());
    write_outputs(&report, args.report.as_deref(), args.timeline.as_deref())?;

    let code = match outcome {
        Some(Outcome::Up { .. }) if args.detach => {
            up.detach(&mut progress)
                .await
                .context("cannot write the state file")?;
            println!(
                "detached; logs in {}; stop with: vigil down {}",
                state_dir.join("logs").display(),
                stack_flag(&args.stack)
            );
            return Ok(ExitCode::SUCCESS);
        }
        Some(Outcome::Up { .. }) => {
            println!(
                "stack is up; supervising it (Ctrl-C or `vigil down {}` stops it)",
                stack_flag(&args.stack)
            );
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

fn stack_flag(args: &StackArgs) -> String {
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

/// Live progress: a board of one line per service redrawn in place on a terminal, plain log
/// lines otherwise.
struct Progress {
    tty: bool,
    drawn: usize,
    messages: Vec<String>,
}

impl Progress {
    fn new(tty: bool) -> Self {
        Progress {
            tty,
            drawn: 0,
            messages: Vec::new(),
        }
    }

    fn line(&mut self, text: String) {
        if self.tty {
            self.messages.push(text);
        } else {
            println!("{text}");
        }
    }

    fn draw(&mut self, scheduler: &Scheduler, now: Duration) {
        let mut out = std::io::stdout().lock();
        if self.drawn > 0 {
            let _ = write!(out, "\x1b[{}A", self.drawn);
        }
        let stack = scheduler.stack();
        let width = stack
            .services
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(8);
        let mut lines = 0;
        for (i, service) in stack.services.iter().enumerate() {
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
            let restarts = if record.restarts.is_empty() {
                String::new()
            } else {
                format!(
                    "  ({} restart{})",
                    record.restarts.len(),
                    if record.restarts.len() == 1 { "" } else { "s" }
                )
            };
            let _ = writeln!(
                out,
                "\x1b[2K {mark} {:<width$}  {:<9} {:>8}{restarts}",
                service.name,
                phase.as_str(),
                if record.launched.is_some() {
                    fmt_duration(since)
                } else {
                    String::new()
                },
            );
            lines += 1;
        }
        for message in &self.messages {
            let _ = writeln!(out, "\x1b[2K {message}");
            lines += 1;
        }
        self.drawn = lines;
        let _ = out.flush();
    }

    fn finish(&mut self, scheduler: &Scheduler) {
        if self.tty {
            let now = scheduler
                .records()
                .iter()
                .filter_map(|r| r.settled())
                .max()
                .unwrap_or_default();
            self.draw(scheduler, now);
            self.tty = false;
            self.messages.clear();
        }
    }
}

impl Observer for Progress {
    fn event(&mut self, scheduler: &Scheduler, id: ServiceId, at: Duration, event: &Event) {
        if self.tty {
            return;
        }
        let name = &scheduler.stack().service(id).name;
        let record = &scheduler.records()[id.0];
        let text = match event {
            Event::Started => format!("started (attempt {})", record.attempts),
            Event::Healthy => "healthy".to_owned(),
            Event::Completed => "completed".to_owned(),
            Event::Restarting { reason } => format!("restarting: {reason}"),
            Event::Failed { reason } => format!("FAILED: {reason}"),
        };
        println!("[{:>7.2}s] {name}: {text}", at.as_secs_f64());
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

    fn tick(&mut self, scheduler: &Scheduler, now: Duration) {
        if self.tty {
            self.draw(scheduler, now);
        }
    }

    fn stopped(&mut self, service: &str, stopped: Stopped) {
        println!("{service}: {}", stopped.as_str());
    }
}
