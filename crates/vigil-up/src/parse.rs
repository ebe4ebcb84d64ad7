//! Stack files (TOML): reading one into a validated [`Stack`], every problem reported at
//! `file:line:column` before anything starts.
//!
//! ```toml
//! concurrency = 8                       # optional: most services starting at once
//!
//! [services.db]
//! command = ["postgres", "-D", "data"]  # argv, no shell
//! env = { PGPORT = "5433" }
//! workdir = "db"                        # relative to this file
//! restart = "on-failure"                # "no" | "on-failure" | "always"
//! max_restarts = 3
//! backoff = "200ms"
//! backoff_max = "10s"
//! stop_grace = "10s"
//! on_dependency_unhealthy = "wait"      # "restart" | "wait" | "ignore", after startup
//! [services.db.health]
//! probe = "tcp://127.0.0.1:5433"        # any vigil probe target
//! interval = "5s"
//! timeout = "2s"
//! retries = 3
//! start_period = "30s"
//! start_interval = "100ms"
//!
//! [services.api]
//! command = ["api", "--port", "8080"]
//! depends_on = { db = "healthy", migrate = "completed" }   # or a list: started
//! [services.api.register]               # registered with a vigil agent while it runs
//! name = "api"                          # default: the service's name
//! id = "api-1"                          # default: "NAME-ADDRESS:PORT", "api-127.0.0.1:8080"
//! address = "127.0.0.1"
//! port = 8080
//! tags = ["v2"]
//! deregister_critical_after = "1m"
//! [[services.api.register.checks]]      # none: a TCP check of address:port; [] opts out
//! probe = "http://127.0.0.1:8080/health"
//! interval = "2s"
//!
//! [groups.masters]
//! members = ["m1", "m2", "m3"]
//! policy = "quorum"                     # "all" | "quorum" | "optional" | { min_healthy = 2 }
//! ```
//!
//! A `health` table takes every option of a vigil probe ([`ProbeOptions`]: `expect_status`,
//! `headers`, `tls_ca`, `max_used`, ...) beside the keys above; its `timeout` is the health
//! check's.
//!
//! A `register` table is a service instance registration with the keys of vigil's
//! `POST /v1/services` (see [`crate::register`]). This parser reads no key of it: it hands the
//! table to the [`Reader`] given to [`parse_with`], which checks it as the registry will and
//! places its problems, and then refuses a second registration of the same instance. [`parse`]
//! and [`load`] take no `register` table.
//!
//! Each table (the top level, each service, its `health`, each group) is read on its own with
//! spans kept on every value that is checked afterwards, so an unknown key, a value of the wrong
//! type, an unknown name, a bad duration, a bad condition or a dependency cycle is reported at the
//! key or value that causes it, and all such problems are reported at once.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;
use vigil_probe::{limits, DurationLimit, ProbeOptions, ProbeSpec};
use vigil_text::table::{deserialize_table, Read};

use crate::error::{unreadable, Errors, StackErrors};
use crate::graph;
use crate::register::{Instance, Reader, Registration, Unsupported};
use crate::stack::{
    CommandSpec, Condition, Dependency, Group, GroupId, GroupPolicy, Health, HealthCheck, Launch,
    OnDependencyUnhealthy, RestartMode, RestartPolicy, Service, ServiceId, Stack, Target,
};

/// Reads and validates the stack file at `path`, which may have no `register` table.
pub fn load(path: &Path) -> Result<Stack, StackErrors> {
    load_with(path, &Unsupported)
}

/// Reads and validates the stack file at `path`, its `register` tables read by `reader`.
pub fn load_with(path: &Path, reader: &dyn Reader) -> Result<Stack, StackErrors> {
    let file = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|e| unreadable(&file, &e))?;
    let base = path.parent().unwrap_or(Path::new(""));
    parse_with(&source, &file, base, reader)
}

/// Validates stack file text, which may have no `register` table. `file` names it in errors;
/// relative `workdir`s are relative to `base`.
pub fn parse(source: &str, file: &str, base: &Path) -> Result<Stack, StackErrors> {
    parse_with(source, file, base, &Unsupported)
}

