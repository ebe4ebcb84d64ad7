//! One service's life: launch it, probe it fast until it is healthy, restart it with backoff when it
//! exits or turns unhealthy, keep watching it after startup, and stop it when told to.
//!
//! A runner is a tokio task that reports [`Update`]s to the driver; it never decides when to start
//! (the scheduler does, by spawning the runner) nor in which order to stop (the driver does, by
//! sending the stop signal service by service).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use vigil_health::{Probe, Verdict};
use vigil_probe::Built;

use crate::launch::{container_health, Backend, Exit};
use crate::process::Stopped;
use crate::schedule::Event;
use crate::stack::{Health, HealthCheck, RestartMode, Service, ServiceId};
use crate::supervise::restarts_in_a_row;

/// What a runner tells the driver.
#[derive(Debug)]
pub enum Update {
    /// Something the scheduler must know.
    Event(Event),
    /// A new process (or container) runs for the service; the driver records it for `vigil down`.
    Running {
        /// Process id of the process group leader, for local processes.
        pid: Option<u32>,
        /// Its start time (see [`crate::process::start_time`]).
        start_time: Option<u64>,
        /// The container id, for compose services.
        container: Option<String>,
    },
    /// The runner stopped the service as told and ended.
    Stopped(Stopped),
}

/// A runner's update, with the service and the moment it happened.
pub type Message = (ServiceId, Instant, Update);

/// How a runner is asked to stop: the driver sets the value to `true`.
pub type StopSignal = watch::Receiver<bool>;

/// What the driver may ask of a running service besides stopping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    /// Stop it and start it again at once (its dependencies came back): not a failure, so no
    /// backoff and nothing counted against `max_restarts`.
    Restart {
        /// Why, for people.
        reason: String,
    },
}

/// What is probed, built once per runner.
enum Checker {
    Probe(Arc<dyn Probe>),
    Container,
}

/// Why a running service ended.
enum End {
    Exited(Exit),
    Unhealthy(String),
    Restart(String),
    Stop,
}

struct Runner {
    id: ServiceId,
    service: Service,
    backend: Arc<Backend>,
    updates: mpsc::UnboundedSender<Message>,
    stop: StopSignal,
    controls: mpsc::UnboundedReceiver<Control>,
}

/// Runs one service until the stop signal: the runner's whole life. Spawn it as a task.
pub async fn run(
    id: ServiceId,
    service: Service,
    backend: Arc<Backend>,
    updates: mpsc::UnboundedSender<Message>,
    stop: StopSignal,
    controls: mpsc::UnboundedReceiver<Control>,
) {
    Runner {
        id,
        service,
        backend,
        updates,
        stop,
        controls,
    }
    .run()
    .await;
}

/// Resolves with the next control; never, once the driver has dropped its sender.
async fn next_control(controls: &mut mpsc::UnboundedReceiver<Control>) -> Control {
    match controls.recv().await {
        Some(control) => control,
        None => std::future::pending().await,
    }
}

impl Runner {
    fn send(&self, update: Update) {
        // The driver outlives its runners; a closed channel means it is gone and nobody listens.
        let _ = self.updates.send((self.id, Instant::now(), update));
    }

    fn event(&self, event: Event) {
        self.send(Update::Event(event));
    }

    fn stop_requested(&self) -> bool {
        *self.stop.borrow()
    }

    /// Waits for the stop signal with nothing running, then says so.
    async fn idle_until_stop(&mut self) {
        while !self.stop_requested() {
            if self.stop.changed().await.is_err() {
                break;
            }
        }
        self.send(Update::Stopped(Stopped::Terminated));
    }

