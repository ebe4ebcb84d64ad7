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
    /// Worth a log line after startup (a restart, turning unhealthy, recovering).
    Note(String),
    /// The runner stopped the service as told and ended.
    Stopped(Stopped),
}

/// A runner's update, with the service and the moment it happened.
pub type Message = (ServiceId, Instant, Update);

/// How a runner is asked to stop: the driver sets the value to `true`.
pub type StopSignal = watch::Receiver<bool>;

/// What is probed, built once per runner.
enum Checker {
    Probe(Arc<dyn Probe>),
    Container,
}

/// Why a running service ended.
enum End {
    Exited(Exit),
    Unhealthy(String),
    Stop,
}

struct Runner {
    id: ServiceId,
    service: Service,
    backend: Arc<Backend>,
    updates: mpsc::UnboundedSender<Message>,
    stop: StopSignal,
}

/// Runs one service until the stop signal: the runner's whole life. Spawn it as a task.
pub async fn run(
    id: ServiceId,
    service: Service,
    backend: Arc<Backend>,
    updates: mpsc::UnboundedSender<Message>,
    stop: StopSignal,
) {
    Runner {
        id,
        service,
        backend,
        updates,
        stop,
    }
    .run()
    .await;
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
        let mut restarts = 0u32;
        let mut ready = false;
        loop {
            if self.stop_requested() {
                return self.idle_until_stop().await;
            }
            let mut running = match self.backend.launch(&self.service).await {
                Ok(running) => running,
                Err(e) => {
                    self.give_up(format!("cannot start: {e}"), ready);
                    return self.idle_until_stop().await;
                }
            };
            self.send(Update::Running {
                pid: running.pid(),
                start_time: running.pid().and_then(crate::process::start_time),
                container: running.container().map(str::to_owned),
            });
            self.event(Event::Started);
            if self.service.health.is_none() {
                ready = true;
            }
            let launched = Instant::now();

            let end = {
                let health = self.service.health.clone();
                let container = running.container().map(str::to_owned);
                let watch_health = watch_health(
                    &self,
                    checker.as_ref(),
                    health.as_ref(),
                    container.as_deref(),
                    launched,
                    &mut ready,
                );
                let mut stop = self.stop.clone();
                tokio::select! {
                    biased;
                    () = stop_requested(&mut stop) => End::Stop,
                    exit = running.wait() => End::Exited(exit),
                    reason = watch_health => End::Unhealthy(reason),
                }
            };

            let (reason, restart, clean_exit) = match end {
                End::Stop => {
                    let how = running.stop(self.service.stop_grace).await;
                    self.send(Update::Stopped(how));
                    return;
                }
                End::Exited(exit) => {
                    if exit.success {
                        self.event(Event::Completed);
                    }
                    let restart = match self.service.restart.mode {
                        RestartMode::No => false,
                        RestartMode::OnFailure => !exit.success,
                        RestartMode::Always => true,
                    };
                    (
                        format!("exited ({})", exit.description),
                        restart,
                        exit.success,
                    )
                }
                End::Unhealthy(reason) => {
                    running.stop(self.service.stop_grace).await;
                    (
                        format!("unhealthy ({reason})"),
                        self.service.restart.mode != RestartMode::No,
                        false,
                    )
                }
            };
            if !restart {
                if clean_exit {
                    if ready {
                        self.send(Update::Note(reason));
                    }
                } else {
                    self.give_up(
                        format!(
                            "{reason}; restart policy is {}",
                            self.service.restart.mode.as_str()
                        ),
                        ready,
                    );
                }
                return self.idle_until_stop().await;
            }
            if restarts >= self.service.restart.max_restarts {
                self.give_up(
                    format!(
                        "{reason}; gave up after {restarts} restart{}",
                        if restarts == 1 { "" } else { "s" }
                    ),
                    ready,
                );
                return self.idle_until_stop().await;
            }
            restarts += 1;
            let delay = self
                .service
                .restart
                .delay(restarts, rand::random_range(0.5..=1.0));
            let message = format!("{reason}; restart {restarts} in {}", fmt_duration(delay));
            if ready {
                self.send(Update::Note(message.clone()));
            }
            self.event(Event::Restarting { reason: message });
            let mut stop = self.stop.clone();
            tokio::select! {
                () = stop_requested(&mut stop) => return self.idle_until_stop().await,
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// Reports that the service will not run again: a failure during startup, a note after it.
    fn give_up(&self, reason: String, ready: bool) {
        if ready {
            self.send(Update::Note(format!("{reason}; not restarted")));
        }
        self.event(Event::Failed { reason });
    }
}

/// Probes until the service turns unhealthy, and returns why; never returns for a service
/// without a probe. Reports `Healthy` on the first pass, then keeps probing at the normal
/// interval and notes changes, without ending: after startup an unhealthy service is reported,
/// not restarted.
async fn watch_health(
    runner: &Runner,
    checker: Option<&Checker>,
    health: Option<&Health>,
    container: Option<&str>,
    launched: Instant,
    ready: &mut bool,
) -> String {
    let (Some(checker), Some(health)) = (checker, health) else {
        return std::future::pending().await;
    };
    let mut failures = 0u32;
    loop {
        let (pass, message) = probe_once(checker, health.timeout, container).await;
        if pass {
            if !*ready {
                *ready = true;
                runner.event(Event::Healthy);
            } else if failures >= health.retries {
                runner.send(Update::Note(format!("healthy again: {message}")));
            }
            failures = 0;
        } else {
            let in_start_period = !*ready && launched.elapsed() < health.start_period;
            if !in_start_period {
                failures += 1;
            }
            if failures == health.retries {
                if !*ready {
                    return message;
                }
                runner.send(Update::Note(format!("unhealthy: {message}")));
            }
        }
        let pause = if *ready {
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
