//! Compose files: reading a `docker-compose.yml` into a [`Stack`] (services, `depends_on`
//! conditions, healthchecks, restart policies) and driving its services through docker compose and
//! the Docker Engine.
//!
//! Containers are created once for the whole project (`docker-compose up --no-start`, which also
//! creates its networks), then each is started with `docker start` the moment the scheduler releases
//! it, watched with `docker wait`, judged healthy by a vigil probe (`x-vigil-probe: URL` on the
//! service) or else by the container's own `healthcheck` status, and stopped with `docker stop`.
//! Groups are declared under a top-level `x-vigil-groups` extension and depended on in a service's
//! `x-vigil-depends_on`, which replaces its `depends_on` for vigil (compose itself would reject a
//! group in `depends_on`, so there it lists every member). A service's
//! `x-vigil-on_dependency_unhealthy` (`restart`, `wait`, `ignore`) is the stack file's
//! `on_dependency_unhealthy`:
//!
//! ```yaml
//! x-vigil-groups:
//!   masters: { members: [master-1, master-2, master-3], policy: quorum }
//! services:
//!   master-1:
//!     image: vigil:scratch
//!     healthcheck: { test: ["CMD", "/vigil", "probe", "tcp://127.0.0.1:9421"], interval: 500ms }
//!   chunk-1:
//!     depends_on: { master-1: { condition: service_healthy }, master-2: …, master-3: … }
//!     x-vigil-depends_on: { masters: { condition: service_healthy } }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_norway::Value;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use vigil_probe::{ProbeOptions, ProbeSpec};

use crate::error::{unreadable, Errors, StackErrors};
use crate::graph;
use crate::launch::Exit;
use crate::process::Stopped;
use crate::stack::{
    Condition, Dependency, Group, GroupId, GroupPolicy, Health, HealthCheck, Launch,
    OnDependencyUnhealthy, RestartMode, RestartPolicy, Service, ServiceId, Stack, Target,
};
use vigil_probe::{limits, DurationLimit};

/// Reads a compose file into a stack.
pub fn load(path: &Path) -> Result<Stack, StackErrors> {
    let file = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|e| unreadable(&file, &e))?;
    parse(&source, &file)
}

/// The parts of a compose file vigil reads, each entry read on its own.
struct RawCompose {
    services: BTreeMap<String, RawService>,
    groups: BTreeMap<String, RawGroup>,
}

