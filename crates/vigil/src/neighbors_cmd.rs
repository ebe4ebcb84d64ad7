//! `vigil neighbors`: the neighbours a running agent watches, one row each.

use std::process::ExitCode;

use vigil_api::wire;

use crate::client::Agent;
use crate::table::{Table, Tone};
use crate::AgentAddr;

/// A latency in seconds for people: `412µs`, `3.1ms`, `1.20s`.
fn latency(seconds: Option<f64>) -> String {
    match seconds {
        None => "-".to_owned(),
        Some(s) if s < 0.001 => format!("{:.0}µs", s * 1e6),
        Some(s) if s < 1.0 => format!("{:.1}ms", s * 1e3),
        Some(s) => format!("{s:.2}s"),
    }
}

/// Prints `/v1/neighbors`; exits 1 when a monitored neighbour is unavailable.
pub async fn run(addr: &AgentAddr) -> anyhow::Result<ExitCode> {
    let agent = Agent::of(addr);
    let answer = agent.get("/v1/neighbors").await?;
    if answer.status == reqwest::StatusCode::NOT_FOUND {
        println!("no neighbours configured (add [[neighbors]] tables to the agent's config)");
        return Ok(ExitCode::SUCCESS);
    }
    let raw = answer.success()?;
    let body: wire::Neighbors = agent.decode("/v1/neighbors", raw.clone())?;
    if addr.json {
        println!("{}", serde_json::to_string_pretty(&raw)?);
    } else {
        let mut t = Table::new(vec![
            "NAME",
            "STATE",
            "PROTOCOL",
            "ADDRESS",
            "FAILURES",
            "LATENCY",
            "LAST ERROR",
        ]);
        for n in body.neighbors {
            let state = if n.monitored {
                n.state
            } else {
                "not monitored".to_owned()
            };
            let tone = match state.as_str() {
                "unavailable" => Tone::Bad,
                other => Tone::of(other),
            };
            t.row(vec![
                (n.name, Tone::Plain),
                (state, tone),
                (n.protocol, Tone::Plain),
                (n.address, Tone::Plain),
                (n.consecutive_failures.to_string(), Tone::Plain),
                (latency(n.last_latency_seconds), Tone::Plain),
                (n.last_error.unwrap_or_else(|| "-".to_owned()), Tone::Muted),
            ]);
        }
        t.print();
    }
    Ok(if body.unavailable == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
