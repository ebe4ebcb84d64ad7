//! `vigil keygen` and `vigil keyring`: make a cluster key, and rotate keys on running agents.
//!
//! Rotation without downtime, on every agent (`--all` walks the members of the agent at `--addr`):
//! `install NEW` (everyone accepts it) → `use NEW` (everyone encrypts with it) → `remove OLD`.

use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Subcommand;
use serde_json::{json, Value};
use vigil_gossip::crypto::Key;

use crate::table::{Table, Tone};
use crate::AgentAddr;

/// What `vigil keyring` does.
#[derive(Subcommand)]
pub enum KeyringCommand {
    /// List the keys (by fingerprint) of the agent(s).
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Add a key that the agent(s) accept for decryption.
    Install {
        /// The key, base64, as `vigil keygen` prints it.
        key: String,
        #[command(flatten)]
        target: Target,
    },
    /// Make an installed key the one the agent(s) encrypt with.
    Use {
        /// The key, base64.
        key: String,
        #[command(flatten)]
        target: Target,
    },
    /// Remove a key that is not the primary.
    Remove {
        /// The key, base64.
        key: String,
        #[command(flatten)]
        target: Target,
    },
}

/// Which agent(s) a keyring command goes to.
#[derive(clap::Args)]
pub struct Target {
    #[command(flatten)]
    agent: AgentAddr,
    /// The API token of the agents.
    #[arg(long, env = "VIGIL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Apply to every alive member of the cluster, not only the agent at --addr.
    #[arg(long)]
    all: bool,
}

/// `vigil keygen`: prints a new random 256-bit key, base64.
pub fn keygen() -> ExitCode {
    println!("{}", Key::generate(&mut rand::rng()).to_base64());
    ExitCode::SUCCESS
}

/// Runs a keyring command.
pub async fn run(command: KeyringCommand) -> anyhow::Result<ExitCode> {
    let (op, key, target) = match command {
        KeyringCommand::List { target } => ("list", None, target),
        KeyringCommand::Install { key, target } => ("install", Some(key), target),
        KeyringCommand::Use { key, target } => ("use", Some(key), target),
        KeyringCommand::Remove { key, target } => ("remove", Some(key), target),
    };
    if let Some(key) = &key {
        Key::parse(key).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let client = reqwest::Client::new();
    let agents = if target.all {
        member_apis(&client, &target.agent.addr).await?
    } else {
        vec![target.agent.addr.trim_end_matches('/').to_owned()]
    };
    let mut failed = 0;
    let mut table = Table::new(vec!["AGENT", "KEY", "PRIMARY"]);
    for agent in &agents {
        let request = match (&key, op) {
            (None, _) => client.get(format!("{agent}/v1/keyring")),
            (Some(key), op) => client
                .post(format!("{agent}/v1/keyring/{op}"))
                .json(&json!({ "key": key })),
        };
        let request = match &target.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let outcome = async {
            let response = request
                .send()
                .await
                .with_context(|| format!("cannot reach {agent}"))?;
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if !status.is_success() {
                bail!(
                    "{agent}: {}",
                    body["error"].as_str().unwrap_or(status.as_str())
                );
            }
            Ok(body)
        }
        .await;
        match outcome {
            Ok(body) => {
                for k in body["keys"].as_array().into_iter().flatten() {
                    let primary = k["primary"] == Value::Bool(true);
                    table.row(vec![
                        (agent.clone(), Tone::Plain),
                        (
                            k["fingerprint"].as_str().unwrap_or_default().to_owned(),
                            Tone::Plain,
                        ),
                        (if primary { "yes" } else { "" }.to_owned(), Tone::Good),
                    ]);
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("vigil keyring: {e:#}");
            }
        }
    }
    if target.agent.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "agents": agents.len(), "failed": failed }))?
        );
    } else {
        table.print();
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// API addresses of every alive member, as the agent at `addr` knows them.
async fn member_apis(client: &reqwest::Client, addr: &str) -> anyhow::Result<Vec<String>> {
    let url = format!("{}/v1/members", addr.trim_end_matches('/'));
    let members: Value = client
        .get(&url)
        .send()
        .await
        .with_context(|| format!("cannot reach {addr}"))?
        .json()
        .await
        .with_context(|| format!("{url} did not answer JSON"))?;
    let apis: Vec<String> = members["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["state"] == "alive")
        .filter_map(|m| m["apiAddress"].as_str().map(|a| format!("http://{a}")))
        .collect();
    if apis.is_empty() {
        bail!("{addr} knows no alive member with an API address");
    }
    Ok(apis)
}