#[derive(Deserialize)]
struct RawService {
    #[serde(default)]
    depends_on: Option<RawDepends>,
    /// vigil's dependencies when they differ from compose's: on `x-vigil-groups` groups.
    #[serde(default, rename = "x-vigil-depends_on")]
    vigil_depends_on: Option<RawDepends>,
    healthcheck: Option<RawHealthcheck>,
    restart: Option<String>,
    #[serde(rename = "x-vigil-probe")]
    probe: Option<String>,
    #[serde(rename = "stop_grace_period")]
    stop_grace: Option<String>,
    #[serde(rename = "x-vigil-on_dependency_unhealthy")]
    on_dependency_unhealthy: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawDepends {
    List(Vec<String>),
    Map(BTreeMap<String, RawCondition>),
}

#[derive(Deserialize)]
struct RawCondition {
    condition: Option<String>,
}

#[derive(Deserialize)]
struct RawHealthcheck {
    #[serde(default)]
    disable: bool,
    interval: Option<String>,
    timeout: Option<String>,
    retries: Option<u32>,
    start_period: Option<String>,
    start_interval: Option<String>,
}

#[derive(Deserialize)]
struct RawGroup {
    members: Vec<String>,
    #[serde(default)]
    policy: Option<Value>,
}

/// The 1-based line and column of the first `needle` at or after line `from`, for errors about
/// values the YAML parser does not locate.
fn locate(source: &str, from: usize, needle: &str) -> (usize, usize) {
    for (i, line) in source.lines().enumerate().skip(from.saturating_sub(1)) {
        if let Some(col) = line.find(needle) {
            return (i + 1, line[..col].chars().count() + 1);
        }
    }
    (from.max(1), 1)
}

/// The line of `  name:` (a key of a mapping), or 1.
fn key_line(source: &str, name: &str) -> usize {
    let key = format!("{name}:");
    source
        .lines()
        .position(|line| line.trim_start().starts_with(&key))
        .map_or(1, |i| i + 1)
}

/// The entries of the top-level mapping `key` (`services`, `x-vigil-groups`), each read on its
/// own with every key of the wrong type reported ([`read_entry`]); `noun` names one in errors.
fn entries<T: DeserializeOwned>(
    document: &Value,
    key: &str,
    noun: &str,
    source: &str,
    errors: &mut Errors<'_>,
) -> BTreeMap<String, T> {
    let mut read = BTreeMap::new();
    let Some(value) = document.get(key).filter(|value| !value.is_null()) else {
        return read;
    };
    let Value::Mapping(entries) = value else {
        let (line, column) = locate(source, key_line(source, key), key);
        errors.at_line(
            line,
            column,
            format!("{key} must be a mapping of names to {noun}s"),
        );
        return read;
    };
    for (name, entry) in entries {
        let Some(name) = name.as_str() else {
            let (line, column) = locate(source, key_line(source, key), key);
            errors.at_line(
                line,
                column,
                format!("{key}: each {noun} name must be a string"),
            );
            continue;
        };
        if let Some(value) = read_entry(entry, &format!("{noun} {name}"), name, source, errors) {
            read.insert(name.to_owned(), value);
        }
    }
    read
}

/// Reads one entry, reporting each key whose value is wrong at its line and reading the rest
/// again without it, so one mistake never hides the next. YAML values carry no position: the key
/// a message is about is the first one without which the message goes away.
fn read_entry<T: DeserializeOwned>(
    entry: &Value,
    what: &str,
    name: &str,
    source: &str,
    errors: &mut Errors<'_>,
) -> Option<T> {
    let at = key_line(source, name);
    let Value::Mapping(mapping) = entry else {
        let (line, column) = locate(source, at, name);
        errors.at_line(
            line,
            column,
            format!("{what} must be a mapping of keys to values"),
        );
        return None;
    };
    let read = |mapping: &serde_norway::Mapping| {
        serde_norway::from_value::<T>(Value::Mapping(mapping.clone())).map_err(|e| e.to_string())
    };
    let mut mapping = mapping.clone();
    loop {
        let message = match read(&mapping) {
            Ok(value) => return Some(value),
            Err(message) => message,
        };
        let culprit = mapping
            .keys()
            .find(|key| {
                let mut without = mapping.clone();
                without.remove(*key);
                read(&without).err().is_none_or(|other| other != message)
            })
            .cloned();
        let Some(key) = culprit else {
            let (line, column) = locate(source, at, name);
            errors.at_line(line, column, format!("{what}: {message}"));
            return None;
        };
        let key_name = key.as_str().unwrap_or_default();
        let (line, column) = locate(source, at, key_name);
        errors.at_line(line, column, format!("{what}: {key_name}: {message}"));
        mapping.remove(&key);
    }
}

/// Validates compose text; `file` names it in errors.
pub fn parse(source: &str, file: &str) -> Result<Stack, StackErrors> {
    let mut errors = Errors::new(source, file);
    let document: Value = match serde_norway::from_str(source) {
        Ok(document) => document,
        Err(e) => {
            let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
            errors.at_line(line, column, e.to_string());
            return Err(errors.into_errors());
        }
    };
    if !matches!(document, Value::Mapping(_) | Value::Null) {
        errors.at_line(
            1,
            1,
            "a compose file is a mapping with `services`, e.g. services: { api: { image: app } }",
        );
        return Err(errors.into_errors());
    }
    let raw = RawCompose {
        services: entries(&document, "services", "service", source, &mut errors),
        groups: entries(&document, "x-vigil-groups", "group", source, &mut errors),
    };
    let names: Vec<String> = raw.services.keys().cloned().collect();
    let group_names: Vec<String> = raw.groups.keys().cloned().collect();
    let resolve = |name: &str| {
        names
            .iter()
            .position(|n| n == name)
            .map(|i| Target::Service(ServiceId(i)))
            .or_else(|| {
                group_names
                    .iter()
                    .position(|n| n == name)
                    .map(|i| Target::Group(GroupId(i)))
            })
    };

    let mut services = Vec::new();
    for (name, raw_service) in &raw.services {
        let at = key_line(source, name);
        let mut report = |needle: &str, message: String| {
            let (line, column) = locate(source, at, needle);
            errors.at_line(line, column, message);
        };
        let duration = |value: &Option<String>,
                        limit: DurationLimit,
                        default: Duration,
                        report: &mut dyn FnMut(&str, String)| {
            value.as_deref().map_or(default, |text| {
                limit.parse(text).unwrap_or_else(|message| {
                    report(text, format!("service {name}: {message}"));
                    default
                })
            })
        };
        let mut depends_on = Vec::new();
        // vigil's own view of the dependencies, when given, replaces what compose is told.
        let depends = raw_service
            .vigil_depends_on
            .as_ref()
            .or(raw_service.depends_on.as_ref());
        let entries: Vec<(String, Option<String>)> = match depends {
            None => Vec::new(),
            Some(RawDepends::List(list)) => list.iter().map(|n| (n.clone(), None)).collect(),
            Some(RawDepends::Map(map)) => map
                .iter()
                .map(|(n, c)| (n.clone(), c.condition.clone()))
                .collect(),
        };
        for (target, condition) in entries {
            let condition = match condition.as_deref() {
                None | Some("service_started") => Condition::Started,
                Some("service_healthy") => Condition::Healthy,
                Some("service_completed_successfully") => Condition::Completed,
                Some(other) => {
                    report(
                        other,
                        format!("service {name}: unknown condition \"{other}\"; expected service_started, service_healthy or service_completed_successfully"),
                    );
                    continue;
                }
            };
            match resolve(&target) {
                Some(t) if t != Target::Service(ServiceId(services.len())) => {
                    depends_on.push(Dependency {
                        target: t,
                        condition,
                    });
                }
                _ => report(
                    &target,
                    format!("service {name} depends on \"{target}\", which is no other service or x-vigil-groups group"),
                ),
            }
        }
        let health = match (&raw_service.probe, &raw_service.healthcheck) {
            (None, None) => None,
            (_, Some(h)) if h.disable && raw_service.probe.is_none() => None,
            (probe, healthcheck) => {
                let check = match probe {
                    Some(target) => match ProbeSpec::parse(target, &ProbeOptions::default()) {
                        Ok(spec) => HealthCheck::Probe(spec),
                        Err(e) => {
                            report(target, format!("service {name}: x-vigil-probe: {e}"));
                            HealthCheck::Container
                        }
                    },
                    None => HealthCheck::Container,
                };
                let none = RawHealthcheck {
                    disable: false,
                    interval: None,
                    timeout: None,
                    retries: None,
                    start_period: None,
                    start_interval: None,
                };
                let h = healthcheck.as_ref().unwrap_or(&none);
                Some(Health {
                    check,
                    interval: duration(
                        &h.interval,
                        limits::STACK_INTERVAL,
                        Duration::from_secs(5),
                        &mut report,
                    ),
                    timeout: duration(
                        &h.timeout,
                        limits::STACK_TIMEOUT,
                        Duration::from_secs(2),
                        &mut report,
                    ),
                    retries: h.retries.unwrap_or(3).max(1),
                    start_period: duration(
                        &h.start_period,
                        limits::STACK_START_PERIOD,
                        Duration::from_secs(30),
                        &mut report,
                    ),
                    start_interval: duration(
                        &h.start_interval,
                        limits::STACK_START_INTERVAL,
                        Duration::from_millis(100),
                        &mut report,
                    ),
                })
            }
        };
        let mode = match raw_service.restart.as_deref() {
            None | Some("no") => RestartMode::No,
            Some("on-failure") => RestartMode::OnFailure,
            Some("always" | "unless-stopped") => RestartMode::Always,
            Some(other) => {
                report(
                    other,
                    format!("service {name}: unknown restart policy \"{other}\"; expected no, on-failure, always or unless-stopped"),
                );
                RestartMode::No
            }
        };
        let stop_grace = duration(
            &raw_service.stop_grace,
            DurationLimit {
                setting: "stop_grace_period",
                ..limits::STOP_GRACE
            },
            Duration::from_secs(10),
            &mut report,
        );
        let on_dependency_unhealthy = match raw_service.on_dependency_unhealthy.as_deref() {
            None => OnDependencyUnhealthy::default(),
            Some(text) => OnDependencyUnhealthy::parse(text).unwrap_or_else(|| {
                report(
                    text,
                    format!("service {name}: unknown x-vigil-on_dependency_unhealthy \"{text}\"; expected restart, wait or ignore"),
                );
                OnDependencyUnhealthy::default()
            }),
        };
        services.push(Service {
            name: name.clone(),
            launch: Launch::Compose {
                service: name.clone(),
            },
            health,
            depends_on,
            restart: RestartPolicy {
                mode,
                ..RestartPolicy::default()
            },
            stop_grace,
            // Compose files register nothing: a stack file's `register` has no compose form.
            register: None,
            on_dependency_unhealthy,
        });
    }

    let mut groups = Vec::new();
    for (name, raw_group) in &raw.groups {
        let at = key_line(source, name);
        let mut members = Vec::new();
        for member in &raw_group.members {
            match names.iter().position(|n| n == member) {
                Some(i) => members.push(ServiceId(i)),
                None => {
                    let (line, column) = locate(source, at, member);
                    errors.at_line(
                        line,
                        column,
                        format!("group {name} has member \"{member}\", which is no service"),
                    );
                }
            }
        }
        let policy = match &raw_group.policy {
            None => Some(GroupPolicy::All),
            Some(Value::String(s)) => match s.as_str() {
                "all" => Some(GroupPolicy::All),
                "quorum" => Some(GroupPolicy::Quorum),
                "optional" => Some(GroupPolicy::Optional),
                _ => None,
            },
            Some(Value::Mapping(m)) => m
                .get("min_healthy")
                .and_then(Value::as_u64)
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| (1..=raw_group.members.len()).contains(n))
                .map(GroupPolicy::MinHealthy),
            Some(_) => None,
        };
        let Some(policy) = policy else {
            let (line, column) = locate(source, at, "policy");
            errors.at_line(
                line,
                column,
                format!("group {name}: policy must be all, quorum, optional or {{ min_healthy: N }} with N between 1 and its member count"),
            );
            continue;
        };
        groups.push(Group {
            name: name.clone(),
            members,
            policy,
        });
    }
    if !errors.is_empty() {
        return Err(errors.into_errors());
    }
    let stack = Stack {
        services,
        groups,
        concurrency: None,
    };
    if let Some(cycle) = graph::find_cycle(&stack) {
        let first = cycle[0].name(&stack).to_owned();
        let (line, column) = locate(source, key_line(source, &first), &first);
        errors.at_line(
            line,
            column,
            format!(
                "dependency cycle: {}; nothing can start first",
                graph::describe_cycle(&stack, &cycle)
            ),
        );
        return Err(errors.into_errors());
    }
    Ok(stack)
}

