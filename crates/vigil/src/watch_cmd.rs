//! `vigil watch`: a compact cluster view of a running agent, redrawn until Ctrl-C.
//!
//! On a terminal the screen is cleared and redrawn in place; piped, each refresh is printed after
//! the last one, separated by a blank line, so the output can be logged or grepped.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde::de::DeserializeOwned;
use vigil_api::wire;

use crate::client::{self, MemberCells};
use crate::table::{colour_enabled, Table, Tone};

/// Options of `vigil watch`.
#[derive(Args)]
pub struct WatchArgs {
    /// Base URL of the agent's API.
    #[arg(long, env = "VIGIL_ADDR", default_value = "http://127.0.0.1:8081")]
    addr: String,
    /// The agent's read token or API token (needed when the agent sets `read_token`).
    #[arg(long, env = "VIGIL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Time between refreshes.
    #[arg(long, default_value = "1s", value_parser = |t: &str| vigil_probe::limits::WATCH_INTERVAL.parse(t))]
    interval: Duration,
    /// Stop after this many refreshes instead of running until Ctrl-C.
    #[arg(long)]
    count: Option<u64>,
}

/// Redraws until Ctrl-C (or `--count` refreshes); exits 0.
pub async fn run(args: WatchArgs) -> anyhow::Result<ExitCode> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = &args.token {
        let mut bearer = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| anyhow::anyhow!("--token must be one word of visible characters"))?;
        bearer.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, bearer);
    }
    let client = client::http_client()
        .timeout(args.interval.max(Duration::from_secs(2)))
        .default_headers(headers)
        .build()?;
    let base = args.addr.trim_end_matches('/').to_owned();
    let tty = std::io::stdout().is_terminal();
    let colour = colour_enabled();
    let mut ticks = tokio::time::interval(args.interval.max(Duration::from_millis(100)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut drawn = 0u64;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => break,
            _ = ticks.tick() => {}
        }
        let view = View::fetch(&client, &base).await;
        let screen = view.render(&base, colour);
        let mut out = std::io::stdout().lock();
        if tty {
            // Home and clear, then draw: one write, so the terminal never shows half a frame.
            write!(out, "\x1b[H\x1b[2J{screen}")?;
        } else {
            if drawn > 0 {
                writeln!(out)?;
            }
            write!(out, "{screen}")?;
        }
        out.flush()?;
        drawn += 1;
        if args.count.is_some_and(|n| drawn >= n) {
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What one refresh read from the agent; `None` where an endpoint was unavailable.
struct View {
    summary: Result<wire::Summary, String>,
    checks: Option<wire::Checks>,
    members: Option<wire::Members>,
    leader: Option<wire::Leader>,
}

impl View {
    async fn fetch(client: &reqwest::Client, base: &str) -> View {
        async fn get<T: DeserializeOwned>(
            client: &reqwest::Client,
            base: &str,
            path: &str,
        ) -> Result<T, String> {
            let response = client
                .get(format!("{base}{path}"))
                .send()
                .await
                .map_err(|e| format!("cannot reach {base}: {e}"))?;
            if response.status() == reqwest::StatusCode::NOT_FOUND {
                return Err(format!("{path}: not served"));
            }
            response
                .json::<T>()
                .await
                .map_err(|e| format!("{path}: {e}"))
        }
        let (summary, checks, members, leader) = tokio::join!(
            get(client, base, "/health/summary"),
            get(client, base, "/health/checks"),
            get(client, base, "/v1/members"),
            get(client, base, "/v1/leader"),
        );
        View {
            summary,
            checks: checks.ok(),
            members: members.ok(),
            leader: leader.ok(),
        }
    }

    fn render(&self, base: &str, colour: bool) -> String {
        let now = time::OffsetDateTime::now_utc();
        let clock = format!("{:02}:{:02}:{:02}Z", now.hour(), now.minute(), now.second());
        let summary = match &self.summary {
            Ok(summary) => summary,
            Err(e) => {
                return format!("vigil watch {base}  {clock}\n{e} (retrying)\n");
            }
        };
        let mut out = String::new();
        let status = summary.status.as_str();
        let status = Tone::of(status).paint(status, colour);
        let leader_id = self.leader.as_ref().and_then(|l| l.leader_id.clone());
        let _ = write!(
            out,
            "vigil · {} · {status} · score {:.2}",
            summary.node_id, summary.overall_score,
        );
        if let Some(leader) = &self.leader {
            let _ = write!(
                out,
                " · leader {} (term {})",
                leader_id.as_deref().unwrap_or("none"),
                leader.term
            );
        }
        if let Some(members) = &self.members {
            let quorum = members.has_quorum;
            let word = if quorum { "quorum" } else { "NO QUORUM" };
            let tone = if quorum { Tone::Good } else { Tone::Bad };
            let _ = write!(out, " · {}", tone.paint(word, colour));
        }
        let _ = writeln!(out, " · {clock}\n");

        if let Some(members) = &self.members {
            let mut t = Table::new(vec!["MEMBER", "STATE", "HEALTH", "SCORE", "PHI", "ROLE"]);
            for m in &members.members {
                t.row(vec![
                    (m.node_id.clone(), Tone::Plain),
                    m.state_cell(),
                    m.health_cell(),
                    m.score_cell(),
                    m.phi_cell(),
                    m.role_cell(leader_id.as_deref()),
                ]);
            }
            out.push_str(&t.render(colour));
            out.push('\n');
        }

        let mut t = Table::new(vec!["CHECK", "STATE", "SCORE", "LATENCY"]);
        for (name, c) in self.checks.iter().flat_map(|c| &c.checks) {
            let state = c.state.as_str();
            t.row(vec![
                (name.clone(), Tone::Plain),
                (state.to_owned(), Tone::of(state)),
                (client::score(c.score), Tone::Plain),
                (client::latency(c.latency), Tone::Plain),
            ]);
        }
        out.push_str(&t.render(colour));
        out
    }
}
