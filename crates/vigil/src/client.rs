//! `vigil status`, `vigil checks` and `vigil members`: read a running agent's endpoints and
//! print them (the console prints the same tables); and [`Agent`], the HTTP client every
//! command that talks to an agent goes through.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use vigil_api::wire;

use crate::table::{Table, Tone};
use crate::AgentAddr;

/// What a command says of an agent that serves no cluster endpoint.
pub const STANDALONE: &str =
    "this node runs alone (no [cluster] section in its config): it has no members, leader, services or cluster keys";

/// A running agent and the API token its writes need (`--addr`, `--token`).
#[derive(clap::Args)]
pub struct Authorized {
    #[command(flatten)]
    pub agent: AgentAddr,
}

impl Authorized {
    /// The token given with `--token` or `VIGIL_TOKEN`.
    pub fn token(&self) -> Option<String> {
        self.agent.token.clone()
    }
}

/// CA certificates this process trusts for `https://` agents besides the system's roots
/// (`--ca-cert`, `VIGIL_CACERT`).
static TRUSTED: std::sync::OnceLock<Vec<reqwest::Certificate>> = std::sync::OnceLock::new();

/// Trusts the CA certificates in the PEM file at `path` for every agent this process reaches.
pub fn trust(path: &std::path::Path) -> anyhow::Result<()> {
    let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem)
        .with_context(|| format!("{} holds no PEM certificate", path.display()))?;
    anyhow::ensure!(
        !certificates.is_empty(),
        "{} holds no PEM certificate",
        path.display()
    );
    let _ = TRUSTED.set(certificates);
    Ok(())
}