/// One compose project: its file, its name and its containers (created up front).
#[derive(Clone, Debug)]
pub struct Project {
    /// The compose command: `docker-compose`, or `docker compose`.
    command: Arc<Vec<String>>,
    /// The compose file.
    pub file: PathBuf,
    /// The project name (`-p`).
    pub name: String,
    containers: Arc<HashMap<String, String>>,
}

/// The compose command on this machine: `docker-compose` if present, else `docker compose`.
/// `docker-compose` is looked up on `PATH` rather than run: starting the Python one just to ask
/// its version costs about 0.4 s of every `vigil up --compose`.
pub async fn compose_command() -> io::Result<Vec<String>> {
    if on_path("docker-compose") {
        return Ok(vec!["docker-compose".to_owned()]);
    }
    let plugin = Command::new("docker")
        .args(["compose", "version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success());
    if plugin {
        return Ok(vec!["docker".to_owned(), "compose".to_owned()]);
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        "neither docker-compose nor docker compose is installed",
    ))
}

/// Whether an executable file `name` is in a directory of `PATH`.
fn on_path(name: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(name))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// The project name compose itself would use for a file: its directory's name, lowercased, with
/// only letters, digits, `-` and `_`.
pub fn default_project_name(file: &Path) -> String {
    let dir = file
        .canonicalize()
        .ok()
        .and_then(|p| {
            p.parent()
                .and_then(|d| d.file_name())
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "vigil".to_owned());
    dir.to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .collect()
}

async fn output(program: &str, args: &[&str]) -> io::Result<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let mut message = format!("`{program} {}` failed", args.join(" "));
        let stderr = String::from_utf8_lossy(&out.stderr);
        if let Some(last) = stderr.lines().rfind(|l| !l.trim().is_empty()) {
            let _ = write!(message, ": {}", last.trim());
        }
        Err(io::Error::other(message))
    }
}

