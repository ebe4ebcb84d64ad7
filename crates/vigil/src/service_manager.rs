//! What `vigil agent` tells the service manager that started it (systemd's `Type=notify`, through
//! `NOTIFY_SOCKET`): `READY=1` once it serves, `RELOADING=1` and `READY=1` around a SIGHUP
//! reload, `STOPPING=1` when shutdown starts, a `STATUS=` line `systemctl status` shows, and
//! `WATCHDOG=1` pings while the runtime makes progress. Without `NOTIFY_SOCKET` none of it exists.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::sync::broadcast::error::RecvError;
use vigil_health::{Engine, Event};

/// The longest pause between two watchdog pings, whatever `WATCHDOG_USEC` says: pinging more
/// often than asked is harmless, and it keeps the timer far from any overflow.
const MAX_PING_EVERY: Duration = Duration::from_secs(3600);

/// The service manager's end of the agent, when `NOTIFY_SOCKET` names one.
#[derive(Clone)]
pub struct ServiceManager {
    /// Half the watchdog period, when the watchdog is on for this process.
    ping_every: Option<Duration>,
    /// What `READY=1` announced, once sent: the engine and the API's address, which later
    /// `STATUS=` lines describe. A reload before that must not announce readiness.
    serving: Arc<OnceLock<(Engine, SocketAddr)>>,
}

impl ServiceManager {
    /// The service manager named by `NOTIFY_SOCKET`, with the watchdog of `WATCHDOG_USEC` when
    /// `WATCHDOG_PID` is absent or this process. The variables stay set (taking them out of the
    /// environment of a threaded process is unsound), so exec checks inherit them: with
    /// `NotifyAccess=main` systemd ignores what they send, and `WATCHDOG_PID` is not theirs.
    pub fn from_env() -> Option<ServiceManager> {
        std::env::var_os("NOTIFY_SOCKET").filter(|socket| !socket.is_empty())?;
        let ping_every = sd_notify::watchdog_enabled()
            .filter(|period| !period.is_zero())
            .map(|period| (period / 2).min(MAX_PING_EVERY));
        Some(ServiceManager {
            ping_every,
            serving: Arc::default(),
        })
    }

    /// The agent serves: its API at `api` accepts connections and its engine publishes
    /// snapshots. Starts the watchdog and keeps `STATUS=` up to date with the node's status.
    pub fn ready(&self, engine: &Engine, api: SocketAddr) {
        // Set before READY=1 goes: a SIGHUP the moment systemd reads it is announced too.
        let _ = self.serving.set((engine.clone(), api));
        let status = describe(engine, &api);
        self.send(&[
            NotifyState::Ready,
            NotifyState::MainPid(std::process::id()),
            NotifyState::Status(&status),
        ]);
        if let Some(every) = self.ping_every {
            tokio::spawn(watchdog(self.clone(), every));
        }
        tokio::spawn(follow_status(self.clone(), engine.clone(), api));
    }

    /// A reload begins, announced with `RELOADING=1`; [`Reload::done`] ends it. Nothing is said
    /// before readiness, and then the end is not announced either.
    pub fn reloading(&self) -> Option<Reload> {
        let (engine, api) = self.serving.get()?;
        match NotifyState::monotonic_usec_now() {
            Ok(now) => {
                self.send(&[NotifyState::Reloading, now]);
                Some(Reload {
                    manager: self.clone(),
                    engine: engine.clone(),
                    api: *api,
                })
            }
            Err(e) => {
                tracing::warn!("cannot read the monotonic clock for RELOADING=1: {e}");
                None
            }
        }
    }

    /// Shutdown has started (`reason` says why).
    pub fn stopping(&self, reason: &str) {
        let status = format!("stopping: {reason}");
        self.send(&[NotifyState::Stopping, NotifyState::Status(&status)]);
    }

    fn send(&self, states: &[NotifyState]) {
        if let Err(e) = sd_notify::notify(states) {
            tracing::warn!("cannot notify the service manager (NOTIFY_SOCKET): {e}");
        }
    }
}

/// A reload announced to the service manager.
pub struct Reload {
    manager: ServiceManager,
    engine: Engine,
    api: SocketAddr,
}

impl Reload {
    /// The reload ended, applied or refused (`outcome` says which): the agent serves again.
    pub fn done(self, outcome: &str) {
        let status = format!("{}; {outcome}", describe(&self.engine, &self.api));
        self.manager
            .send(&[NotifyState::Ready, NotifyState::Status(&status)]);
    }
}

/// The `STATUS=` line: the node's status now, and where its API is.
fn describe(engine: &Engine, api: &SocketAddr) -> String {
    format!("{}; API on {api}", engine.snapshot().status())
}

/// Pings every `every` while the runtime runs new work: the pings come from a task on the agent's
/// own runtime, and each waits for a task spawned afresh to finish, so workers that are stuck or
/// a scheduler that runs nothing new stop them, and systemd restarts the agent.
async fn watchdog(manager: ServiceManager, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match tokio::time::timeout(every, tokio::spawn(tokio::task::yield_now())).await {
            Ok(Ok(())) => manager.send(&[NotifyState::Watchdog]),
            Ok(Err(e)) => tracing::warn!("watchdog: the runtime failed a fresh task: {e}"),
            Err(_) => tracing::warn!("watchdog: a fresh task did not run within {every:?}"),
        }
    }
}

/// Keeps `STATUS=` saying the node's status as it changes.
async fn follow_status(manager: ServiceManager, engine: Engine, api: SocketAddr) {
    let mut events = engine.subscribe();
    loop {
        match events.recv().await {
            Ok(Event::StatusChanged { .. }) | Err(RecvError::Lagged(_)) => {
                let status = describe(&engine, &api);
                manager.send(&[NotifyState::Status(&status)]);
            }
            Ok(_) => {}
            Err(RecvError::Closed) => return,
        }
    }
}
