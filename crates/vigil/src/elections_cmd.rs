//! `vigil elections` and `vigil locks`: the elections (or locks) of users' services as a
//! running agent sees them: who holds each, with which fencing token, since when, and who
//! waits. The console's `elections` and `leader NAME` print the same table.

use std::process::ExitCode;

use vigil_api::wire;

use crate::client::Agent;
use crate::table::{Table, Tone};
use crate::AgentAddr;

/// Which of the two lists.
#[derive(Clone, Copy, Debug)]
pub enum Listing {
    /// `/v1/elections`.
    Elections,
    /// `/v1/locks`.
    Locks,
}

impl Listing {
    fn path(self) -> &'static str {
        match self {
            Listing::Elections => "/v1/elections",
            Listing::Locks => "/v1/locks",
        }
    }

    /// What the command prints when there is none.
    pub fn none(self) -> &'static str {
        match self {
            Listing::Elections => "no elections: nobody campaigns",
            Listing::Locks => "no locks: nobody holds or asks for one",
        }
    }
}

/// Prints the list; exits 0.
pub async fn run(addr: &AgentAddr, listing: Listing) -> anyhow::Result<ExitCode> {
    let agent = Agent::of(addr);
    let raw = agent.get_cluster(listing.path()).await?;
    let body: wire::RoleList = agent.decode(listing.path(), raw.clone())?;
    if addr.json {
        println!("{}", serde_json::to_string_pretty(&raw)?);
    } else if body.roles.is_empty() {
        println!("{}", listing.none());
    } else {
        table(&body.roles).print();
    }
    Ok(ExitCode::SUCCESS)
}

/// One row per role: its name, policy, holders with their tokens, since when, and the
/// candidates in the order they would be granted.
pub fn table(roles: &[wire::RoleBody]) -> Table {
    let mut t = Table::new(vec![
        "NAME",
        "POLICY",
        "HOLDER",
        "TOKEN",
        "SINCE",
        "CANDIDATES",
    ]);
    for role in roles {
        let policy = if role.preempt {
            format!("{} (preempt)", role.policy)
        } else {
            role.policy.clone()
        };
        let join = |f: &dyn Fn(&wire::RoleHolder) -> String| {
            role.holders.iter().map(f).collect::<Vec<_>>().join(" ")
        };
        let holders = join(&|h| {
            if h.yielding {
                format!("{} (yielding)", h.id)
            } else {
                h.id.clone()
            }
        });
        let (holder, tone) = if holders.is_empty() {
            ("none".to_owned(), Tone::Bad)
        } else {
            (holders, Tone::Good)
        };
        let candidates: Vec<&str> = role.candidates.iter().map(|c| c.id.as_str()).collect();
        t.row(vec![
            (role.name.clone(), Tone::Plain),
            (policy, Tone::Plain),
            (holder, tone),
            (join(&|h| h.token.to_string()), Tone::Plain),
            (join(&|h| h.since.clone()), Tone::Plain),
            (candidates.join(" "), Tone::Plain),
        ]);
    }
    t
}
