//! `vigil keygen` and `vigil keyring`: make a cluster key, and rotate keys on running agents.
//!
//! Rotation without downtime, on every agent (`--all` walks the members of the agent at `--addr`):
//! `install NEW` (everyone accepts it) → `use NEW` (everyone encrypts with it) → `remove OLD`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::Subcommand;
use reqwest::Method;
use serde_json::json;
use vigil_api::wire;
use vigil_gossip::crypto::Key;

use crate::client::{Agent, Authorized, UNREACHABLE_HINT};
use crate::table::{Table, Tone};

/// How long one agent may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

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
    authorized: Authorized,
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
    let agents = if target.all {
        member_apis(&target.authorized).await?
    } else {
        vec![target
            .authorized
            .agent
            .addr
            .trim_end_matches('/')
            .to_owned()]
    };
    let mut failed = 0;
    let mut table = Table::new(vec!["AGENT", "KEY", "PRIMARY"]);
    for agent in &agents {
        let api = Agent::new(
            agent.clone(),
            target.authorized.token(),
            TIMEOUT,
            UNREACHABLE_HINT,
        );
        let outcome = async {
            let answer = match &key {
                None => api.get("/v1/keyring").await?,
                Some(key) => {
                    let path = format!("/v1/keyring/{op}");
                    let body = wire::KeyRequest { key: key.clone() };
                    api.send_json(Method::POST, &path, &body).await?
                }
            };
            let body = answer.cluster_success()?;
            api.decode::<wire::Keyring>("/v1/keyring", body)
        }
        .await
        .map_err(|e| anyhow::anyhow!("{agent}: {e:#}"));
        match outcome {
            Ok(body) => {
                for k in body.keys {
                    table.row(vec![
                        (agent.clone(), Tone::Plain),
                        (k.fingerprint, Tone::Plain),
                        (if k.primary { "yes" } else { "" }.to_owned(), Tone::Good),
                    ]);
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("vigil keyring: {e:#}");
            }
        }
    }
    if target.authorized.agent.json {
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
/// The API of every alive member the agent at `target` knows, on the scheme of `target`'s
/// (the members of one cluster serve theirs alike).
async fn member_apis(target: &Authorized) -> anyhow::Result<Vec<String>> {
    let addr = &target.agent.addr;
    let agent = Agent::new(addr.clone(), target.token(), TIMEOUT, UNREACHABLE_HINT);
    let members: wire::Members =
        agent.decode("/v1/members", agent.get_cluster("/v1/members").await?)?;
    let scheme = if addr.starts_with("https://") {
        "https"
    } else {
        "http"
    };
    let apis: Vec<String> = members
        .members
        .into_iter()
        .filter(|m| m.state == "alive")
        .filter_map(|m| m.api_address.map(|a| format!("{scheme}://{a}")))
        .collect();
    if apis.is_empty() {
        bail!("{addr} knows no alive member with an API address");
    }
    Ok(apis)
}
