//! Where services run: local processes, or compose services in docker. A [`Backend`] launches a
//! service and hands back a [`Running`] handle to wait on and stop, whichever kind it is.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use tokio::process::Child;

use crate::compose::{self, Project};
use crate::process::{self, Stopped};
use crate::stack::{Launch, Service};

/// Launches services.
#[derive(Debug)]
pub enum Backend {
    /// Local processes; each service's output is appended to `<log_dir>/<service>.log`.
    Process {
        /// Where logs go; `None` discards output.
        log_dir: Option<PathBuf>,
    },
    /// Compose services of one project, through docker compose and the Docker Engine.
    Compose(Project),
}

/// How a service ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exit {
    /// Status 0.
    pub success: bool,
    /// `status 1`, `signal 9`, ... for messages.
    pub description: String,
}

impl Exit {
    fn from_status(status: io::Result<std::process::ExitStatus>) -> Exit {
        use std::os::unix::process::ExitStatusExt;
        match status {
            Ok(status) => Exit {
                success: status.success(),
                description: match (status.code(), status.signal()) {
                    (Some(code), _) => format!("status {code}"),
                    (None, Some(signal)) => format!("signal {signal}"),
                    (None, None) => "unknown status".to_owned(),
                },
            },
            Err(e) => Exit {
                success: false,
                description: format!("cannot wait for it: {e}"),
            },
        }
    }
}

/// A launched service.
#[derive(Debug)]
pub enum Running {
    /// A local process group.
    Process(Child),
    /// A compose service's container, watched by a `docker wait` child.
    Container {
        /// The project it belongs to.
        project: Project,
        /// The compose service.
        service: String,
        /// The container id.
        id: String,
        /// `docker wait ID`: exits when the container does, printing its status.
        waiter: Child,
    },
}

impl Backend {
    /// Starts one service.
    pub async fn launch(&self, service: &Service) -> io::Result<Running> {
        match (self, &service.launch) {
            (Backend::Process { log_dir }, Launch::Command(command)) => {
                let log = log_dir
                    .as_ref()
                    .map(|dir| dir.join(format!("{}.log", service.name)));
                process::spawn(command, log.as_deref()).map(Running::Process)
            }
            (Backend::Compose(project), Launch::Compose { service: name }) => {
                let id = project.start(name).await?;
                let waiter = project.wait(&id)?;
                Ok(Running::Container {
                    project: project.clone(),
                    service: name.clone(),
                    id,
                    waiter,
                })
            }
            (Backend::Process { .. }, Launch::Compose { service }) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("compose service {service} needs `vigil up --compose`"),
            )),
            (Backend::Compose(_), Launch::Command(_)) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a compose stack runs compose services only",
            )),
        }
    }
}

impl Running {
    /// The process group leader's PID, for local processes.
    pub fn pid(&self) -> Option<u32> {
        match self {
            Running::Process(child) => child.id(),
            Running::Container { .. } => None,
        }
    }

    /// The container id, for compose services.
    pub fn container(&self) -> Option<&str> {
        match self {
            Running::Process(_) => None,
            Running::Container { id, .. } => Some(id),
        }
    }

    /// Waits until it exits.
    pub async fn wait(&mut self) -> Exit {
        match self {
            Running::Process(child) => Exit::from_status(child.wait().await),
            Running::Container { waiter, .. } => compose::exit_of(waiter).await,
        }
    }

    /// Stops it: SIGTERM, `grace`, SIGKILL.
    pub async fn stop(&mut self, grace: Duration) -> Stopped {
        match self {
            Running::Process(child) => process::stop_child(child, grace).await,
            Running::Container {
                project,
                service,
                waiter,
                ..
            } => {
                let stopped = project.stop(service, grace).await;
                // The waiter ends with the container; a waiter that outlives a failed stop is
                // killed so no `docker wait` is left behind.
                let _ = waiter.start_kill();
                let _ = waiter.wait().await;
                stopped
            }
        }
    }
}

/// The container's health status (`starting`, `healthy`, `unhealthy`), or why it is unknown.
pub async fn container_health(
    container: Option<&str>,
) -> Result<String, compose::HealthStatusError> {
    match container {
        Some(id) => compose::health_status(id).await,
        None => Err(compose::HealthStatusError::NoContainer),
    }
}
