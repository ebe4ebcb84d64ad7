//! `vigil console`: an interactive prompt against a running agent — register services, and
//! look at status, the leader, members and services — with line editing and a history kept
//! in `~/.vigil_history`. Reads commands from a pipe as well, one per line, so scripts and
//! tests can drive it.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use reqwest::Method;
use rustyline::error::ReadlineError;
use rustyline::DefaultEditor;
use serde_json::Value;
use vigil_api::wire;

use crate::client::{members_view, status_view, Agent, Answer};
use crate::table::colour_enabled;

/// Options of `vigil console`.
#[derive(Args)]
pub struct ConsoleArgs {
    /// Base URL of the agent's API.
    #[arg(long, env = "VIGIL_ADDR", default_value = "http://127.0.0.1:8081")]
    addr: String,
    /// API token for `register` and `deregister`.
    #[arg(long, env = "VIGIL_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

const REGISTER_USAGE: &str = "register NAME ADDR PORT [ephemeral] [check tcp|none]";

const HELP: &str = "\
commands:
  register NAME ADDR PORT [ephemeral] [check tcp|none]
                                        register a service instance (id ADDR:PORT) on this node,
                                        checked over TCP every 10s unless `check none`
  deregister NAME ID                    remove a service instance
  status                                this node's health
  leader                                who leads the cluster (among vigil's voters)
  leader NAME                           who leads election NAME of your services, with its token
  elections                             every election: leader, token, since, candidates
  members                               the cluster's members
  services                              the registered services
  help                                  this text
  quit                                  leave (or Ctrl-D)";

/// One console talking to one agent.
struct Console {
    agent: Agent,
}

impl Console {
    /// The body of an answer of a cluster endpoint; a status other than success is an error with
    /// the agent's reason, and a refused token says how to give one.
    fn checked(answer: Answer) -> anyhow::Result<Value> {
        if answer.status == reqwest::StatusCode::UNAUTHORIZED {
            anyhow::bail!(
                "{}: {} (give the agent's API token with --token or VIGIL_TOKEN)",
                answer.status,
                answer.reason()
            );
        }
        answer.cluster_success()
    }

    /// Runs one command line; `Ok(false)` means quit.
    async fn run(&self, line: &str) -> anyhow::Result<bool> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [] => {}
            ["quit" | "exit"] => return Ok(false),
            ["help" | "?"] => println!("{HELP}"),
            ["register", name, addr, port, rest @ ..] => {
                let port: u16 = port
                    .parse()
                    .ok()
                    .filter(|p| *p > 0)
                    .with_context(|| format!("PORT must be 1 to 65535, not {port:?}"))?;
                let (ephemeral, rest) = match rest {
                    ["ephemeral", rest @ ..] => (true, rest),
                    rest => (false, rest),
                };
                // No `checks` key: the agent checks ADDR:PORT over TCP.
                let checks = match rest {
                    [] | ["check", "tcp"] => None,
                    ["check", "none"] => Some(Vec::new()),
                    _ => anyhow::bail!("usage: {REGISTER_USAGE}"),
                };
                let body = wire::Registration {
                    name: (*name).to_owned(),
                    id: format!("{addr}:{port}"),
                    address: (*addr).to_owned(),
                    port,
                    tags: Vec::new(),
                    node: None,
                    ephemeral,
                    checks,
                    deregister_critical_after: None,
                };
                let path = "/v1/services";
                let answer = self.agent.send_json(Method::POST, path, &body).await?;
                let r = self
                    .agent
                    .decode::<wire::Registered>(path, Self::checked(answer)?)?
                    .registered;
                println!("registered {} instance {} on node {}", r.name, r.id, r.node);
            }
            ["register", ..] => anyhow::bail!("usage: {REGISTER_USAGE}"),
            ["deregister", name, id] => {
                let path = format!("/v1/services/{name}/{id}");
                Self::checked(self.agent.send(Method::DELETE, &path).await?)?;
                println!("deregistered {name} instance {id}");
            }
            ["deregister", ..] => anyhow::bail!("usage: deregister NAME ID"),
            ["status"] => status_view(&self.agent).await?.table.print(),
            ["leader"] => {
                let body = self.agent.get_cluster("/v1/leader").await?;
                crate::leader_cmd::render(&self.agent.decode("/v1/leader", body)?).print();
            }
            ["leader", name] => {
                let path = format!("/v1/elections/{name}");
                let answer = self.agent.get(&path).await?;
                let body: wire::RoleBody = self.agent.decode(&path, Self::checked(answer)?)?;
                crate::elections_cmd::table(&[body]).print();
            }
            ["elections"] => {
                let body = self.agent.get_cluster("/v1/elections").await?;
                let body: wire::RoleList = self.agent.decode("/v1/elections", body)?;
                if body.roles.is_empty() {
                    println!("{}", crate::elections_cmd::Listing::Elections.none());
                } else {
                    crate::elections_cmd::table(&body.roles).print();
                }
            }
            ["members"] => print!(
                "{}",
                members_view(&self.agent, colour_enabled()).await?.text
            ),
            ["services"] => {
                let body = self.agent.get_cluster("/v1/services").await?;
                let body: wire::Services = self.agent.decode("/v1/services", body)?;
                if body.services.is_empty() {
                    println!("no services registered");
                } else {
                    let services: Vec<_> = body.services.into_iter().collect();
                    crate::services_cmd::table(&services).print();
                }
            }
            [other, ..] => anyhow::bail!("unknown command {other:?}: type `help` for the list"),
        }
        Ok(true)
    }
}

fn history_file() -> Option<std::path::PathBuf> {
    std::env::var_os("HOME").map(|home| std::path::PathBuf::from(home).join(".vigil_history"))
}

/// Runs the prompt until `quit` or end of input. Exits 1 if any command failed, so a piped
/// script notices.
pub async fn run(args: ConsoleArgs) -> anyhow::Result<ExitCode> {
    let console = Console {
        agent: Agent::new(
            args.addr.trim_end_matches('/').to_owned(),
            args.token,
            Duration::from_secs(10),
            "is it running?",
        ),
    };
    let mut editor = DefaultEditor::new().context("cannot open the terminal")?;
    let history = history_file();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    println!(
        "vigil console on {} — type `help` for commands",
        console.agent.base()
    );
    if !console.agent.has_token() {
        println!("no API token: `register` and `deregister` need --token or VIGIL_TOKEN");
    }
    let mut failed = false;
    loop {
        let line = match editor.readline("vigil> ") {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e).context("reading the command line"),
        };
        let line = line.trim();
        if !line.is_empty() {
            let _ = editor.add_history_entry(line);
        }
        match console.run(line).await {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                failed = true;
                eprintln!("error: {e:#}");
            }
        }
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