/// [`parse`], the `register` tables read by `reader`.
pub fn parse_with(
    source: &str,
    file: &str,
    base: &Path,
    reader: &dyn Reader,
) -> Result<Stack, StackErrors> {
    let mut errors = Errors::new(source, file);
    let (document, syntax_errors) = DeTable::parse_recoverable(source);
    if !syntax_errors.is_empty() {
        for error in &syntax_errors {
            errors.at(error.span().unwrap_or(0..0), error.message());
        }
        return Err(errors.into_errors());
    }
    let raw = read(document.get_ref(), 0..source.len(), reader, &mut errors);
    match build(raw, base, &mut errors) {
        Some(stack) if errors.is_empty() => Ok(stack),
        _ => Err(errors.into_errors()),
    }
}

/// The document's tables as read, each service and group with what was wrong in it.
struct RawStack {
    concurrency: Option<Spanned<i64>>,
    services: Vec<(Spanned<String>, Option<RawService>)>,
    groups: Vec<(Spanned<String>, Option<RawGroup>)>,
}

/// The top level, for its keys and their shapes; services and groups are read table by table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTop {
    concurrency: Option<Spanned<i64>>,
    #[serde(default, rename = "services")]
    _services: BTreeMap<String, IgnoredAny>,
    #[serde(default, rename = "groups")]
    _groups: BTreeMap<String, IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    command: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    workdir: Option<String>,
    compose_service: Option<Spanned<String>>,
    /// Read on its own ([`RawService::health_table`]); here so that it is a known key.
    #[serde(default, rename = "health")]
    _health: Option<IgnoredAny>,
    #[serde(skip)]
    health: Option<Spanned<Read<RawHealth>>>,
    /// Read on its own by the [`Reader`]; here so that it is a known key.
    #[serde(default, rename = "register")]
    _register: Option<IgnoredAny>,
    /// The registration, with the span of its table.
    #[serde(skip)]
    register: Option<Spanned<Registration>>,
    depends_on: Option<RawDepends>,
    restart: Option<Spanned<String>>,
    max_restarts: Option<Spanned<i64>>,
    backoff: Option<Spanned<String>>,
    backoff_max: Option<Spanned<String>>,
    stop_grace: Option<Spanned<String>>,
    on_dependency_unhealthy: Option<Spanned<String>>,
    /// Keys taken out for an error: what depends on them is not reported again.
    #[serde(skip)]
    removed: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHealth {
    probe: Option<Spanned<String>>,
    interval: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    retries: Option<Spanned<i64>>,
    start_period: Option<Spanned<String>>,
    start_interval: Option<Spanned<String>>,
    #[serde(flatten)]
    options: ProbeOptions,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    members: Spanned<Vec<Spanned<String>>>,
    policy: Option<Spanned<RawPolicy>>,
}

/// `depends_on`: a list of names (condition `started`) or a table of name → condition.
struct RawDepends(Vec<(Spanned<String>, Option<Spanned<String>>)>);

impl<'de> Deserialize<'de> for RawDepends {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DependsVisitor;
        impl<'de> Visitor<'de> for DependsVisitor {
            type Value = RawDepends;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a list of names, e.g. [\"db\"], or a table of conditions, e.g. { db = \"healthy\" }",
                )
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawDepends, A::Error> {
                let mut entries = Vec::new();
                while let Some(name) = seq.next_element::<Spanned<String>>()? {
                    entries.push((name, None));
                }
                Ok(RawDepends(entries))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawDepends, A::Error> {
                let mut entries = Vec::new();
                while let Some((name, condition)) =
                    map.next_entry::<Spanned<String>, Spanned<String>>()?
                {
                    entries.push((name, Some(condition)));
                }
                Ok(RawDepends(entries))
            }
        }
        deserializer.deserialize_any(DependsVisitor)
    }
}

/// `policy`: `"all"`, `"quorum"`, `"optional"` or `{ min_healthy = N }`.
enum RawPolicy {
    Named(String),
    MinHealthy(i64),
}

impl<'de> Deserialize<'de> for RawPolicy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PolicyVisitor;
        impl<'de> Visitor<'de> for PolicyVisitor {
            type Value = RawPolicy;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"all\", \"quorum\", \"optional\" or { min_healthy = N }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawPolicy, E> {
                Ok(RawPolicy::Named(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawPolicy, A::Error> {
                let mut min = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "min_healthy" {
                        min = Some(map.next_value::<i64>()?);
                    } else {
                        return Err(de::Error::custom(format!(
                            "unknown policy key `{key}`; expected {{ min_healthy = N }}"
                        )));
                    }
                }
                min.map(RawPolicy::MinHealthy)
                    .ok_or_else(|| de::Error::custom("missing `min_healthy` in the policy table"))
            }
        }
        deserializer.deserialize_any(PolicyVisitor)
    }
}