impl Project {
    /// Creates every container of the project without starting any (and its networks), then
    /// finds each service's container.
    pub async fn prepare(file: &Path, name: &str) -> io::Result<Project> {
        let command = compose_command().await?;
        let file_text = file.display().to_string();
        let mut project = Project {
            command: Arc::new(command),
            file: file.to_owned(),
            name: name.to_owned(),
            containers: Arc::new(HashMap::new()),
        };
        project
            .compose(&[
                "-f",
                &file_text,
                "-p",
                name,
                "up",
                "--no-start",
                "--no-build",
            ])
            .await?;
        project.containers = Arc::new(project.find_containers().await?);
        Ok(project)
    }

    /// The project as `vigil down` sees it: no containers created, only found.
    pub async fn existing(file: &Path, name: &str) -> io::Result<Project> {
        let mut project = Project {
            command: Arc::new(compose_command().await?),
            file: file.to_owned(),
            name: name.to_owned(),
            containers: Arc::new(HashMap::new()),
        };
        project.containers = Arc::new(project.find_containers().await?);
        Ok(project)
    }

    async fn compose(&self, args: &[&str]) -> io::Result<String> {
        let (program, base) = self
            .command
            .split_first()
            .ok_or_else(|| io::Error::other("no compose command"))?;
        let mut all: Vec<&str> = base.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        output(program, &all).await
    }

