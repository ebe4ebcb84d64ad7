//! `vigil elect NAME --id ID -- CMD` and `vigil lock NAME -- CMD`: run a command only while this
//! process leads an election (or holds a lock), with the grant's fencing token in its
//! environment, and stop it the moment the role is lost.
//!
//! The process keeps a session on the agent beside it ([`crate::holder`]), campaigns with it,
//! and watches the role with blocking reads. It believes it holds the role while the role shows
//! it as holder, not asked to yield, and its lease runs; when any of these ends it stops the
//! command (SIGTERM, `--grace`, SIGKILL), ends its session so the next candidate is granted at
//! once, and stands again with a new session. When the command exits on its own, the role is
//! given up and `vigil` exits with the command's status.

use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use reqwest::{Method, StatusCode};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::time::Instant;
use vigil_api::wire;
use vigil_text::limits;

use crate::client::{Agent, UNREACHABLE_HINT};
use crate::holder::{Holding, State};
use crate::stop_signal::StopSignal;

/// How long a blocking read of the role waits for a change.
const WATCH_WAIT: Duration = Duration::from_secs(30);
/// The pause before standing again after a refusal or an unreachable agent.
const RETRY: Duration = Duration::from_millis(500);

/// How an election chooses its next leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PolicyArg {
    /// The candidate that has waited longest.
    First,
    /// The lowest id among live, healthy candidates.
    LowestId,
}

/// What the agent and the command are, for both `elect` and `lock`.
#[derive(Args, Debug)]
pub struct Common {
    /// What the holder publishes while it holds the role (an address, say).
    #[arg(long, default_value = "")]
    value: String,
    /// How long the session lives without a renewal (renewed every third of it); the role
    /// passes on this long after a hung holder stops renewing.
    #[arg(long, default_value = "10s", value_parser = parse_ttl)]
    ttl: Duration,
    /// `SERVICE/ID` of a registered instance whose checks the session follows: the role passes
    /// on when they turn critical.
    #[arg(long)]
    instance: Option<String>,
    /// How long the command may take to exit after SIGTERM before it is killed.
    #[arg(long, default_value = "5s", value_parser = parse_grace)]
    grace: Duration,
    /// Base URL of the agent's API (the agent beside this process).
    #[arg(long, env = "VIGIL_ADDR", default_value = "http://127.0.0.1:8081")]
    addr: String,
    /// The agent's API token.
    #[arg(long, env = "VIGIL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The command to run while holding the role, and its arguments.
    #[arg(last = true, required = true, num_args = 1..)]
    command: Vec<String>,
}

fn parse_ttl(text: &str) -> Result<Duration, String> {
    limits::SESSION_TTL.parse(text).map_err(|e| e.to_string())
}

fn parse_grace(text: &str) -> Result<Duration, String> {
    limits::STOP_GRACE.parse(text).map_err(|e| e.to_string())
}

/// `vigil elect`.
#[derive(Args, Debug)]
pub struct ElectArgs {
    /// The election.
    name: String,
    /// This candidate's id in the election.
    #[arg(long)]
    id: String,
    /// How the next leader is chosen; an election keeps the policy it started with.
    #[arg(long, value_enum, default_value_t = PolicyArg::First)]
    policy: PolicyArg,
    /// With `lowest-id`: a lower id that comes up takes leadership over from a higher one.
    #[arg(long)]
    preempt: bool,
    #[command(flatten)]
    common: Common,
}

/// `vigil lock`.
#[derive(Args, Debug)]
pub struct LockArgs {
    /// The lock.
    name: String,
    /// Who asks, as the lock shows it (default: the session's id).
    #[arg(long)]
    holder: Option<String>,
    /// How many may hold the lock at once (a semaphore above 1).
    #[arg(long, default_value_t = 1)]
    limit: u32,
    #[command(flatten)]
    common: Common,
}

/// One of the two roles, as this process asks for it.
struct Role {
    kind: &'static str,
    /// The path of the role's reads: `/v1/elections/NAME` or `/v1/locks/NAME`.
    path: String,
    name: String,
    /// The candidate id, `None` for a lock asked for under the session's id.
    candidate: Option<String>,
    /// The campaign body, without the session.
    ask: Ask,
    common: Common,
}

enum Ask {
    Election { policy: PolicyArg, preempt: bool },
    Lock { limit: u32 },
}

