//! `vigil status` and `vigil checks`: read a running agent's endpoints and print them.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use crate::table::{Table, Tone};
use crate::AgentAddr;

async fn fetch(addr: &AgentAddr, path: &str) -> anyhow::Result<Value> {
    let url = format!("{}{path}", addr.addr.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .get(&url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .with_context(|| {
            format!(
                "cannot reach the agent at {} (is it running? set --addr or VIGIL_ADDR)",
                addr.addr
            )
        })?;
    response
        .json::<Value>()
        .await
        .with_context(|| format!("{url} did not answer JSON"))
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `vigil status`: exits 0 when the node is ready (healthy or degraded), 1 otherwise.
pub async fn status(addr: &AgentAddr) -> anyhow::Result<ExitCode> {
    let health = fetch(addr, "/health").await?;
    let status = text(&health["status"]);
    let ready = matches!(status.as_str(), "healthy" | "degraded");
    if addr.json {
        println!("{}", serde_json::to_string_pretty(&health)?);
    } else {
        let summary = fetch(addr, "/health/summary").await?;
        let metrics = &summary["key_metrics"];
        let uptime_ns = health["uptime"].as_u64().unwrap_or(0);
        let mut t = Table::new(vec!["", ""]);
        let mut field = |name: &str, value: String, tone: Tone| {
            t.row(vec![(name.to_owned(), Tone::Plain), (value, tone)]);
        };
        field("node", text(&health["node_id"]), Tone::Plain);
        field("status", status.clone(), Tone::of(&status));
        field("message", text(&health["message"]), Tone::Plain);
        field(
            "score",
            format!("{:.3}", summary["overall_score"].as_f64().unwrap_or(0.0)),
            Tone::Plain,
        );
        field(
            "checks",
            format!(
                "{} registered: {} passing, {} warning, {} critical, {} unknown",
                metrics["checks_registered"],
                metrics["checks_passing"],
                metrics["checks_warning"],
                metrics["checks_critical"],
                metrics["checks_unknown"]
            ),
            Tone::Plain,
        );
        if let Some(components) = summary["component_scores"]
            .as_object()
            .filter(|c| !c.is_empty())
        {
            let line = components
                .iter()
                .map(|(name, score)| format!("{name} {:.2}", score.as_f64().unwrap_or(0.0)))
                .collect::<Vec<_>>()
                .join(", ");
            field("components", line, Tone::Plain);
        }
        field(
            "uptime",
            vigil_health::humanize(Duration::from_secs(uptime_ns / 1_000_000_000)),
            Tone::Plain,
        );
        field("version", text(&health["version"]), Tone::Plain);
        print!("{}", t_without_header(&t));
    }
    Ok(if ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn t_without_header(t: &Table) -> String {
    let colour = std::io::IsTerminal::is_terminal(&std::io::stdout())
        && std::env::var_os("NO_COLOR").is_none();
    t.render(colour)
        .lines()
        .skip(1)
        .map(|l| format!("{l}\n"))
        .collect()
}

/// `vigil checks`: one row per check.
pub async fn checks(addr: &AgentAddr) -> anyhow::Result<ExitCode> {
    let body = fetch(addr, "/health/checks").await?;
    if addr.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new(vec![
        "NAME", "STATE", "CRITICAL", "KIND", "SCORE", "LATENCY", "MESSAGE",
    ]);
    if let Some(checks) = body["checks"].as_object() {
        for (name, c) in checks {
            let state = text(&c["state"]);
            let state = if c["enabled"] == Value::Bool(false) {
                "disabled".to_owned()
            } else {
                state
            };
            let latency = c["latency"]
                .as_u64()
                .map(|ns| format!("{:.1}ms", ns as f64 / 1e6))
                .unwrap_or_default();
            let score = c["score"]
                .as_f64()
                .map(|s| format!("{s:.2}"))
                .unwrap_or_default();
            let critical = if c["critical"] == Value::Bool(true) {
                "yes"
            } else {
                "no"
            };
            let message: String = text(&c["message"])
                .lines()
                .next()
                .unwrap_or_default()
                .chars()
                .take(80)
                .collect();
            t.row(vec![
                (name.clone(), Tone::Plain),
                (state.clone(), Tone::of(&state)),
                (critical.to_owned(), Tone::Plain),
                (text(&c["kind"]), Tone::Plain),
                (score, Tone::Plain),
                (latency, Tone::Plain),
                (message, Tone::Plain),
            ]);
        }
    }
    t.print();
    Ok(ExitCode::SUCCESS)
}

/// `vigil members`: one row per member, this node included.
pub async fn members(addr: &AgentAddr) -> anyhow::Result<ExitCode> {
    let body = fetch(addr, "/v1/members").await?;
    if addr.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new(vec![
        "ID",
        "STATE",
        "HEALTH",
        "SCORE",
        "ROLE",
        "ADDRESS",
        "API",
        "PHI",
        "INCARNATION",
    ]);
    for m in body["members"].as_array().into_iter().flatten() {
        let state = text(&m["state"]);
        let health = text(&m["health"]);
        let phi = m["phiScore"]
            .as_f64()
            .map(|p| format!("{p:.2}"))
            .unwrap_or_default();
        t.row(vec![
            (text(&m["id"]), Tone::Plain),
            (state.clone(), Tone::of(&state)),
            (health.clone(), Tone::of(&health)),
            (text(&m["healthScore"]), Tone::Plain),
            (text(&m["role"]), Tone::Plain),
            (text(&m["address"]), Tone::Plain),
            (text(&m["apiAddress"]), Tone::Plain),
            (phi, Tone::Plain),
            (text(&m["incarnation"]), Tone::Plain),
        ]);
    }
    t.print();
    let quorum = body["hasQuorum"].as_bool().unwrap_or(false);
    println!("quorum: {}", if quorum { "yes" } else { "no" });
    Ok(ExitCode::SUCCESS)
}
