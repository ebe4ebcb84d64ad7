//! What `vigil agent` tells the service manager that started it (systemd's `Type=notify`, through
//! `NOTIFY_SOCKET`): `READY=1` once it serves, `RELOADING=1` and `READY=1` around a SIGHUP
//! reload, `STOPPING=1` when shutdown starts, a `STATUS=` line `systemctl status` shows, and
//! `WATCHDOG=1` pings while the runtime makes progress. Without `NOTIFY_SOCKET` none of it exists.
//!
//! The `sd-notify` crate writes the states and reads the watchdog's variables; the datagram is
//! sent here, because its `notify` (0.5) takes `NOTIFY_SOCKET` as a path only, and systemd may
//! name a socket in Linux's abstract namespace (`@name`) instead.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::sync::broadcast::error::RecvError;
use vigil_health::{Engine, Event};

/// The longest pause between two watchdog pings, whatever `WATCHDOG_USEC` says: pinging more
/// often than asked is harmless, and it keeps the timer far from any overflow.
const MAX_PING_EVERY: Duration = Duration::from_secs(3600);

/// Where notifications go, as `NOTIFY_SOCKET` names it.
#[derive(Clone, Debug)]
enum Socket {
    /// A socket file: the variable starts with `/`.
    Path(PathBuf),
    /// A name in the abstract namespace: the variable is `@` and the name.
    Abstract(Vec<u8>),
}

impl Socket {
    fn parse(variable: std::ffi::OsString) -> Option<Socket> {
        use std::os::unix::ffi::OsStringExt;
        let bytes = variable.into_vec();
        match bytes.split_first() {
            Some((b'/', _)) => Some(Socket::Path(PathBuf::from(std::ffi::OsString::from_vec(
                bytes,
            )))),
            Some((b'@', name)) if !name.is_empty() => Some(Socket::Abstract(name.to_vec())),
            _ => None,
        }
    }

    fn send(&self, message: &[u8]) -> std::io::Result<()> {
        let socket = UnixDatagram::unbound()?;
        match self {
            Socket::Path(path) => socket.connect(path)?,
            Socket::Abstract(name) => socket.connect_addr(&abstract_address(name)?)?,
        }
        let sent = socket.send(message)?;
        if sent < message.len() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                format!("{sent} of {} bytes sent", message.len()),
            ));
        }
        Ok(())
    }
}

#[cfg(target_os = "linux")]
fn abstract_address(name: &[u8]) -> std::io::Result<UnixAddr> {
    use std::os::linux::net::SocketAddrExt;
    UnixAddr::from_abstract_name(name)
}

/// systemd, the one service manager that names abstract sockets, runs on Linux alone.
#[cfg(not(target_os = "linux"))]
fn abstract_address(_: &[u8]) -> std::io::Result<UnixAddr> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "abstract sockets exist on Linux only",
    ))
}

/// The service manager's end of the agent, when `NOTIFY_SOCKET` names one.
#[derive(Clone)]
pub struct ServiceManager {
    socket: Arc<Socket>,
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
        let variable = std::env::var_os("NOTIFY_SOCKET").filter(|socket| !socket.is_empty())?;
        let Some(socket) = Socket::parse(variable.clone()) else {
            tracing::warn!(
                "NOTIFY_SOCKET={variable:?} is neither a socket path (/…) nor an abstract socket (@…): the service manager is not told of readiness"
            );
            return None;
        };
        let ping_every = sd_notify::watchdog_enabled()
            .filter(|period| !period.is_zero())
            .map(|period| (period / 2).min(MAX_PING_EVERY));
        Some(ServiceManager {
            socket: Arc::new(socket),
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

    /// One datagram of `KEY=value` lines, as sd_notify(3) sends them.
    fn send(&self, states: &[NotifyState]) {
        let mut message = String::new();
        for state in states {
            let _ = writeln!(message, "{state}");
        }
        if let Err(e) = self.socket.send(message.as_bytes()) {
            tracing::warn!(
                "cannot notify the service manager at {:?}: {e}",
                self.socket
            );
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
