//! `vigil down`: stopping a stack that `vigil up` started, from its state file, in reverse
//! dependency order (SIGTERM, grace period, SIGKILL), reporting anything that would not stop.
//!
//! When the `vigil up` supervising the stack (attached, or in the background after `-d`) still
//! runs, it is asked to stop first (SIGTERM, bounded wait) and does the stopping itself, in order;
//! whatever it leaves running — everything, when it was killed — is stopped here, by the process
//! ids in the state file, each checked by its start time so that a reused pid is never
//! signalled. A service the
//! state file records as registered (see [`crate::register`]) is deregistered just before it is
//! stopped.

use std::io;
use std::path::Path;
use std::time::Duration;

use rustix::process::{kill_process, Pid, Signal};
use vigil_probe::limits;

use crate::compose::Project;
use crate::process::{self, Stopped};
use crate::register::{Registry, RegistryOutcome};
use crate::state::{ServiceState, State};

/// How one service's stop ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StopResult {
    /// The service.
    pub name: String,
    /// How it ended.
    pub stopped: Stopped,
    /// How its deregistration went, when it was still registered.
    pub deregistered: Option<RegistryOutcome>,
}

/// Stops the stack whose state is in `dir`, deregistering from `registry` what is registered;
/// calls `each` as each service's stop ends. Returns every result, in stop order; an empty list
/// when nothing was running. The state file is removed unless something would not stop.
pub async fn down(
    dir: &Path,
    registry: &dyn Registry,
    mut each: impl FnMut(&StopResult),
) -> io::Result<Vec<StopResult>> {
    let Some(mut state) = State::read(dir)? else {
        return Ok(Vec::new());
    };
    if let Some(supervisor) = state.supervisor {
        // What an earlier stop recorded says nothing of this one.
        let _ = State::take_stops(dir);
        if process::alive(supervisor.pid, supervisor.start_time) {
            if let Some(pid) = i32::try_from(supervisor.pid).ok().and_then(Pid::from_raw) {
                let _ = kill_process(pid, Signal::TERM);
            }
            let limit = state
                .services
                .iter()
                .fold(Duration::from_secs(10), |limit, s| {
                    limit
                        .saturating_add(stop_grace(s))
                        .saturating_add(Duration::from_secs(5))
                });
            let stopped = process::wait_gone(supervisor.pid, supervisor.start_time, limit).await;
            if !stopped {
                return Err(io::Error::other(format!(
                    "vigil up (pid {}) did not stop within {}s",
                    supervisor.pid,
                    limit.as_secs()
                )));
            }
        }
        match State::read(dir)? {
            Some(left) => state = left,
            None => {
                if let Some(stops) = State::take_stops(dir) {
                    let results: Vec<StopResult> = stops
                        .into_iter()
                        .map(|stop| StopResult {
                            name: stop.name,
                            stopped: stop.stopped,
                            deregistered: stop.deregistered,
                        })
                        .collect();
                    results.iter().for_each(&mut each);
                    return Ok(results);
                }
                // The supervisor stopped everything and removed the state file. It stopped them
                // deepest dependants first: list them in that order.
                let mut services: Vec<&ServiceState> = state.services.iter().collect();
                services.sort_by_key(|s| std::cmp::Reverse(s.level));
                let results: Vec<StopResult> = services
                    .into_iter()
                    .map(|s| StopResult {
                        name: s.name.clone(),
                        stopped: Stopped::Terminated,
                        deregistered: None,
                    })
                    .collect();
                results.iter().for_each(&mut each);
                return Ok(results);
            }
        }
    }

    let project = match &state.compose {
        Some(c) => Some(Project::existing(&c.file, &c.project).await?),
        None => None,
    };
    let deepest = state.services.iter().map(|s| s.level).max().unwrap_or(0);
    let mut results = Vec::new();
    for level in (0..=deepest).rev() {
        let mut batch = tokio::task::JoinSet::new();
        for service in state.services.iter().filter(|s| s.level == level) {
            let deregistered = match &service.registered {
                Some(instance) => Some(match registry.deregister(instance).await {
                    Ok(()) => RegistryOutcome::Deregistered(instance.clone()),
                    Err(why) => RegistryOutcome::NotDeregistered(instance.clone(), why),
                }),
                None => None,
            };
            let (service, project) = (service.clone(), project.clone());
            batch.spawn(async move {
                let stopped = stop_one(&service, project.as_ref()).await;
                StopResult {
                    name: service.name,
                    stopped,
                    deregistered,
                }
            });
        }
        while let Some(joined) = batch.join_next().await {
            let result = joined.map_err(io::Error::other)?;
            each(&result);
            results.push(result);
        }
    }
    if let Some(project) = &project {
        project.remove().await?;
    }
    if results.iter().all(|r| r.stopped != Stopped::Stuck) {
        State::remove(dir)?;
    } else {
        state.supervisor = None;
        state.write(dir)?;
    }
    Ok(results)
}

/// A service's `stop_grace` as the state file says, held to the stack file's range: the file
/// is read back from disk, where anyone may have edited it.
fn stop_grace(service: &ServiceState) -> Duration {
    Duration::from_millis(service.stop_grace_ms).min(limits::STOP_GRACE.max)
}

async fn stop_one(service: &ServiceState, project: Option<&Project>) -> Stopped {
    let grace = stop_grace(service);
    match (&service.process, project) {
        (Some(p), _) => process::stop_group(p.pid, p.start_time, grace).await,
        (None, Some(project)) => project.stop(&service.name, grace).await,
        (None, None) => Stopped::Terminated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_grace_edited_into_the_state_file_is_held_to_its_range() {
        let service = ServiceState {
            name: "a".into(),
            level: 0,
            stop_grace_ms: u64::MAX,
            process: None,
            container: None,
            registered: None,
            started_at: None,
            status: crate::supervise::Status::default(),
        };
        assert_eq!(stop_grace(&service), limits::STOP_GRACE.max);
    }
}