impl Role {
    fn campaign(&self, session: &str) -> (String, serde_json::Value) {
        let value = Some(self.common.value.clone()).filter(|v| !v.is_empty());
        match &self.ask {
            Ask::Election { policy, preempt } => {
                let body = wire::CampaignRequest {
                    candidate: self.candidate.clone().unwrap_or_default(),
                    session: session.to_owned(),
                    value,
                    policy: Some(
                        match policy {
                            PolicyArg::First => "first",
                            PolicyArg::LowestId => "lowest-id",
                        }
                        .to_owned(),
                    ),
                    preempt: Some(*preempt),
                };
                (
                    format!("{}/campaign", self.path),
                    serde_json::to_value(body).unwrap_or_default(),
                )
            }
            Ask::Lock { limit } => {
                let body = wire::LockRequest {
                    session: session.to_owned(),
                    candidate: self.candidate.clone(),
                    value,
                    limit: Some(*limit),
                };
                (
                    self.path.clone(),
                    serde_json::to_value(body).unwrap_or_default(),
                )
            }
        }
    }

    /// This candidate's id, given the session.
    fn id(&self, session: &str) -> String {
        self.candidate.clone().unwrap_or_else(|| session.to_owned())
    }
}

/// `vigil elect`.
pub async fn elect(args: ElectArgs, stop: StopSignal) -> anyhow::Result<ExitCode> {
    let role = Role {
        kind: "election",
        path: format!("/v1/elections/{}", args.name),
        name: args.name,
        candidate: Some(args.id),
        ask: Ask::Election {
            policy: args.policy,
            preempt: args.preempt,
        },
        common: args.common,
    };
    run(role, stop).await
}

/// `vigil lock`.
pub async fn lock(args: LockArgs, stop: StopSignal) -> anyhow::Result<ExitCode> {
    let role = Role {
        kind: "lock",
        path: format!("/v1/locks/{}", args.name),
        name: args.name,
        candidate: args.holder,
        ask: Ask::Lock { limit: args.limit },
        common: args.common,
    };
    run(role, stop).await
}

/// How one term of holding a session ended.
enum Term {
    /// The command exited with this status: give up and exit with it.
    Exited(ExitCode),
    /// Asked to stop.
    Stopped,
    /// The role or the session was lost: stand again.
    Lost,
}

async fn run(role: Role, stop: StopSignal) -> anyhow::Result<ExitCode> {
    let agent = Arc::new(Agent::new(
        role.common.addr.clone(),
        role.common.token.clone(),
        Duration::from_secs(5),
        UNREACHABLE_HINT,
    ));
    // The reason the last attempt to stand failed: a reason that repeats is not printed again.
    let mut failing: Option<String> = None;
    loop {
        let holder = role.candidate.clone().unwrap_or_default();
        let holding = tokio::select! {
            opened = Holding::open(agent.clone(), &holder, role.common.ttl, role.common.instance.as_deref()) => opened,
            _ = stop.received() => return Ok(ExitCode::SUCCESS),
        };
        let holding = match holding {
            Ok(holding) => {
                failing = None;
                holding
            }
            Err(e) => {
                let why = format!("cannot open a session: {e:#}");
                if failing.as_ref() != Some(&why) {
                    eprintln!("vigil: {why}; trying again every {RETRY:?}");
                    failing = Some(why);
                }
                tokio::select! {
                    _ = tokio::time::sleep(RETRY) => continue,
                    _ = stop.received() => return Ok(ExitCode::SUCCESS),
                }
            }
        };
        let term = stand(&role, &agent, &holding, &stop).await;
        holding.end().await;
        match term {
            Ok(Term::Exited(code)) => return Ok(code),
            Ok(Term::Stopped) => return Ok(ExitCode::SUCCESS),
            Ok(Term::Lost) => {}
            Err(e) => {
                eprintln!("vigil: {e:#}; standing again");
                tokio::select! {
                    _ = tokio::time::sleep(RETRY) => {}
                    _ = stop.received() => return Ok(ExitCode::SUCCESS),
                }
            }
        }
    }
}