    async fn run(mut self) {
        let checker = match self.service.health.as_ref().map(|h| &h.check) {
            None => None,
            Some(HealthCheck::Container) => Some(Checker::Container),
            Some(HealthCheck::Probe(spec)) => match spec.build() {
                Ok(Built::Probe(probe)) => Some(Checker::Probe(probe)),
                Ok(Built::Ttl(_)) => None,
                Err(e) => {
                    self.event(Event::Failed {
                        reason: format!("cannot build its probe: {e}"),
                    });
                    return self.idle_until_stop().await;
                }
            },
        };
        // Restarts in a row that count against `max_restarts` (see `restarts_in_a_row`).
        let mut restarts = 0u32;
        // Whether an earlier attempt was ever ready (see `Attempt::past_start`).
        let mut ever_ready = false;
        loop {
            if self.stop_requested() {
                return self.idle_until_stop().await;
            }
            let mut running = match self.backend.launch(&self.service).await {
                Ok(running) => running,
                Err(e) => {
                    self.event(Event::Failed {
                        reason: format!("cannot start: {e}"),
                    });
                    return self.idle_until_stop().await;
                }
            };
            self.send(Update::Running {
                pid: running.pid(),
                start_time: running.pid().and_then(crate::process::start_time),
                container: running.container().map(str::to_owned),
            });
            self.event(Event::Started);
            let launched = Instant::now();
            let mut attempt = Attempt {
                launched,
                ready_at: self.service.health.is_none().then_some(launched),
                earlier_was_ready: ever_ready,
            };

            // Held apart while `watch_health` borrows the runner.
            let mut controls = std::mem::replace(&mut self.controls, mpsc::unbounded_channel().1);
            let end = {
                let health = self.service.health.clone();
                let container = running.container().map(str::to_owned);
                let restarts_nothing = self.service.restart.mode == RestartMode::No;
                let watch_health = watch_health(
                    &self,
                    checker.as_ref(),
                    health.as_ref(),
                    container.as_deref(),
                    &mut attempt,
                    restarts_nothing,
                );
                let mut stop = self.stop.clone();
                let end = tokio::select! {
                    biased;
                    () = stop_requested(&mut stop) => End::Stop,
                    exit = running.wait() => End::Exited(exit),
                    Control::Restart { reason } = next_control(&mut controls) => End::Restart(reason),
                    reason = watch_health => End::Unhealthy(reason),
                };
                end
            };
            self.controls = controls;
            // A process shutting down fails its probe (its port closes) just before its parent
            // can reap it: an exit that follows at once is what happened, and is reported so.
            let end = match end {
                End::Unhealthy(reason) => {
                    match tokio::time::timeout(EXIT_AFTER_FAILED_PROBE, running.wait()).await {
                        Ok(exit) => End::Exited(exit),
                        Err(_) => End::Unhealthy(reason),
                    }
                }
                other => other,
            };
            ever_ready |= attempt.ready_at.is_some();
            let stayed_ready = attempt.ready_at.map(|at| at.elapsed());

            let (reason, restart) = match end {
                End::Stop => {
                    let how = running.stop(self.service.stop_grace).await;
                    self.send(Update::Stopped(how));
                    return;
                }
                End::Restart(reason) => {
                    running.stop(self.service.stop_grace).await;
                    self.event(Event::Restarting { reason });
                    continue;
                }
                End::Exited(exit) => {
                    self.event(Event::Exited {
                        description: exit.description.clone(),
                    });
                    if exit.success {
                        self.event(Event::Completed);
                    }
                    let restart = match self.service.restart.mode {
                        RestartMode::No => false,
                        RestartMode::OnFailure => !exit.success,
                        RestartMode::Always => true,
                    };
                    if !restart && exit.success {
                        return self.idle_until_stop().await;
                    }
                    (format!("exited ({})", exit.description), restart)
                }
                End::Unhealthy(reason) => {
                    self.event(Event::Unhealthy {
                        reason: reason.clone(),
                    });
                    running.stop(self.service.stop_grace).await;
                    (
                        format!("unhealthy ({reason})"),
                        self.service.restart.mode != RestartMode::No,
                    )
                }
            };
            if !restart {
                self.event(Event::Failed {
                    reason: format!(
                        "{reason}; restart policy is {}",
                        self.service.restart.mode.as_str()
                    ),
                });
                return self.idle_until_stop().await;
            }
            restarts = restarts_in_a_row(restarts, stayed_ready, &self.service.restart);
            if restarts >= self.service.restart.max_restarts {
                self.event(Event::Failed {
                    reason: format!(
                        "{reason}; gave up after {restarts} restart{}",
                        if restarts == 1 { "" } else { "s" }
                    ),
                });
                return self.idle_until_stop().await;
            }
            restarts += 1;
            let delay = self
                .service
                .restart
                .delay(restarts, rand::random_range(0.5..=1.0));
            self.event(Event::Restarting {
                reason: format!("{reason}; restart {restarts} in {}", fmt_duration(delay)),
            });
            let mut stop = self.stop.clone();
            tokio::select! {
                () = stop_requested(&mut stop) => return self.idle_until_stop().await,
                () = tokio::time::sleep(delay) => {}
                // Dependencies back: no reason to wait out the backoff.
                _ = next_control(&mut self.controls) => {}
            }
        }
    }
}

