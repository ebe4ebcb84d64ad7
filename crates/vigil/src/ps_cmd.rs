//! `vigil ps`: what each service of a stack started by `vigil up` is doing — state, process,
//! uptime, restarts, health — as its supervisor last wrote in the state file, from any directory
//! given the stack file. A supervisor that is gone (killed) is said so, and each service is then
//! shown as its process is found, not as the stale file says.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;
use serde::Serialize;
use vigil_up::process::alive;
use vigil_up::state::{self, ServiceState, StackPhase, State};

use crate::table::{Table, Tone};
use crate::up_cmd::StackArgs;

/// Options of `vigil ps`.
#[derive(Args, Debug)]
pub struct PsArgs {
    #[command(flatten)]
    stack: StackArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// The supervisor as `vigil ps` finds it.
#[derive(Serialize)]
struct Supervisor {
    pid: u32,
    /// `running` or `gone`.
    state: &'static str,
}

/// One service as `vigil ps` shows it.
#[derive(Serialize)]
struct Row {
    name: String,
    state: String,
    pid: Option<u32>,
    uptime_s: Option<u64>,
    restarts: u32,
    health: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    waiting_on: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_exit: Option<String>,
}

/// What `vigil ps --json` prints.
#[derive(Serialize)]
struct Listing {
    stack: String,
    /// `starting`, or `up` once the start ended.
    phase: StackPhase,
    supervisor: Option<Supervisor>,
    services: Vec<Row>,
}

/// Runs `vigil ps`.
pub fn run(args: &PsArgs) -> anyhow::Result<ExitCode> {
    let path = args.stack.path();
    let dir = state::dir_for(path);
    let Some(state) = State::read(&dir)? else {
        if args.json {
            println!(
                "{}",
                serde_json::json!({ "stack": path.display().to_string(), "supervisor": null, "services": [] })
            );
        } else {
            println!("{}: nothing is running", path.display());
        }
        return Ok(ExitCode::SUCCESS);
    };
    let listing = listing(&path.display().to_string(), &state);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&listing)?);
        return Ok(ExitCode::SUCCESS);
    }
    match &listing.supervisor {
        Some(s) if s.state == "gone" => println!(
            "supervisor: gone (pid {}); `vigil down {}` still stops what runs",
            s.pid,
            crate::up_cmd::stack_flag(&args.stack)
        ),
        Some(s) => println!("supervisor: pid {}", s.pid),
        None => println!("supervisor: none"),
    }
    let mut table = Table::new(vec![
        "SERVICE", "STATE", "PID", "UPTIME", "RESTARTS", "HEALTH", "NOTE",
    ]);
    for row in listing.services {
        let note = match (&row.waiting_on[..], &row.last_exit) {
            ([], Some(exit)) => format!("last exit: {exit}"),
            ([], None) => String::new(),
            (on, _) => format!("waiting on {}", on.join(", ")),
        };
        table.row(vec![
            (row.name, Tone::Plain),
            (row.state.clone(), state_tone(&row.state)),
            (
                row.pid.map_or("-".to_owned(), |p| p.to_string()),
                Tone::Plain,
            ),
            (row.uptime_s.map_or("-".to_owned(), uptime), Tone::Plain),
            (row.restarts.to_string(), Tone::Plain),
            (row.health.clone(), Tone::of(&row.health)),
            (note, Tone::Muted),
        ]);
    }
    table.print();
    Ok(ExitCode::SUCCESS)
}

/// `42s`, `3m05s`, `2h07m`, `3d4h`.
fn uptime(secs: u64) -> String {
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86_400);
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{m}m{:02}s", secs % 60),
        3600..86_400 => format!("{h}h{:02}m", m % 60),
        _ => format!("{d}d{}h", h % 24),
    }
}

fn state_tone(state: &str) -> Tone {
    match state {
        "running" | "completed" => Tone::Good,
        "waiting" | "restarting" | "pending" => Tone::Warn,
        "failed" | "exited" | "gone" => Tone::Bad,
        _ => Tone::Plain,
    }
}

fn listing(stack: &str, state: &State) -> Listing {
    let supervisor = state.supervisor.map(|p| Supervisor {
        pid: p.pid,
        state: if alive(p.pid, p.start_time) {
            "running"
        } else {
            "gone"
        },
    });
    let supervised = supervisor.as_ref().is_some_and(|s| s.state == "running");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Listing {
        stack: stack.to_owned(),
        phase: state.phase,
        supervisor,
        services: state
            .services
            .iter()
            .map(|s| row(s, supervised, now))
            .collect(),
    }
}

fn row(service: &ServiceState, supervised: bool, now: u64) -> Row {
    let running = service.process.filter(|p| alive(p.pid, p.start_time));
    let status = &service.status;
    // Without a supervisor the file says what was; only the process says what is.
    let (state, health) = if supervised || service.process.is_none() {
        (status.shown().to_owned(), status.health.as_str().to_owned())
    } else if running.is_some() {
        ("running".to_owned(), "unknown".to_owned())
    } else {
        ("gone".to_owned(), "unknown".to_owned())
    };
    Row {
        name: service.name.clone(),
        state,
        pid: running.map(|p| p.pid),
        uptime_s: running
            .and(service.started_at)
            .map(|at| now.saturating_sub(at)),
        restarts: status.restarts,
        health,
        waiting_on: if supervised {
            status.waiting_on.clone()
        } else {
            Vec::new()
        },
        last_exit: status.last_exit.clone(),
    }
}
