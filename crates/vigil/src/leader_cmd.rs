//! `vigil leader`: who leads the cluster, as a running agent sees it.

use std::process::ExitCode;

use vigil_api::wire;

use crate::client::Agent;
use crate::table::{Table, Tone};
use crate::AgentAddr;

/// A value the agent may not know, `-` then.
fn known(value: Option<String>) -> String {
    value.unwrap_or_else(|| "-".to_owned())
}

/// The leader as a two-column table.
pub fn render(body: &wire::Leader) -> Table {
    let mut t = Table::fields();
    let leader = body.leader_id.as_deref();
    let quorum = body.has_quorum;
    let mut field = |name: &str, value: String, tone: Tone| t.field(name, value, tone);
    field(
        "cluster leader",
        leader
            .unwrap_or("none (election under way or no quorum)")
            .to_owned(),
        if leader.is_some() {
            Tone::Good
        } else {
            Tone::Bad
        },
    );
    field("term", body.term.to_string(), Tone::Plain);
    field("since", known(body.since.clone()), Tone::Plain);
    field("api address", known(body.api_address.clone()), Tone::Plain);
    field(
        "quorum",
        if quorum { "yes" } else { "no" }.to_owned(),
        if quorum { Tone::Good } else { Tone::Bad },
    );
    field("answered by", body.served_by.clone(), Tone::Plain);
    field(
        "staleness",
        body.stale_ms
            .map_or("unknown".to_owned(), |ms| format!("{ms} ms")),
        Tone::Plain,
    );
    t
}

/// `vigil leader`: exits 0 when a leader is known, 1 when there is none or no cluster.
pub async fn run(addr: &AgentAddr) -> anyhow::Result<ExitCode> {
    let agent = Agent::of(addr);
    let raw = agent.get_cluster("/v1/leader").await?;
    let body: wire::Leader = agent.decode("/v1/leader", raw.clone())?;
    if addr.json {
        println!("{}", serde_json::to_string_pretty(&raw)?);
    } else {
        render(&body).print();
    }
    Ok(if body.leader_id.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