/// How long a service whose probe made it unhealthy is given to exit before it is taken for
/// unhealthy: a process that is exiting closes its port before its parent can reap it.
const EXIT_AFTER_FAILED_PROBE: Duration = Duration::from_millis(250);

/// One launch of a service's process, as its health watch sees it.
struct Attempt {
    launched: Instant,
    /// When this attempt turned ready.
    ready_at: Option<Instant>,
    /// Whether an earlier attempt of the service was ever ready.
    earlier_was_ready: bool,
}

impl Attempt {
    /// Past its start: this attempt or an earlier one was ready. A restart policy of `no` then
    /// leaves an unhealthy process running rather than failing it (so a process that exits is
    /// reported by its exit, not by the probe that saw its port close first).
    fn past_start(&self) -> bool {
        self.earlier_was_ready || self.ready_at.is_some()
    }
}

/// Probes until the service turns unhealthy, and returns why; never returns for a service
/// without a probe. Probes every `start_interval` until the service first passes (then reports
/// `Healthy` and sets the attempt's `ready_at`), every `interval` after. Failures count once the
/// start period is over or the service has passed; `retries` of them in a row make it unhealthy.
/// For a service past its start whose policy `restarts_nothing`, that is reported and probing
/// goes on, so that it is seen to recover.
async fn watch_health(
    runner: &Runner,
    checker: Option<&Checker>,
    health: Option<&Health>,
    container: Option<&str>,
    attempt: &mut Attempt,
    restarts_nothing: bool,
) -> String {
    let (Some(checker), Some(health)) = (checker, health) else {
        return std::future::pending().await;
    };
    let mut failures = 0u32;
    let mut healthy = false;
    loop {
        let (pass, message) = probe_once(checker, health.timeout, container).await;
        if pass {
            if !healthy {
                healthy = true;
                attempt.ready_at.get_or_insert_with(Instant::now);
                runner.event(Event::Healthy);
            }
            failures = 0;
        } else {
            let in_start_period =
                attempt.ready_at.is_none() && attempt.launched.elapsed() < health.start_period;
            if !in_start_period {
                failures += 1;
            }
            if failures == health.retries {
                if !(restarts_nothing && attempt.past_start()) {
                    return message;
                }
                healthy = false;
                runner.event(Event::Unhealthy { reason: message });
            }
        }
        let pause = if attempt.ready_at.is_some() {
            health.interval
        } else {
            health.start_interval
        };
        tokio::time::sleep(pause).await;
    }
}

/// One probe, bounded by `timeout`: (passed, message). A warning passes.
async fn probe_once(
    checker: &Checker,
    timeout: Duration,
    container: Option<&str>,
) -> (bool, String) {
    match checker {
        Checker::Probe(probe) => match tokio::time::timeout(timeout, probe.probe()).await {
            Ok(report) => (
                report.verdict != Verdict::Fail,
                match report.error {
                    Some(error) => format!("{}: {error}", report.message),
                    None => report.message,
                },
            ),
            Err(_) => (
                false,
                format!("probe timed out after {}", fmt_duration(timeout)),
            ),
        },
        Checker::Container => {
            match tokio::time::timeout(timeout, container_health(container)).await {
                Ok(Ok(status)) => (status == "healthy", format!("container is {status}")),
                Ok(Err(e)) => (false, e.to_string()),
                Err(_) => (
                    false,
                    format!("docker inspect timed out after {}", fmt_duration(timeout)),
                ),
            }
        }
    }
}

/// Resolves once the stop signal is `true`. A dropped sender means the driver detached and left
/// the service running: that never resolves.
async fn stop_requested(stop: &mut StopSignal) {
    // The `Ref` it returns must not be held across an await.
    if stop.wait_for(|s| *s).await.map(|_| ()).is_err() {
        std::future::pending::<()>().await;
    }
}

pub use vigil_text::fmt_duration;
