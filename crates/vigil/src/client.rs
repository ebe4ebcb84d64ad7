//! `vigil status` and `vigil checks`: read a running agent's endpoints and print them; and
//! [`Agent`], the HTTP client every command that talks to an agent goes through.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::table::{Table, Tone};
use crate::AgentAddr;

/// What to suggest when the agent at `--addr` cannot be reached.
pub const UNREACHABLE_HINT: &str = "is it running? set --addr or VIGIL_ADDR";

/// A running agent's HTTP API, as a command reaches it.
pub struct Agent {
    /// Base URL as the user gave it; error messages name it so.
    base: String,
    /// Sent as `Authorization: Bearer TOKEN` when set.
    token: Option<String>,
    /// How long one request may take.
    timeout: Duration,
    /// What to suggest when the agent cannot be reached.
    hint: &'static str,
    client: reqwest::Client,
}

/// What an agent answered: its status and its JSON body.
pub struct Answer {
    /// The URL asked, for messages.
    pub url: String,
    /// The HTTP status.
    pub status: StatusCode,
    /// The JSON body.
    pub body: Value,
}

impl Agent {
    /// The agent at `--addr` of the read-only commands: no token, 5 s per request.
    pub fn of(addr: &AgentAddr) -> Agent {
        Agent::new(
            addr.addr.clone(),
            None,
            Duration::from_secs(5),
            UNREACHABLE_HINT,
        )
    }

    /// The agent at `base` (e.g. `http://127.0.0.1:8081`); `hint` is what to suggest when it
    /// cannot be reached.
    pub fn new(
        base: String,
        token: Option<String>,
        timeout: Duration,
        hint: &'static str,
    ) -> Agent {
        Agent {
            base,
            token,
            timeout,
            hint,
            client: reqwest::Client::new(),
        }
    }

    /// Base URL as the user gave it.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request with an optional JSON body; fails when the agent cannot be reached or
    /// does not answer JSON, whatever the status.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Answer> {
        let url = format!("{}{path}", self.base.trim_end_matches('/'));
        let mut request = self.client.request(method, &url).timeout(self.timeout);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the agent at {} ({})", self.base, self.hint))?;
        let status = response.status();
        let body = response
            .json::<Value>()
            .await
            .with_context(|| format!("{url} did not answer JSON"))?;
        Ok(Answer { url, status, body })
    }

    /// `GET path`; see [`Agent::send`].
    pub async fn get(&self, path: &str) -> anyhow::Result<Answer> {
        self.send(Method::GET, path, None).await
    }
}

impl Answer {
    /// Why the agent refused: the `error` of its body.
    pub fn reason(&self) -> &str {
        self.body["error"].as_str().unwrap_or("no reason given")
    }

    /// The body of a successful answer; any other status is an error naming the URL, the status
    /// and the agent's reason.
    pub fn success(self) -> anyhow::Result<Value> {
        if !self.status.is_success() {
            anyhow::bail!("{} answered {}: {}", self.url, self.status, self.reason());
        }
        Ok(self.body)
    }
}

/// `GET path` of the agent at `--addr`, whatever the status.
async fn fetch(addr: &AgentAddr, path: &str) -> anyhow::Result<Value> {
    Ok(Agent::of(addr).get(path).await?.body)
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
    let agent = Agent::of(addr);
    let body = agent.get("/v1/members").await?.body;
    if addr.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(ExitCode::SUCCESS);
    }
    // The leader is marked in the role column; without one (no quorum, no voters, an agent
    // that cannot say) the table is still worth printing.
    let leader = agent
        .get("/v1/leader")
        .await
        .ok()
        .and_then(|answer| answer.success().ok())
        .map(|body| text(&body["leader_id"]));
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
        let id = text(&m["id"]);
        let mut role = text(&m["role"]);
        if leader.as_deref() == Some(id.as_str()) {
            role.push_str(" (leader)");
        }
        t.row(vec![
            (id, Tone::Plain),
            (state.clone(), Tone::of(&state)),
            (health.clone(), Tone::of(&health)),
            (text(&m["healthScore"]), Tone::Plain),
            (role, Tone::Plain),
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