/// Reads every table of the document, reporting every bad key; what is left is validated by
/// [`build`].
fn read(
    document: &DeTable<'_>,
    span: Range<usize>,
    reader: &dyn Reader,
    errors: &mut Errors<'_>,
) -> RawStack {
    let top = deserialize_table::<RawTop>(document, span, errors);
    let concurrency = top.value.and_then(|top| top.concurrency);
    let services = entries(document, "services", &top.removed)
        .into_iter()
        .map(|(name, table, span)| {
            let service =
                table.and_then(|table| read_service(name.get_ref(), table, span, reader, errors));
            (name, service)
        })
        .collect();
    let groups = entries(document, "groups", &top.removed)
        .into_iter()
        .map(|(name, table, span)| {
            let group = table.and_then(|table| deserialize_table(table, span, errors).value);
            (name, group)
        })
        .collect();
    RawStack {
        concurrency,
        services,
        groups,
    }
}

/// The named tables under `key` (`services`, `groups`) in file order, each with its span;
/// `None` for an entry that is not a table (already reported by [`RawTop`]).
fn entries<'d, 'de>(
    document: &'d DeTable<'de>,
    key: &str,
    removed: &[String],
) -> Vec<(Spanned<String>, Option<&'d DeTable<'de>>, Range<usize>)> {
    let Some(DeValue::Table(table)) = document
        .get(key)
        .filter(|_| !removed.iter().any(|r| r == key))
        .map(Spanned::get_ref)
    else {
        return Vec::new();
    };
    let mut found: Vec<_> = table
        .iter()
        .map(|(name, value)| {
            let name = Spanned::new(name.span(), name.get_ref().to_string());
            let table = match value.get_ref() {
                DeValue::Table(table) => Some(table),
                _ => None,
            };
            (name, table, value.span())
        })
        .collect();
    found.sort_by_key(|(name, _, _)| name.span().start);
    found
}

