//! `vigil voters list|add|remove`: who votes in the cluster's Raft group, and changing it at run
//! time — to replace a voter's machine, or to remove a dead one with the majority left.

use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use reqwest::Method;
use vigil_api::wire;

use crate::client::{Agent, Authorized, UNREACHABLE_HINT};
use crate::table::{Table, Tone};

/// How long a change may take: the newcomer's catch-up and the commits, passed on twice at most.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(60);

/// What `vigil voters` does.
#[derive(Subcommand)]
pub enum VotersCommand {
    /// List the voters and learners, with how much of the log each holds (when the leader
    /// answers).
    List {
        #[command(flatten)]
        target: Authorized,
    },
    /// Make a running member a voter: it must have started with role = "voter"; it joins as a
    /// learner, catches up, and is promoted.
    Add {
        /// The node id.
        node: String,
        #[command(flatten)]
        target: Authorized,
    },
    /// Take a voter out of the group (dead or alive), as long as the others keep a majority.
    Remove {
        /// The node id.
        node: String,
        #[command(flatten)]
        target: Authorized,
    },
}

/// Runs a `vigil voters` command; exits 1 with the agent's reason when the change did not happen.
pub async fn run(command: VotersCommand) -> anyhow::Result<ExitCode> {
    let (method, path, target) = match command {
        VotersCommand::List { target } => (Method::GET, "/v1/voters".to_owned(), target),
        VotersCommand::Add { node, target } => (Method::POST, voter_path(&node), target),
        VotersCommand::Remove { node, target } => (Method::DELETE, voter_path(&node), target),
    };
    let agent = Agent::new(
        target.agent.addr.clone(),
        target.token(),
        CHANGE_TIMEOUT,
        UNREACHABLE_HINT,
    );
    let answer = agent.send(method, &path).await?;
    if !answer.status.is_success() {
        let reason = answer.reason();
        eprintln!("vigil voters: {reason}");
        return Ok(ExitCode::FAILURE);
    }
    let voters: wire::Voters = agent.decode(&path, answer.body)?;
    if target.agent.json {
        println!("{}", serde_json::to_string_pretty(&voters)?);
    } else {
        print(&voters);
    }
    Ok(ExitCode::SUCCESS)
}

/// `/v1/voters/{node}`, the node id percent-encoded.
fn voter_path(node: &str) -> String {
    let encoded: String = node
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect();
    format!("/v1/voters/{encoded}")
}

fn print(voters: &wire::Voters) {
    let mut table = Table::new(vec!["NODE", "ROLE", "LEADER", "LOG INDEX"]);
    for member in &voters.members {
        let (role, tone) = match member.role {
            wire::GroupRole::Voter => ("voter", Tone::Good),
            wire::GroupRole::Learner => ("learner", Tone::Warn),
        };
        table.row(vec![
            (member.name.clone(), Tone::Plain),
            (role.to_owned(), tone),
            (
                if member.leader { "yes" } else { "" }.to_owned(),
                Tone::Good,
            ),
            (
                member
                    .matched_index
                    .map_or_else(String::new, |i| i.to_string()),
                Tone::Plain,
            ),
        ]);
    }
    table.print();
    if voters.changing {
        println!("a change of the voters is under way");
    }
}
