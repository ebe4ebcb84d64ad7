//! `vigil neighbors`: the neighbours a running agent watches, one row each.

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
    let answer = Agent::of(addr).get("/v1/neighbors").await?;
    if answer.status == reqwest::StatusCode::NOT_FOUND {
        println!("no neighbours configured (add [[neighbors]] tables to the agent's config)");
        return Ok(ExitCode::SUCCESS);
    }
    let body = answer.success()?;
    if addr.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
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
        for n in body["neighbors"].as_array().into_iter().flatten() {
            let state = if n["monitored"].as_bool() == Some(false) {
                "not monitored".to_owned()
            } else {
                text(&n["state"])
            };
            let tone = match state.as_str() {
                "unavailable" => Tone::Bad,
                other => Tone::of(other),
            };
            t.row(vec![
                (text(&n["name"]), Tone::Plain),
                (state, tone),
                (text(&n["protocol"]), Tone::Plain),
                (text(&n["address"]), Tone::Plain),
                (text(&n["consecutive_failures"]), Tone::Plain),
                (latency(n["last_latency_seconds"].as_f64()), Tone::Plain),
                (text(&n["last_error"]), Tone::Muted),
            ]);
        }
        t.print();
    }
    let unavailable = body["unavailable"].as_u64().unwrap_or(0);
    Ok(if unavailable == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
