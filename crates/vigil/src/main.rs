//! The `vigil` command: runs an agent, a local demo, one-shot probes, and reads running agents.

#![deny(unsafe_code)]

mod agent;
mod allocator;
mod client;
mod completions_cmd;
mod config;
mod console;
mod demo;
mod demo_heads;
mod elections_cmd;
mod fake_service;
mod holder;
mod keyring_cmd;
mod leader_cmd;
mod log_filter;
mod logs_cmd;
mod man_cmd;
mod neighbors_cmd;
mod probe_cmd;
mod ps_cmd;
mod reload;
mod role_cmd;
mod service_manager;
mod service_registration;
mod services_cmd;
mod snapshot_cmd;
#[cfg(target_os = "linux")]
mod startup_code;
mod stop_signal;
mod table;
mod up_cmd;
mod up_register;
mod voters_cmd;
mod watch_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

/// vigil keeps watch over distributed systems: health checks and probe endpoints, gossip
/// clusters with an elected leader, one-shot probes, and stacks started in dependency order
/// (vigil up).
#[derive(Parser)]
#[command(name = "vigil", version, about, propagate_version = true)]
struct Cli {
    /// PEM file of the CA that signed the agent's certificate, for an agent whose API is on
    /// https:// (trusted besides the system's roots; for `vigil probe https://…` too).
    #[arg(long, global = true, env = "VIGIL_CACERT", value_name = "PEM")]
    ca_cert: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node from a TOML config: checks, probe endpoints, API.
    Agent {
        /// The config file.
        #[arg(short, long, default_value = "vigil.toml")]
        config: PathBuf,
    },
    /// Run a local demo cluster (three nodes by default) with sample checks until Ctrl-C.
    Demo(demo::DemoArgs),
    /// Run one probe and exit 0 when healthy (usable as a Docker HEALTHCHECK without a shell).
    Probe(probe_cmd::ProbeArgs),
    /// Show the status of a running agent.
    Status(AgentAddr),
    /// List the checks of a running agent.
    Checks(AgentAddr),
    /// List the cluster members a running agent knows, with their state and health.
    Members(AgentAddr),
    /// List the neighbours a running agent watches; exit 1 when one is unavailable.
    Neighbors(AgentAddr),
    /// List service instances with their state and checks, as a running agent sees them; with
    /// NAME, exit 1 when none of its instances passes.
    Services(services_cmd::ServicesArgs),
    /// Show who leads the cluster, as a running agent sees it; exit 1 when nobody does.
    Leader(AgentAddr),
    /// Run a command only while this process leads an election, with VIGIL_FENCING_TOKEN set;
    /// stop it the moment leadership is lost, and stand again.
    Elect(role_cmd::ElectArgs),
    /// Run a command only while this process holds a lock, with VIGIL_FENCING_TOKEN set.
    Lock(role_cmd::LockArgs),
    /// List the elections of users' services: leader, fencing token, since, candidates.
    Elections(AgentAddr),
    /// List the locks of users' services: holders, fencing tokens, who waits.
    Locks(AgentAddr),
    /// Redraw a compact cluster view of a running agent until Ctrl-C.
    Watch(watch_cmd::WatchArgs),
    /// An interactive prompt against a running agent: register, status, leader, members, services.
    Console(console::ConsoleArgs),
    /// Start a stack (stack file or compose file) as fast as its dependency graph allows.
    Up(up_cmd::UpArgs),
    /// Stop a stack started by `vigil up`, in reverse dependency order.
    Down(up_cmd::DownArgs),
    /// Show what each service of a stack started by `vigil up` is doing.
    Ps(ps_cmd::PsArgs),
    /// Print (or follow) a service's output, for a stack started by `vigil up`.
    Logs(logs_cmd::LogsArgs),
    /// A small stand-in service that turns healthy after a delay (for examples and tests).
    FakeService(fake_service::FakeServiceArgs),
    /// Print a new random cluster key (base64) for `[cluster] key` or a key file.
    Keygen,
    /// Rotate cluster keys on running agents: install, use, remove, list.
    Keyring {
        #[command(subcommand)]
        command: keyring_cmd::KeyringCommand,
    },
    /// Back up the cluster's registry to a file, restore it, or inspect a backup.
    Snapshot {
        #[command(subcommand)]
        command: snapshot_cmd::SnapshotCommand,
    },
    /// List the voters of the cluster's Raft group, or add or remove one while it runs.
    Voters {
        #[command(subcommand)]
        command: voters_cmd::VotersCommand,
    },
    /// Make a running agent read its config file again: checks change at once, with the
    /// history of unchanged ones kept; a file with errors changes nothing (as SIGHUP does).
    Reload(client::Authorized),
    /// Print the shell completion script for bash, zsh or fish.
    Completions(completions_cmd::CompletionsArgs),
    /// Write the manual pages (one per subcommand) into a directory, or print vigil(1).
    Man(man_cmd::ManArgs),
    /// Work with config files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a config; print every error as file:line:column and exit 1 if there is one.
    Check {
        /// The config file.
        #[arg(short, long, default_value = "vigil.toml")]
        config: PathBuf,
    },
}