    async fn find_containers(&self) -> io::Result<HashMap<String, String>> {
        let filter = format!("label=com.docker.compose.project={}", self.name);
        let listing = output(
            "docker",
            &[
                "ps",
                "-a",
                "--no-trunc",
                "--filter",
                &filter,
                "--format",
                "{{.ID}}\t{{.Label \"com.docker.compose.service\"}}",
            ],
        )
        .await?;
        Ok(listing
            .lines()
            .filter_map(|line| line.split_once('\t'))
            .map(|(id, service)| (service.trim().to_owned(), id.trim().to_owned()))
            .collect())
    }

    /// The container of a service.
    pub fn container(&self, service: &str) -> io::Result<&str> {
        self.containers
            .get(service)
            .map(String::as_str)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("compose created no container for service {service}"),
                )
            })
    }

    /// Starts a service's container; returns its id.
    pub async fn start(&self, service: &str) -> io::Result<String> {
        let id = self.container(service)?.to_owned();
        output("docker", &["start", &id]).await?;
        Ok(id)
    }

    /// `docker wait ID`, as a child that exits with the container.
    pub fn wait(&self, id: &str) -> io::Result<Child> {
        Command::new("docker")
            .args(["wait", id])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
    }

    /// Stops a service's container: SIGTERM, `grace`, SIGKILL (docker stop's own sequence).
    pub async fn stop(&self, service: &str, grace: Duration) -> Stopped {
        let Ok(id) = self.container(service) else {
            return Stopped::Terminated;
        };
        let seconds = grace.as_secs().max(1).to_string();
        let started = tokio::time::Instant::now();
        if output("docker", &["stop", "-t", &seconds, id])
            .await
            .is_err()
        {
            return Stopped::Stuck;
        }
        match output("docker", &["inspect", "-f", "{{.State.Running}}", id]).await {
            Ok(running) if running.trim() == "false" => {
                if started.elapsed() >= grace {
                    Stopped::Killed
                } else {
                    Stopped::Terminated
                }
            }
            _ => Stopped::Stuck,
        }
    }

    /// Removes the project's containers and networks (`down`).
    pub async fn remove(&self) -> io::Result<()> {
        let file = self.file.display().to_string();
        self.compose(&["-f", &file, "-p", &self.name, "down", "-t", "1"])
            .await
            .map(|_| ())
    }
}

/// How a `docker wait` child ended: it prints the container's exit status.
pub async fn exit_of(waiter: &mut Child) -> Exit {
    let mut text = String::new();
    if let Some(stdout) = waiter.stdout.as_mut() {
        let _ = stdout.read_to_string(&mut text).await;
    }
    let _ = waiter.wait().await;
    match text.trim().parse::<i64>() {
        Ok(code) => Exit {
            success: code == 0,
            description: format!("status {code}"),
        },
        Err(_) => Exit {
            success: false,
            description: "docker wait failed".to_owned(),
        },
    }
}

/// Why a container's health status is unknown.
#[derive(Debug, thiserror::Error)]
pub enum HealthStatusError {
    /// `docker inspect` could not be run, or failed.
    #[error(transparent)]
    Inspect(#[from] io::Error),
    /// The service has no container (yet) to inspect.
    #[error("no container to inspect")]
    NoContainer,
}

/// A container's health status as `docker inspect` reports it.
pub async fn health_status(id: &str) -> Result<String, HealthStatusError> {
    output(
        "docker",
        &[
            "inspect",
            "-f",
            "{{if .State.Health}}{{.State.Health.Status}}{{else}}no healthcheck{{end}}",
            id,
        ],
    )
    .await
    .map(|s| s.trim().to_owned())
    .map_err(HealthStatusError::Inspect)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_on_path_without_running_them() {
        assert!(on_path("sh"));
        assert!(!on_path("vigil-no-such-program"));
    }
}