/// A client builder for reaching agents: it trusts what [`trust`] was given.
pub fn http_client() -> reqwest::ClientBuilder {
    TRUSTED
        .get()
        .into_iter()
        .flatten()
        .fold(reqwest::Client::builder(), |builder, certificate| {
            builder.add_root_certificate(certificate.clone())
        })
}

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
    /// The agent at `--addr` of the read-only commands, with the token given: 5 s per request.
    pub fn of(addr: &AgentAddr) -> Agent {
        Agent::new(
            addr.addr.clone(),
            addr.token.clone(),
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
            // Only a broken TLS backend fails to build; the requests then say so.
            client: http_client().build().unwrap_or_default(),
        }
    }

    /// Base URL as the user gave it.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET path` as a stream of bytes with no time limit, with the token: a response that
    /// lasts as long as the connection.
    pub async fn stream(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        let url = format!("{}{path}", self.base.trim_end_matches('/'));
        let mut request = self.client.get(&url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the agent at {} ({})", self.base, self.hint))?;
        if !response.status().is_success() {
            let status = response.status();
            let reason = response
                .json::<wire::ErrorBody>()
                .await
                .map_or_else(|_| "no reason given".to_owned(), |e| e.error);
            anyhow::bail!("{url} answered {status}: {reason}");
        }
        Ok(response)
    }

    /// Whether requests carry a token.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// Sends a request with an optional JSON body; fails when the agent cannot be reached or
    /// does not answer JSON, whatever the status.
    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Answer> {
        self.send_within(method, path, body, self.timeout).await
    }

    /// Sends a request with an optional JSON body that may take up to `timeout` (a blocking
    /// query); see [`Agent::request`].
    pub async fn send_within(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        timeout: Duration,
    ) -> anyhow::Result<Answer> {
        let url = format!("{}{path}", self.base.trim_end_matches('/'));
        let mut request = self.client.request(method, &url).timeout(timeout);
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

    /// Sends `body` as raw bytes (when given) and returns the answer's bytes when it succeeds;
    /// any other status is an error naming the URL, the status and the agent's reason.
    pub async fn send_bytes(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<Vec<u8>> {
        let url = format!("{}{path}", self.base.trim_end_matches('/'));
        let mut request = self.client.request(method, &url).timeout(self.timeout);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the agent at {} ({})", self.base, self.hint))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("{url} did not answer whole"))?;
        if !status.is_success() {
            let reason = serde_json::from_slice::<wire::ErrorBody>(&bytes)
                .map_or_else(|_| "no reason given".to_owned(), |e| e.error);
            anyhow::bail!("{url} answered {status}: {reason}");
        }
        Ok(bytes.to_vec())
    }

    /// Sends a request without a body; see [`Agent::request`].
    pub async fn send(&self, method: Method, path: &str) -> anyhow::Result<Answer> {
        self.request(method, path, None).await
    }

    /// Sends a request with `body` as JSON; see [`Agent::request`].
    pub async fn send_json(
        &self,
        method: Method,
        path: &str,
        body: &impl Serialize,
    ) -> anyhow::Result<Answer> {
        let body = serde_json::to_value(body).context("encoding the request body")?;
        self.request(method, path, Some(body)).await
    }

    /// `GET path`; see [`Agent::send`].
    pub async fn get(&self, path: &str) -> anyhow::Result<Answer> {
        self.send(Method::GET, path).await
    }

    /// `GET path` of a cluster endpoint (`/v1/members`, `/v1/leader`, …): its body when it
    /// succeeds; [`STANDALONE`] as the error when the agent serves no cluster.
    pub async fn get_cluster(&self, path: &str) -> anyhow::Result<Value> {
        self.get(path).await?.cluster_success()
    }

    /// `body`, an answer of `path`, read as the wire type `T`.
    pub fn decode<T: DeserializeOwned>(&self, path: &str, body: Value) -> anyhow::Result<T> {
        serde_json::from_value(body)
            .with_context(|| format!("{}{path} answered an unexpected body", self.base))
    }
}

impl Answer {
    /// Why the agent refused: the `error` of its body.
    pub fn reason(&self) -> String {
        wire::ErrorBody::deserialize(&self.body)
            .map_or_else(|_| "no reason given".to_owned(), |e| e.error)
    }

    /// The body of a successful answer; any other status is an error naming the URL, the status
    /// and the agent's reason.
    pub fn success(self) -> anyhow::Result<Value> {
        if !self.status.is_success() {
            anyhow::bail!("{} answered {}: {}", self.url, self.status, self.reason());
        }
        Ok(self.body)
    }

    /// [`Answer::success`] of a cluster endpoint: [`STANDALONE`] as the error when the agent
    /// serves no cluster.
    pub fn cluster_success(self) -> anyhow::Result<Value> {
        if self.status == StatusCode::NOT_FOUND && self.reason().starts_with("no endpoint") {
            anyhow::bail!(STANDALONE);
        }
        self.success()
    }
}

/// A node's status as `vigil status` and the console's `status` show it.
pub struct StatusView {
    /// `GET /health` as the agent answered it.
    pub raw: Value,
    /// Whether the node is ready: healthy or degraded.
    pub ready: bool,
    /// The fields as a table.
    pub table: Table,
}

/// Reads `/health` and `/health/summary` of `agent`.
pub async fn status_view(agent: &Agent) -> anyhow::Result<StatusView> {
    let raw = agent.get("/health").await?.body;
    let health: wire::Health = agent.decode("/health", raw.clone())?;
    let summary: wire::Summary =
        agent.decode("/health/summary", agent.get("/health/summary").await?.body)?;
    let (health, uptime) = (health.head, health.uptime);
    let ready = health.status.is_ready();
    let metrics = &summary.key_metrics;
    let mut t = Table::fields();
    t.field("node", health.node_id, Tone::Plain);
    let status = health.status.as_str();
    t.field("status", status.to_owned(), Tone::of(status));
    t.field("message", health.message, Tone::Plain);
    t.field(
        "score",
        format!("{:.3}", summary.overall_score),
        Tone::Plain,
    );
    t.field(
        "checks",
        format!(
            "{} registered: {} passing, {} warning, {} critical, {} unknown",
            metrics.checks_registered,
            metrics.checks_passing,
            metrics.checks_warning,
            metrics.checks_critical,
            metrics.checks_unknown
        ),
        Tone::Plain,
    );
    if !summary.component_scores.is_empty() {
        let line = summary
            .component_scores
            .iter()
            .map(|(name, score)| format!("{name} {score:.2}"))
            .collect::<Vec<_>>()
            .join(", ");
        t.field("components", line, Tone::Plain);
    }
    t.field(
        "uptime",
        vigil_health::humanize(Duration::from_secs(uptime / 1_000_000_000)),
        Tone::Plain,
    );
    t.field("version", health.version, Tone::Plain);
    Ok(StatusView {
        raw,
        ready,
        table: t,
    })
}

/// `vigil status`: exits 0 when the node is ready (healthy or degraded), 1 otherwise.
pub async fn status(addr: &AgentAddr) -> anyhow::Result<ExitCode> {
    let view = status_view(&Agent::of(addr)).await?;
    if addr.json {
        println!("{}", serde_json::to_string_pretty(&view.raw)?);
    } else {
        view.table.print();
    }
    Ok(if view.ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `vigil checks`: one row per check; the message is cut to the terminal's width.
pub async fn checks(addr: &AgentAddr) -> anyhow::Result<ExitCode> {
    let agent = Agent::of(addr);
    let body = agent.get("/health/checks").await?.body;
    if addr.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(ExitCode::SUCCESS);
    }
    let body: wire::Checks = agent.decode("/health/checks", body)?;
    let mut t = Table::new(vec![
        "NAME", "STATE", "CRITICAL", "KIND", "SCORE", "LATENCY", "MESSAGE",
    ]);
    for (name, c) in body.checks {
        let state = if c.enabled {
            c.state.as_str()
        } else {
            "disabled"
        };
        let message = c.message.lines().next().unwrap_or_default().to_owned();
        t.row(vec![
            (name, Tone::Plain),
            (state.to_owned(), Tone::of(state)),
            (
                if c.critical { "yes" } else { "no" }.to_owned(),
                Tone::Plain,
            ),
            (c.kind.into_owned(), Tone::Plain),
            (score(c.score), Tone::Plain),
            (latency(c.latency), Tone::Plain),
            (message, Tone::Plain),
        ]);
    }
    if let Some(width) = crate::table::output_width() {
        t.fit_last_column(width);
    }
    t.print();
    Ok(ExitCode::SUCCESS)
}

/// A check's score, two decimals; blank without one.
pub fn score(score: Option<f64>) -> String {
    score.map(|s| format!("{s:.2}")).unwrap_or_default()
}

/// A check's latency in nanoseconds, as milliseconds; blank without one.
pub fn latency(nanos: Option<u64>) -> String {
    nanos
        .map(|ns| format!("{:.1}ms", ns as f64 / 1e6))
        .unwrap_or_default()
}

/// What stands for a value that means nothing any more: the health of a dead member.
pub const NONE: &str = "–";

/// How the tables show a member of `GET /v1/members`.
pub trait MemberCells {
    /// Whether it is gone (`dead` or `left`): what it last gossiped of its health is stale.
    fn is_gone(&self) -> bool;
    /// Its state, coloured.
    fn state_cell(&self) -> (String, Tone);
    /// Its health, coloured; [`NONE`] when it is gone.
    fn health_cell(&self) -> (String, Tone);
    /// Its score from 0 to 1, as the dashboard and `vigil status` print scores; [`NONE`] when
    /// it is gone.
    fn score_cell(&self) -> (String, Tone);
    /// Its role, with ` (leader)` when it leads.
    fn role_cell(&self, leader: Option<&str>) -> (String, Tone);
    /// Its phi, two decimals.
    fn phi_cell(&self) -> (String, Tone);
}

impl MemberCells for wire::Member {
    fn is_gone(&self) -> bool {
        matches!(self.state.as_str(), "dead" | "left")
    }

    fn state_cell(&self) -> (String, Tone) {
        (self.state.clone(), Tone::of(&self.state))
    }

    fn health_cell(&self) -> (String, Tone) {
        if self.is_gone() {
            (NONE.to_owned(), Tone::Muted)
        } else {
            (self.health.clone(), Tone::of(&self.health))
        }
    }

    fn score_cell(&self) -> (String, Tone) {
        if self.is_gone() {
            (NONE.to_owned(), Tone::Muted)
        } else {
            (
                format!("{:.2}", f64::from(self.health_score) / 100.0),
                Tone::Plain,
            )
        }
    }

    fn role_cell(&self, leader: Option<&str>) -> (String, Tone) {
        if leader == Some(self.node_id.as_str()) {
            (format!("{} (leader)", self.role), Tone::Plain)
        } else {
            (self.role.clone(), Tone::Plain)
        }
    }

    fn phi_cell(&self) -> (String, Tone) {
        (format!("{:.2}", self.phi_score), Tone::Plain)
    }
}

/// The members and the leader's id, as `vigil members` and the console show them.
pub struct MembersView {
    /// `GET /v1/members` as the agent answered it.
    pub raw: Value,
    /// The table, the leader marked, and the quorum line after it.
    pub text: String,
}

/// Reads `/v1/members` and `/v1/leader` of `agent`; [`STANDALONE`] as the error of an agent
/// without a cluster.
pub async fn members_view(agent: &Agent, colour: bool) -> anyhow::Result<MembersView> {
    let raw = agent.get_cluster("/v1/members").await?;
    let members: wire::Members = agent.decode("/v1/members", raw.clone())?;
    // The leader is marked in the role column; without one (no quorum, no voters, an agent
    // that cannot say) the table is still worth printing.
    let leader = match agent.get_cluster("/v1/leader").await {
        Ok(body) => agent
            .decode::<wire::Leader>("/v1/leader", body)
            .ok()
            .and_then(|l| l.leader_id),
        Err(_) => None,
    };
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
    for m in &members.members {
        t.row(vec![
            (m.node_id.clone(), Tone::Plain),
            m.state_cell(),
            m.health_cell(),
            m.score_cell(),
            m.role_cell(leader.as_deref()),
            (m.address.clone(), Tone::Plain),
            (m.api_address.clone().unwrap_or_default(), Tone::Plain),
            m.phi_cell(),
            (m.incarnation.to_string(), Tone::Plain),
        ]);
    }
    let mut text = t.render(colour);
    text.push_str(&format!(
        "quorum: {}\n",
        if members.has_quorum { "yes" } else { "no" }
    ));
    Ok(MembersView { raw, text })
}

/// `vigil members`: one row per member, this node included; exits 1 on an agent without a
/// cluster.
pub async fn members(addr: &AgentAddr) -> anyhow::Result<ExitCode> {
    let view = members_view(&Agent::of(addr), crate::table::colour_enabled()).await?;
    if addr.json {
        println!("{}", serde_json::to_string_pretty(&view.raw)?);
    } else {
        print!("{}", view.text);
    }
    Ok(ExitCode::SUCCESS)
}

/// `vigil reload`: asks the agent to read its config file again and says what changed; exits 1
/// when the agent refused the file (its reason says why).
pub async fn reload(target: &Authorized) -> anyhow::Result<ExitCode> {
    let agent = Agent::new(
        target.agent.addr.clone(),
        target.token(),
        Duration::from_secs(30),
        UNREACHABLE_HINT,
    );
    let answer = agent.send(Method::POST, "/v1/reload").await?;
    if !answer.status.is_success() {
        eprintln!("vigil reload: {}", answer.reason());
        return Ok(ExitCode::FAILURE);
    }
    let done: wire::Reloaded = agent.decode("/v1/reload", answer.body)?;
    if target.agent.json {
        println!("{}", serde_json::to_string_pretty(&done)?);
        return Ok(ExitCode::SUCCESS);
    }
    let list = |names: &[String]| {
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    };
    println!(
        "reloaded: checks added {}, changed {}, removed {}, {} unchanged",
        list(&done.added),
        list(&done.changed),
        list(&done.removed),
        done.unchanged
    );
    if !done.applied.is_empty() {
        println!("applied at once: {}", done.applied.join(", "));
    }
    if !done.at_restart.is_empty() {
        println!(
            "changed, taking effect when the agent restarts: {}",
            done.at_restart.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
