//! A holder's session as `vigil elect` and `vigil lock` keep it: created on the agent beside
//! this process, tied to it by a `hold` connection (if this process dies, the agent ends the
//! session at once), renewed every third of its TTL, and the lease that tells this process how
//! long it may go on believing it holds what it holds.
//!
//! The lease (DESIGN.md, "Sessions, elections and locks"): a renewal sent at `t` and
//! acknowledged lets the holder believe until `t + ttl × (1 − ρ) / (1 + ρ) − ε` on its own
//! monotonic clock, where ρ bounds the rate error of either clock and ε covers the scheduling
//! delay of acting on the deadline. The cluster ends the session no sooner than one TTL (on the
//! leader's clock) after it received that renewal, which was after `t`; so the holder stops
//! believing before anyone else can be granted what it holds, even when it is cut off.

use std::time::Duration;

use anyhow::Context;
use reqwest::{Method, StatusCode};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use vigil_api::wire;

use crate::client::Agent;

/// ρ: the largest rate error of a clock against real time that the lease allows for (1%, ten
/// times what NTP lets a disciplined clock slew).
pub const CLOCK_RATE_ERROR: f64 = 0.01;
/// ε: how late this process may act on its lease deadline.
pub const ACTING_DELAY: Duration = Duration::from_millis(10);

/// How long the holder may believe after a renewal sent when the session had `ttl`.
pub fn lease_of(ttl: Duration) -> Duration {
    let factor = (1.0 - CLOCK_RATE_ERROR) / (1.0 + CLOCK_RATE_ERROR);
    ttl.mul_f64(factor).saturating_sub(ACTING_DELAY)
}

/// What the holder knows of its session now.
#[derive(Clone, Debug)]
pub struct State {
    /// Until when it may believe what the session holds.
    pub lease_until: Instant,
    /// The session as the last renewal returned it.
    pub session: wire::SessionBody,
    /// Why the session is lost, once it is: it may not be renewed any more.
    pub lost: Option<String>,
}

impl State {
    /// Whether the lease runs at `now` and the session is not lost.
    pub fn valid_at(&self, now: Instant) -> bool {
        self.lost.is_none() && now < self.lease_until
    }
}

/// A live session and the tasks that keep it.
pub struct Holding {
    agent: std::sync::Arc<Agent>,
    /// The session's id.
    pub id: String,
    state: watch::Receiver<State>,
    tasks: Vec<JoinHandle<()>>,
}

impl Holding {
    /// Creates a session on `agent` for `holder` with `ttl`, following `instance` when given,
    /// and starts keeping it.
    pub async fn open(
        agent: std::sync::Arc<Agent>,
        holder: &str,
        ttl: Duration,
        instance: Option<&str>,
    ) -> anyhow::Result<Holding> {
        let request = wire::SessionRequest {
            holder: Some(holder.to_owned()),
            ttl: Some(format!("{}ms", ttl.as_millis())),
            instance: instance.map(str::to_owned),
            node: None,
        };
        let sent = Instant::now();
        let session: wire::SessionBody = {
            let body = agent
                .send_json(Method::POST, "/v1/sessions", &request)
                .await?
                .success()?;
            agent.decode("/v1/sessions", body)?
        };
        let ttl = Duration::from_millis(session.ttl_ms);
        let (publish, state) = watch::channel(State {
            lease_until: sent + lease_of(ttl),
            session: session.clone(),
            lost: None,
        });
        let publish = std::sync::Arc::new(publish);
        let id = session.id.clone();
        let renewals = tokio::spawn(renew(agent.clone(), id.clone(), ttl, publish.clone()));
        let hold = tokio::spawn(hold(agent.clone(), id.clone(), publish));
        Ok(Holding {
            agent,
            id,
            state,
            tasks: vec![renewals, hold],
        })
    }

    /// The session's state, told of every change.
    pub fn watch(&self) -> watch::Receiver<State> {
        self.state.clone()
    }

    /// Ends the session (everything it holds is released) and stops keeping it.
    pub async fn end(self) {
        for task in &self.tasks {
            task.abort();
        }
        let path = format!("/v1/sessions/{}", self.id);
        if let Err(e) = self.agent.send(Method::DELETE, &path).await {
            eprintln!("vigil: could not end session {}: {e:#}", self.id);
        }
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn lose(publish: &watch::Sender<State>, why: String) {
    publish.send_modify(|state| {
        state.lost.get_or_insert(why);
    });
}

/// Renews the session every third of its TTL until it is lost. A renewal may take up to the
/// whole TTL to be acknowledged (a loaded agent, a hop through a member): it still counts from
/// when it was sent, and the next one goes out on time all the same.
async fn renew(
    agent: std::sync::Arc<Agent>,
    id: String,
    ttl: Duration,
    publish: std::sync::Arc<watch::Sender<State>>,
) {
    let mut every = tokio::time::interval(ttl / 3);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    let path = format!("/v1/sessions/{id}/renew");
    loop {
        every.tick().await;
        let sent = Instant::now();
        let answer = agent.send_within(Method::PUT, &path, None, ttl).await;
        match answer {
            Ok(answer) if answer.status.is_success() => {
                match agent.decode::<wire::SessionBody>(&path, answer.body) {
                    Ok(session) => publish.send_modify(|state| {
                        state.lease_until = state.lease_until.max(sent + lease_of(ttl));
                        state.session = session;
                    }),
                    Err(e) => eprintln!("vigil: renewing session {id}: {e:#}"),
                }
            }
            Ok(answer)
                if answer.status == StatusCode::NOT_FOUND
                    || answer.status == StatusCode::CONFLICT =>
            {
                lose(&publish, answer.reason());
                return;
            }
            Ok(answer) => eprintln!(
                "vigil: renewing session {id}: {} {}",
                answer.status,
                answer.reason()
            ),
            Err(e) => eprintln!("vigil: renewing session {id}: {e:#}"),
        }
    }
}

/// Keeps the `hold` connection open; its end loses the session (the agent ends a session whose
/// connection closed, so this process cannot go on holding it).
async fn hold(
    agent: std::sync::Arc<Agent>,
    id: String,
    publish: std::sync::Arc<watch::Sender<State>>,
) {
    let path = format!("/v1/sessions/{id}/hold");
    let why = match agent.stream(&path).await {
        Ok(mut response) => loop {
            match response.chunk().await.context("reading the hold stream") {
                Ok(Some(_)) => continue,
                Ok(None) => break "the agent closed the session's connection".to_owned(),
                Err(e) => break format!("the session's connection to the agent broke: {e:#}"),
            }
        },
        Err(e) => format!("cannot hold the session on the agent: {e:#}"),
    };
    lose(&publish, why);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_is_shorter_than_the_ttl_by_the_clock_margin() {
        let ttl = Duration::from_secs(10);
        let lease = lease_of(ttl);
        assert!(lease < ttl);
        // (1 - 0.01) / (1 + 0.01) of 10 s is 9.80198 s; less 10 ms, 9.79198 s.
        assert_eq!(lease.as_millis(), 9_791);
        assert_eq!(lease_of(Duration::from_millis(5)), Duration::ZERO);
    }
}