/// Where a running agent listens, and how to print what it says.
#[derive(Args)]
pub struct AgentAddr {
    /// Base URL of the agent's API.
    #[arg(long, env = "VIGIL_ADDR", default_value = "http://127.0.0.1:8081")]
    addr: String,
    /// The agent's API token; for commands that only read, its read token does too (needed
    /// when the agent sets `read_token`).
    #[arg(long, env = "VIGIL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print the agent's JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(error) => match probe_cmd::usage_error_code(&error, &args) {
            Some(code) => {
                let _ = error.print();
                return code;
            }
            None => error.exit(),
        },
    };
    let log = log_filter::LogFilter::install(match cli.command {
        // The banner is what a demo user reads: only what needs their attention comes after
        // it. openraft's errors there are about voters not started yet.
        Command::Demo(_) => "warn,openraft=off",
        _ => DEFAULT_LOG,
    });
    if let Some(ca) = &cli.ca_cert {
        if let Err(e) = client::trust(ca) {
            eprintln!("vigil: --ca-cert: {e:#}");
            return ExitCode::FAILURE;
        }
    }
    allocator::tune();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("vigil: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Agent { config: path } => {
                let stop = stop_signal::StopSignal::install()
                    .context("cannot install the SIGTERM and SIGINT handlers")?;
                let config = match config::load(&path) {
                    Ok(config) => config,
                    Err(errors) => {
                        eprintln!("{errors}");
                        return Ok(ExitCode::FAILURE);
                    }
                };
                let extras = agent::Extras {
                    config_path: Some(path),
                    log: Some(log),
                    service_manager: service_manager::ServiceManager::from_env(),
                    ..agent::Extras::default()
                };
                #[cfg(target_os = "linux")]
                startup_code::hand_back_when_settled();
                agent::run(config, stop, extras).await
            }
            Command::Demo(args) => {
                let stop = stop_signal::StopSignal::install()
                    .context("cannot install the SIGTERM and SIGINT handlers")?;
                demo::run(args, stop).await
            }
            Command::Probe(args) => Ok(probe_cmd::run(args.trusting(cli.ca_cert)).await),
            Command::Status(addr) => client::status(&addr).await,
            Command::Checks(addr) => client::checks(&addr).await,
            Command::Members(addr) => client::members(&addr).await,
            Command::Neighbors(addr) => neighbors_cmd::run(&addr).await,
            Command::Leader(addr) => leader_cmd::run(&addr).await,
            Command::Elect(args) => {
                let stop = stop_signal::StopSignal::install()
                    .context("cannot install the SIGTERM and SIGINT handlers")?;
                role_cmd::elect(args, stop).await
            }
            Command::Lock(args) => {
                let stop = stop_signal::StopSignal::install()
                    .context("cannot install the SIGTERM and SIGINT handlers")?;
                role_cmd::lock(args, stop).await
            }
            Command::Elections(addr) => {
                elections_cmd::run(&addr, elections_cmd::Listing::Elections).await
            }
            Command::Locks(addr) => elections_cmd::run(&addr, elections_cmd::Listing::Locks).await,
            Command::Services(args) => services_cmd::run(&args).await,
            Command::Watch(args) => watch_cmd::run(args).await,
            Command::Console(args) => console::run(args).await,
            Command::Up(args) => up_cmd::up(args).await,
            Command::Down(args) => up_cmd::down(args).await,
            Command::Ps(args) => ps_cmd::run(&args),
            Command::Logs(args) => logs_cmd::run(&args).await,
            Command::FakeService(args) => fake_service::run(args).await,
            Command::Keygen => Ok(keyring_cmd::keygen()),
            Command::Keyring { command } => keyring_cmd::run(command).await,
            Command::Voters { command } => voters_cmd::run(command).await,
            Command::Snapshot { command } => snapshot_cmd::run(command).await,
            Command::Reload(target) => client::reload(&target).await,
            Command::Completions(args) => Ok(completions_cmd::run(&args)),
            Command::Man(args) => man_cmd::run(&args),
            Command::Config {
                command: ConfigCommand::Check { config },
            } => Ok(check_config(&config)),
        }
    });
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vigil: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(path: &std::path::Path) -> ExitCode {
    match config::load(path) {
        Ok(config) => {
            let checks = match config.checks.len() {
                1 => "1 check".to_owned(),
                n => format!("{n} checks"),
            };
            println!("{}: ok ({checks})", path.display());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::FAILURE
        }
    }
}

/// The log filter unless `VIGIL_LOG` sets one. openraft's warnings are its own chatter during
/// elections (a vote that arrived late); vigil logs what matters of Raft itself.
const DEFAULT_LOG: &str = "info,openraft=error";
