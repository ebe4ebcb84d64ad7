//! `vigil watch`: a compact cluster view of a running agent, redrawn until Ctrl-C.
//!
//! On a terminal the screen is cleared and redrawn in place; piped, each refresh is printed after
//! the last one, separated by a blank line, so the output can be logged or grepped.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde_json::Value;

use crate::client::Members;
use crate::table::{colour_enabled, Table, Tone};

/// Options of `vigil watch`.
#[derive(Args)]
pub struct WatchArgs {
    /// Base URL of the agent's API.
    #[arg(long, env = "VIGIL_ADDR", default_value = "http://127.0.0.1:8081")]
    addr: String,
    /// Time between refreshes.
    #[arg(long, default_value = "1s", value_parser = |t: &str| vigil_probe::limits::WATCH_INTERVAL.parse(t))]
    interval: Duration,
    /// Stop after this many refreshes instead of running until Ctrl-C.
    #[arg(long)]
    count: Option<u64>,
}

/// Redraws until Ctrl-C (or `--count` refreshes); exits 0.
pub async fn run(args: WatchArgs) -> anyhow::Result<ExitCode> {
    let client = reqwest::Client::builder()
        .timeout(args.interval.max(Duration::from_secs(2)))
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
    summary: Result<Value, String>,
    checks: Option<Value>,
    members: Option<Members>,
    leader: Option<Value>,
}

impl View {
    async fn fetch(client: &reqwest::Client, base: &str) -> View {
        let get = |path: &'static str| async move {
            let response = client
                .get(format!("{base}{path}"))
                .send()
                .await
                .map_err(|e| format!("cannot reach {base}: {e}"))?;
            if response.status() == reqwest::StatusCode::NOT_FOUND {
                return Err(format!("{path}: not served"));
            }
            response
                .json::<Value>()
                .await
                .map_err(|e| format!("{path}: {e}"))
        };
        let (summary, checks, members, leader) = tokio::join!(
            get("/health/summary"),
            get("/health/checks"),
            get("/v1/members"),
            get("/v1/leader"),
        );
        View {
            summary,
            checks: checks.ok(),
            members: members.ok().and_then(|m| serde_json::from_value(m).ok()),
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
        let status = text(&summary["status"]);
        let status = Tone::of(&status).paint(&status, colour);
        let leader_id = self
            .leader
            .as_ref()
            .and_then(|l| l["leader_id"].as_str())
            .map(str::to_owned);
        let _ = write!(
            out,
            "vigil · {} · {status} · score {:.2}",
            text(&summary["node_id"]),
            summary["overall_score"].as_f64().unwrap_or(0.0),
        );
        if let Some(leader) = &self.leader {
            let _ = write!(
                out,
                " · leader {} (term {})",
                leader_id.as_deref().unwrap_or("none"),
                text(&leader["term"])
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
                    (m.id.clone(), Tone::Plain),
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
        if let Some(checks) = self.checks.as_ref().and_then(|c| c["checks"].as_object()) {
            for (name, c) in checks {
                let state = text(&c["state"]);
                t.row(vec![
                    (name.clone(), Tone::Plain),
                    (state.clone(), Tone::of(&state)),
                    (
                        c["score"]
                            .as_f64()
                            .map(|s| format!("{s:.2}"))
                            .unwrap_or_default(),
                        Tone::Plain,
                    ),
                    (
                        c["latency"]
                            .as_u64()
                            .map(|ns| format!("{:.1}ms", ns as f64 / 1e6))
                            .unwrap_or_default(),
                        Tone::Plain,
                    ),
                ]);
            }
        }
        out.push_str(&t.render(colour));
        out
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
