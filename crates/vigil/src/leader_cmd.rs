//! `vigil leader`: who leads the cluster, as a running agent sees it.

use std::process::ExitCode;

use serde_json::Value;

use crate::client::Agent;
use crate::table::{Table, Tone};
use crate::AgentAddr;

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

/// The leader as a two-column table.
pub fn render(body: &Value) -> Table {
    let mut t = Table::fields();
    let leader = body["leader_id"].as_str();
    let quorum = body["has_quorum"].as_bool().unwrap_or(false);
    let mut field = |name: &str, value: String, tone: Tone| t.field(name, value, tone);
    field(
        "leader",
        leader
            .unwrap_or("none (election under way or no quorum)")
            .to_owned(),
        if leader.is_some() {
            Tone::Good
        } else {
            Tone::Bad
        },
    );
    field("term", text(&body["term"]), Tone::Plain);
    field("since", text(&body["since"]), Tone::Plain);
    field("api address", text(&body["api_address"]), Tone::Plain);
    field(
        "quorum",
        if quorum { "yes" } else { "no" }.to_owned(),
        if quorum { Tone::Good } else { Tone::Bad },
    );
    field("answered by", text(&body["served_by"]), Tone::Plain);
    field(
        "staleness",
        body["stale_ms"]
            .as_u64()
            .map_or("unknown".to_owned(), |ms| format!("{ms} ms")),
        Tone::Plain,
    );
    t
}

/// `vigil leader`: exits 0 when a leader is known, 1 when there is none or no cluster.
pub async fn run(addr: &AgentAddr) -> anyhow::Result<ExitCode> {
    let body = Agent::of(addr).get_cluster("/v1/leader").await?;
    if addr.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        render(&body).print();
    }
    Ok(if body["leader_id"].is_string() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