/// Campaigns with `holding`'s session, runs the command while holding the role, and says how
/// that ended.
async fn stand(
    role: &Role,
    agent: &Arc<Agent>,
    holding: &Holding,
    stop: &StopSignal,
) -> anyhow::Result<Term> {
    let (path, body) = role.campaign(&holding.id);
    let answer = agent
        .send_within(Method::POST, &path, Some(body), Duration::from_secs(5))
        .await?;
    if answer.status == StatusCode::BAD_REQUEST {
        anyhow::bail!("{} {}: {}", role.kind, role.name, answer.reason());
    }
    let result: wire::CampaignResult = agent.decode(&path, answer.success()?)?;
    let me = role.id(&holding.id);
    let (views, mut view) = watch::channel(Some(result.role));
    let watcher = tokio::spawn(watch_role(agent.clone(), role.path.clone(), views));
    let _watcher = AbortOnDrop(watcher);
    let mut session = holding.watch();
    let mut child: Option<Child> = None;
    loop {
        let state = session.borrow_and_update().clone();
        let now = Instant::now();
        let granted = view
            .borrow_and_update()
            .as_ref()
            .and_then(|r| r.holders.iter().find(|h| h.id == me).cloned())
            .filter(|h| !h.yielding);
        let holds = granted.is_some() && state.valid_at(now);
        match (&mut child, holds) {
            (None, true) => {
                let token = granted.as_ref().map_or(0, |h| h.token);
                eprintln!(
                    "vigil: {} {}: holding it as {me} with fencing token {token}",
                    role.kind, role.name
                );
                child = Some(start(role, &me, token)?);
            }
            (Some(running), false) => {
                let why = lost_why(&state, granted.is_some(), now);
                eprintln!(
                    "vigil: {} {}: lost it ({why}); stopping the command",
                    role.kind, role.name
                );
                vigil_up::process::stop_process(running, role.common.grace).await;
                return Ok(Term::Lost);
            }
            _ => {}
        }
        if let Some(why) = &state.lost {
            if child.is_none() {
                eprintln!(
                    "vigil: {} {}: the session was lost before anything was held ({why}); standing again",
                    role.kind, role.name
                );
            }
            return Ok(Term::Lost);
        }
        let lease_end = tokio::time::sleep_until(state.lease_until);
        tokio::select! {
            _ = lease_end, if child.is_some() => {}
            changed = session.changed() => changed.context("the session's keeper stopped")?,
            changed = view.changed() => changed.context("the role's watcher stopped")?,
            status = wait(&mut child) => {
                let code = status.ok().and_then(|s| s.code()).unwrap_or(1);
                eprintln!("vigil: the command exited with status {code}; giving the {} up", role.kind);
                return Ok(Term::Exited(ExitCode::from(u8::try_from(code).unwrap_or(1))));
            }
            _ = stop.received() => {
                if let Some(running) = &mut child {
                    vigil_up::process::stop_process(running, role.common.grace).await;
                }
                return Ok(Term::Stopped);
            }
        }
    }
}

/// Why a holder no longer holds.
fn lost_why(state: &State, granted: bool, now: Instant) -> String {
    match (&state.lost, granted) {
        (Some(why), _) => why.clone(),
        (None, false) => "the cluster granted it to another, or asks it to yield".to_owned(),
        (None, true) if now >= state.lease_until => {
            "its lease ran out: renewals were not acknowledged in time".to_owned()
        }
        (None, true) => "no longer held".to_owned(),
    }
}

/// The running command's exit; pending while there is none.
async fn wait(child: &mut Option<Child>) -> std::io::Result<std::process::ExitStatus> {
    match child {
        Some(child) => child.wait().await,
        None => std::future::pending().await,
    }
}

/// Starts the command with the grant in its environment, in this process's group, so that a
/// signal to the group (a Ctrl-C) reaches both.
fn start(role: &Role, me: &str, token: u64) -> anyhow::Result<Child> {
    let (program, args) = role
        .common
        .command
        .split_first()
        .context("no command to run")?;
    Command::new(program)
        .args(args)
        .env("VIGIL_FENCING_TOKEN", token.to_string())
        .env("VIGIL_ROLE", &role.name)
        .env("VIGIL_CANDIDATE_ID", me)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot run {program}"))
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Follows the role with blocking reads, publishing each version (`None` while nobody
/// campaigns).
async fn watch_role(agent: Arc<Agent>, path: String, views: watch::Sender<Option<wire::RoleBody>>) {
    let mut index = views.borrow().as_ref().map_or(0, |role| role.index);
    loop {
        let query = format!("{path}?index={index}&wait={}s", WATCH_WAIT.as_secs());
        let answer = agent
            .send_within(
                Method::GET,
                &query,
                None,
                WATCH_WAIT + Duration::from_secs(5),
            )
            .await;
        match answer {
            Ok(answer) if answer.status.is_success() => {
                if let Ok(role) = agent.decode::<wire::RoleBody>(&path, answer.body) {
                    index = role.index;
                    views.send_replace(Some(role));
                }
            }
            Ok(answer) if answer.status == StatusCode::NOT_FOUND => {
                views.send_replace(None);
                tokio::time::sleep(RETRY).await;
            }
            Ok(_) | Err(_) => tokio::time::sleep(RETRY).await,
        }
    }
}