/// A service's table, and its `health` and `register` tables on their own.
fn read_service(
    name: &str,
    table: &DeTable<'_>,
    span: Range<usize>,
    reader: &dyn Reader,
    errors: &mut Errors<'_>,
) -> Option<RawService> {
    let read = deserialize_table::<RawService>(table, span, errors);
    let mut service = read.value?;
    service.removed = read.removed;
    if !service.removed.iter().any(|key| key == "health") {
        service.health = table
            .get("health")
            .and_then(|health| match health.get_ref() {
                DeValue::Table(inner) => Some(Spanned::new(
                    health.span(),
                    deserialize_table(inner, health.span(), errors),
                )),
                other => {
                    errors.at(
                        health.span(),
                        format!(
                            "health: invalid type: {}, expected a table",
                            other.type_str()
                        ),
                    );
                    None
                }
            });
    }
    service.register = table
        .get("register")
        .and_then(|register| match register.get_ref() {
            DeValue::Table(inner) => reader
                .read(name, inner, register.span(), errors)
                .map(|registration| Spanned::new(register.span(), registration)),
            other => {
                errors.at(
                    register.span(),
                    format!(
                        "register: invalid type: {}, expected a table",
                        other.type_str()
                    ),
                );
                None
            }
        });
    Some(service)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Where each dependency was written, kept to point at the culprit of a cycle.
struct DependsSpans {
    /// Per service: (target name, span of the name).
    entries: Vec<Vec<(String, Range<usize>)>>,
}

fn build(raw: RawStack, base: &Path, errors: &mut Errors<'_>) -> Option<Stack> {
    let concurrency = raw.concurrency.and_then(|c| {
        let value = *c.get_ref();
        if value < 1 {
            errors.at(
                c.span(),
                format!("concurrency must be at least 1, found {value}"),
            );
            None
        } else {
            usize::try_from(value).ok()
        }
    });
    let services = raw.services;
    let groups = raw.groups;

    let service_names: Vec<String> = services.iter().map(|(n, _)| n.get_ref().clone()).collect();
    let group_names: Vec<String> = groups.iter().map(|(n, _)| n.get_ref().clone()).collect();
    for (name, _) in &services {
        if !valid_name(name.get_ref()) {
            errors.at(
                name.span(),
                format!(
                    "invalid service name \"{}\": use letters, digits, '-', '_' and '.'",
                    name.get_ref()
                ),
            );
        }
    }
    for (name, _) in &groups {
        if service_names.contains(name.get_ref()) {
            errors.at(
                name.span(),
                format!(
                    "group \"{}\" has the name of a service; a dependency on it would be ambiguous",
                    name.get_ref()
                ),
            );
        }
    }

    let resolve = |name: &str| -> Option<Target> {
        if let Some(i) = service_names.iter().position(|n| n == name) {
            Some(Target::Service(ServiceId(i)))
        } else {
            group_names
                .iter()
                .position(|n| n == name)
                .map(|i| Target::Group(GroupId(i)))
        }
    };
    let known = || {
        let mut all: Vec<&str> = service_names.iter().map(String::as_str).collect();
        all.extend(group_names.iter().map(String::as_str));
        all.join(", ")
    };

    let mut built_services = Vec::new();
    let mut spans = DependsSpans {
        entries: Vec::new(),
    };
    // Each instance registered so far, with the service that registers it.
    let mut registered: Vec<(&Instance, &str)> = Vec::new();
    for (name, raw_service) in &services {
        let Some(register) = raw_service.as_ref().and_then(|s| s.register.as_ref()) else {
            continue;
        };
        let instance = &register.get_ref().instance;
        match registered.iter().find(|(seen, _)| *seen == instance) {
            Some((_, first)) => errors.at(
                register.span(),
                format!(
                    "service \"{}\" registers {instance}, as service \"{first}\" does; give it an `id` of its own",
                    name.get_ref()
                ),
            ),
            None => registered.push((instance, name.get_ref())),
        }
    }
    for (name, raw_service) in services {
        // A service whose table could not be read is reported; its name still resolves.
        let Some(raw_service) = raw_service else {
            spans.entries.push(Vec::new());
            continue;
        };
        let service_name = name.get_ref().clone();
        let (service, entries) = build_service(
            &service_name,
            name.span(),
            raw_service,
            base,
            &resolve,
            &known,
            errors,
        );
        spans.entries.push(entries);
        built_services.push(service);
    }

    let mut built_groups = Vec::new();
    for (name, raw_group) in groups {
        if let Some(raw_group) = raw_group {
            built_groups.push(build_group(
                name.get_ref(),
                raw_group,
                &service_names,
                errors,
            ));
        }
    }

    if !errors.is_empty() {
        return None;
    }
    let stack = Stack {
        services: built_services.into_iter().flatten().collect(),
        groups: built_groups.into_iter().flatten().collect(),
        concurrency,
    };
    if let Some(cycle) = graph::find_cycle(&stack) {
        let span = cycle_span(&stack, &cycle, &spans);
        errors.at(
            span,
            format!(
                "dependency cycle: {}; nothing can start first",
                graph::describe_cycle(&stack, &cycle)
            ),
        );
        return None;
    }
    Some(stack)
}

/// The span of the first dependency in the cycle that a service wrote.
fn cycle_span(stack: &Stack, cycle: &[graph::Node], spans: &DependsSpans) -> Range<usize> {
    for pair in cycle.windows(2) {
        if let graph::Node::Service(id) = pair[0] {
            let target = pair[1].name(stack);
            if let Some((_, span)) = spans.entries[id.0].iter().find(|(n, _)| n == target) {
                return span.clone();
            }
        }
    }
    0..0
}

/// A duration setting in its range, or its default; a bad one is reported.
fn duration(
    value: Option<Spanned<String>>,
    limit: DurationLimit,
    default: Duration,
    errors: &mut Errors<'_>,
) -> Duration {
    let Some(value) = value else { return default };
    match limit.parse(value.get_ref()) {
        Ok(d) => d,
        Err(error) => {
            errors.at(value.span(), error.to_string());
            default
        }
    }
}

/// A count setting in `min..=u32::MAX`, or its default; a bad one is reported.
fn count(
    value: Option<Spanned<i64>>,
    key: &str,
    min: i64,
    default: u32,
    errors: &mut Errors<'_>,
) -> u32 {
    let Some(value) = value else { return default };
    let n = *value.get_ref();
    match u32::try_from(n) {
        Ok(c) if n >= min => c,
        _ => {
            errors.at(
                value.span(),
                format!("{key} must be a whole number of at least {min}, found {n}"),
            );
            default
        }
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "one call site; the arguments are the pieces of one entry and the shared lookups"
)]
fn build_service(
    name: &str,
    name_span: Range<usize>,
    raw: RawService,
    base: &Path,
    resolve: &dyn Fn(&str) -> Option<Target>,
    known: &dyn Fn() -> String,
    errors: &mut Errors<'_>,
) -> (Option<Service>, Vec<(String, Range<usize>)>) {
    let launch = match (raw.command, raw.compose_service) {
        (Some(command), None) => {
            let argv = command.get_ref().clone();
            if argv.first().is_none_or(|program| program.trim().is_empty()) {
                errors.at(
                    command.span(),
                    format!("service \"{name}\": command must name a program, e.g. [\"redis-server\", \"--port\", \"6380\"]"),
                );
            }
            Some(Launch::Command(CommandSpec {
                argv,
                env: raw.env.into_iter().collect(),
                workdir: raw.workdir.map(|w| base.join(w)),
            }))
        }
        (None, Some(service)) => Some(Launch::Compose {
            service: service.into_inner(),
        }),
        (Some(command), Some(_)) => {
            errors.at(
                command.span(),
                format!("service \"{name}\" has both `command` and `compose_service`; keep one"),
            );
            None
        }
        // A command or compose_service of the wrong type is reported already.
        (None, None)
            if raw
                .removed
                .iter()
                .any(|key| key == "command" || key == "compose_service") =>
        {
            None
        }
        (None, None) => {
            errors.at(
                name_span.clone(),
                format!("service \"{name}\" needs `command = [\"program\", \"arg\", ...]` or `compose_service = \"name\"`"),
            );
            None
        }
    };

    let health = raw.health.and_then(|h| {
        let h_span = h.span();
        let read = h.into_inner();
        let removed = read.removed;
        read.value
            .and_then(|health| build_health(name, h_span, health, &removed, errors))
    });

    let mut depends_on = Vec::new();
    let mut entries = Vec::new();
    if let Some(RawDepends(raw_deps)) = raw.depends_on {
        for (target_name, condition) in raw_deps {
            let target = target_name.get_ref().clone();
            entries.push((target.clone(), target_name.span()));
            let condition = match condition {
                None => Some(Condition::Started),
                Some(c) => match c.get_ref().as_str() {
                    "started" | "service_started" => Some(Condition::Started),
                    "healthy" | "service_healthy" => Some(Condition::Healthy),
                    "completed" | "service_completed_successfully" => Some(Condition::Completed),
                    other => {
                        errors.at(
                            c.span(),
                            format!(
                                "unknown condition \"{other}\" for dependency \"{target}\"; expected \"started\", \"healthy\" or \"completed\""
                            ),
                        );
                        None
                    }
                },
            };
            if target == name {
                errors.at(
                    target_name.span(),
                    format!("service \"{name}\" depends on itself"),
                );
                continue;
            }
            match resolve(&target) {
                Some(t) => {
                    if let Some(condition) = condition {
                        depends_on.push(Dependency {
                            target: t,
                            condition,
                        });
                    }
                }
                None => errors.at(
                    target_name.span(),
                    format!(
                        "service \"{name}\" depends on \"{target}\", which is no service or group; known: {}",
                        known()
                    ),
                ),
            }
        }
    }

    let mode = raw.restart.map_or(RestartMode::OnFailure, |r| {
        match r.get_ref().as_str() {
            "no" => RestartMode::No,
            "on-failure" => RestartMode::OnFailure,
            "always" => RestartMode::Always,
            other => {
                errors.at(
                    r.span(),
                    format!("unknown restart policy \"{other}\"; expected \"no\", \"on-failure\" or \"always\""),
                );
                RestartMode::OnFailure
            }
        }
    });
    let defaults = RestartPolicy::default();
    let restart = RestartPolicy {
        mode,
        max_restarts: count(
            raw.max_restarts,
            "max_restarts",
            0,
            defaults.max_restarts,
            errors,
        ),
        backoff: duration(raw.backoff, limits::BACKOFF, defaults.backoff, errors),
        backoff_max: duration(
            raw.backoff_max,
            limits::BACKOFF_MAX,
            defaults.backoff_max,
            errors,
        ),
    };
    let stop_grace = duration(
        raw.stop_grace,
        limits::STOP_GRACE,
        Duration::from_secs(10),
        errors,
    );
    let on_dependency_unhealthy = raw
        .on_dependency_unhealthy
        .map_or(OnDependencyUnhealthy::default(), |p| {
            OnDependencyUnhealthy::parse(p.get_ref()).unwrap_or_else(|| {
                errors.at(
                    p.span(),
                    format!(
                        "unknown on_dependency_unhealthy \"{}\"; expected \"restart\", \"wait\" or \"ignore\"",
                        p.get_ref()
                    ),
                );
                OnDependencyUnhealthy::default()
            })
        });
    let service = launch.map(|launch| Service {
        name: name.to_owned(),
        launch,
        health,
        depends_on,
        restart,
        stop_grace,
        register: raw.register.map(Spanned::into_inner),
        on_dependency_unhealthy,
    });
    (service, entries)
}

fn build_health(
    name: &str,
    span: Range<usize>,
    raw: RawHealth,
    removed: &[String],
    errors: &mut Errors<'_>,
) -> Option<Health> {
    let interval = duration(
        raw.interval,
        limits::STACK_INTERVAL,
        Duration::from_secs(5),
        errors,
    );
    let timeout = duration(
        raw.timeout,
        limits::STACK_TIMEOUT,
        Duration::from_secs(2),
        errors,
    );
    let start_period = duration(
        raw.start_period,
        limits::STACK_START_PERIOD,
        Duration::from_secs(30),
        errors,
    );
    let start_interval = duration(
        raw.start_interval,
        limits::STACK_START_INTERVAL,
        Duration::from_millis(100),
        errors,
    );
    let retries = count(raw.retries, "retries", 1, 3, errors);
    let Some(probe) = raw.probe else {
        if removed.iter().any(|key| key == "probe") {
            return None;
        }
        errors.at(
            span,
            format!(
                "service \"{name}\": health needs `probe`, e.g. probe = \"tcp://127.0.0.1:5432\""
            ),
        );
        return None;
    };
    let check = match ProbeSpec::parse(probe.get_ref(), &raw.options) {
        Ok(spec) if spec.is_pushed() => {
            errors.at(
                probe.span(),
                "a ttl probe cannot judge startup; use http://, tcp:// or exec:",
            );
            return None;
        }
        Ok(spec) => HealthCheck::Probe(spec),
        Err(e) => {
            errors.at(probe.span(), format!("probe: {e}"));
            return None;
        }
    };
    Some(Health {
        check,
        interval,
        timeout,
        retries,
        start_period,
        start_interval,
    })
}

fn build_group(
    name: &str,
    raw: RawGroup,
    service_names: &[String],
    errors: &mut Errors<'_>,
) -> Option<Group> {
    let mut members = Vec::new();
    for member in raw.members.get_ref() {
        match service_names.iter().position(|n| n == member.get_ref()) {
            Some(i) if members.contains(&ServiceId(i)) => errors.at(
                member.span(),
                format!("group \"{name}\" lists \"{}\" twice", member.get_ref()),
            ),
            Some(i) => members.push(ServiceId(i)),
            None => errors.at(
                member.span(),
                format!(
                    "group \"{name}\" has member \"{}\", which is no service; services: {}",
                    member.get_ref(),
                    service_names.join(", ")
                ),
            ),
        }
    }
    if raw.members.get_ref().is_empty() {
        errors.at(
            raw.members.span(),
            format!("group \"{name}\" has no members"),
        );
    }
    let count = raw.members.get_ref().len();
    let policy = match raw.policy {
        None => GroupPolicy::All,
        Some(policy) => match policy.get_ref() {
            RawPolicy::Named(n) => match n.as_str() {
                "all" => GroupPolicy::All,
                "quorum" => GroupPolicy::Quorum,
                "optional" => GroupPolicy::Optional,
                other => {
                    errors.at(
                        policy.span(),
                        format!("unknown group policy \"{other}\"; expected \"all\", \"quorum\", \"optional\" or {{ min_healthy = N }}"),
                    );
                    GroupPolicy::All
                }
            },
            RawPolicy::MinHealthy(n) => match usize::try_from(*n) {
                Ok(n) if (1..=count).contains(&n) => GroupPolicy::MinHealthy(n),
                _ => {
                    errors.at(
                        policy.span(),
                        format!("min_healthy must be between 1 and the group's {count} members, found {n}"),
                    );
                    GroupPolicy::All
                }
            },
        },
    };
    Some(Group {
        name: name.to_owned(),
        members,
        policy,
    })
}
