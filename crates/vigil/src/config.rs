//! The agent's config file (`vigil.toml`): reading it, applying `VIGIL_<SECTION>_<KEY>`
//! environment overrides, and validating all of it, with every error located at
//! `file:line:column`.
//!
//! The document is parsed once into a spanned tree ([`DeTable`]). Each section and each
//! `[[checks]]` entry is then deserialized on its own from its spanned value, so one bad entry
//! never hides the errors of another, and every error keeps the byte span of the key or value it
//! is about. When a key is wrong, it is reported, taken out of its table and the table is
//! deserialized again, so every bad key of a table is reported too. Checks share their schema and
//! validation with the HTTP API ([`CheckDefinition`]).
//!
//! Sections: `[node]`, `[api]`, `[health]`, `[shutdown]`, `[cluster]`, `[grpc]`, `[dns]`,
//! `[[checks]]`, `[[neighbors]]`, `[[services]]`, `[[webhooks]]`; `examples/vigil.toml`
//! documents every key.

use std::borrow::Cow;
use std::collections::hash_map::{Entry, HashMap};
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;
use vigil_api::checkdef::{CheckDefinition, CheckPlan};
use vigil_health::EngineConfig;
use vigil_text::{limits, parse_duration, DurationLimit, Errors, HumanDuration};

mod cluster;
mod dns;
mod grpc;
mod neighbors;
mod services;
mod webhooks;
pub use cluster::ClusterSettings;
pub use grpc::GrpcSettings;
pub(crate) use services::read_registration;
pub use vigil_api::dns::DnsConfig;

/// The `file` of errors that come from environment variables.
const ENVIRONMENT: &str = "environment";
/// The most API connections `[api] max_connections` may allow: well past any descriptor limit a
/// node is given, so only a typo reaches it.
const MAX_API_CONNECTIONS: usize = 1 << 20;
/// The most checks `[health] max_checks` may allow: a node's snapshot, `/metrics` and memory grow
/// with the count.
const MAX_CHECKS: usize = 1_000_000;
/// The most results `[health] history_size` may keep per check: every check holds that many.
const MAX_HISTORY: usize = 10_000;
/// The most results `[health] instance_history_size` may keep per instance check, of which a
/// node can have tens of thousands.
const MAX_INSTANCE_HISTORY: usize = 1_000;
/// The most results `[health] score_window` may span.
const MAX_SCORE_WINDOW: usize = 10_000;

/// The top-level sections, as listed in error messages.
const SECTIONS: &str =
    "[node], [api], [health], [shutdown], [cluster], [grpc], [dns], [[checks]], [[neighbors]], [[services]], [[webhooks]]";

/// A loaded and validated config.
#[derive(Debug)]
pub struct Config {
    /// `[node]`: who this node is.
    pub node: NodeConfig,
    /// `[api]`: where the HTTP API listens and who may change things.
    pub api: ApiConfig,
    /// `[health]`: scores and history.
    pub health: HealthConfig,
    /// `[shutdown]`: how the agent stops.
    pub shutdown: ShutdownConfig,
    /// `[cluster]`: membership; `None` when the section is absent (a single node).
    pub cluster: Option<ClusterSettings>,
    /// `[grpc]`: the gRPC health server; `None` when the section is absent (no gRPC server).
    pub grpc: Option<GrpcSettings>,
    /// `[dns]`: the DNS interface to discovery; `None` when the section is absent (no DNS).
    pub dns: Option<DnsConfig>,
    /// `[[checks]]`, validated and ready to register, in file order.
    pub checks: Vec<CheckPlan>,
    /// Each check of `checks` by name, as written (its definition, without positions): what a
    /// reload compares to tell a changed check from one that only moved.
    pub check_definitions: BTreeMap<String, String>,
    /// `[[neighbors]]`, validated, in file order.
    pub neighbors: Vec<vigil_probe::neighbors::NeighborSpec>,
    /// `[[services]]`: instances on this node to register, validated, in file order (each with
    /// its `id`; without `node`, so this node).
    pub services: Vec<vigil_api::wire::Registration>,
    /// `[[webhooks]]`: where events are posted, validated, in file order.
    pub webhooks: Vec<vigil_api::webhooks::WebhookSpec>,
}

/// `[node]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// Node id (default: the machine's host name, else `vigil`).
    pub id: String,
    /// Version of the watched service, shown in JSON (default: vigil's own version).
    pub version: Option<String>,
    /// The log filter (`info`, `debug`, `warn,vigil_cluster=debug`, as `VIGIL_LOG`, which wins
    /// when set); none: `info`.
    pub log: Option<String>,
}

/// `[api]`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// Listen address (default `127.0.0.1:8081`).
    pub bind: SocketAddr,
    /// Bearer token required by mutating endpoints, from `token` or `token_file`; `None` = open.
    pub token: Option<String>,
    /// Token required, when set, to read anything but the probe endpoints (the API token reads
    /// too), from `read_token` or `read_token_file`; `None` = reads are open.
    pub read_token: Option<String>,
    /// Most API connections open at once; `None` = a quarter of the file descriptor limit
    /// ([`vigil_api::serve::default_max_connections`]).
    pub max_connections: Option<usize>,
    /// TLS on the API (and gRPC), from `tls_cert`, `tls_key`, `tls_client_ca` and `tls_ca`.
    pub tls: Option<ApiTls>,
    /// A plain-HTTP listener for the probe endpoints alone (`probe_bind`).
    pub probe_bind: Option<SocketAddr>,
}

/// `[api] tls_*`: the files, read and checked when the config is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiTls {
    /// The certificate, key and client CA the API serves.
    pub files: vigil_api::serve::TlsFiles,
    /// The CA other agents' API certificates chain to (`tls_ca`; default `tls_client_ca`, else
    /// the system's roots).
    pub peer_ca: Option<PathBuf>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8081),
            token: None,
            read_token: None,
            max_connections: None,
            tls: None,
            probe_bind: None,
        }
    }
}

impl fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiConfig")
            .field("bind", &self.bind)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field(
                "read_token",
                &self.read_token.as_ref().map(|_| "<redacted>"),
            )
            .field("max_connections", &self.max_connections)
            .field("tls", &self.tls)
            .field("probe_bind", &self.probe_bind)
            .finish()
    }
}

/// `[health]`.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthConfig {
    /// System score at or above which the node may be `healthy` (default 0.95).
    pub healthy_threshold: f64,
    /// Scores below this are poor (default 0.75); at most `healthy_threshold`.
    pub degraded_threshold: f64,
    /// Results kept per check (default 100).
    pub history_size: usize,
    /// Results kept per check of a service instance (default 10): an agent may run thousands.
    pub instance_history_size: usize,
    /// Oldest result kept per check (default 1h).
    pub history_max_age: Duration,
    /// Results per check in its score's sliding window (default 20, at least 1).
    pub score_window: usize,
    /// Most checks the node holds, from the file and the API together (default 10,000).
    pub max_checks: usize,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            healthy_threshold: 0.95,
            degraded_threshold: 0.75,
            history_size: 100,
            instance_history_size: 10,
            history_max_age: Duration::from_secs(3600),
            score_window: 20,
            max_checks: vigil_health::DEFAULT_MAX_CHECKS,
        }
    }
}

impl HealthConfig {
    /// The engine settings of the checks of this node's service instances: the node's, with
    /// their own history length.
    pub fn instance_engine_config(&self, node: &NodeConfig) -> EngineConfig {
        EngineConfig {
            history_len: self.instance_history_size,
            ..self.engine_config(node)
        }
    }

    /// The engine settings of this node.
    pub fn engine_config(&self, node: &NodeConfig) -> EngineConfig {
        let mut config = EngineConfig {
            node_id: node.id.clone(),
            healthy_threshold: self.healthy_threshold,
            degraded_threshold: self.degraded_threshold,
            history_len: self.history_size,
            history_age: self.history_max_age,
            score_window: self.score_window,
            max_checks: self.max_checks,
            ..EngineConfig::default()
        };
        if let Some(version) = &node.version {
            config.version.clone_from(version);
        }
        config
    }
}

/// `[shutdown]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownConfig {
    /// How long the API server may take to drain (default 30s).
    pub timeout: Duration,
    /// Time between turning `stopping` and closing the listener, so that load balancers see
    /// readiness fail first (default 0s).
    pub drain: Duration,
    /// A critical check failing for this long starts a shutdown; `None` (default) = never.
    pub on_critical: Option<Duration>,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig {
            timeout: Duration::from_secs(30),
            drain: Duration::ZERO,
            on_critical: None,
        }
    }
}

/// One problem in a config, where it is: the same located error as in stack files, so `vigil agent`
/// and `vigil up` place and word their problems alike. Problems in the environment have `file`
/// `environment` and no position.
pub use vigil_text::FileError as ConfigError;
/// Every problem found in a config: those in the file by position, then those in the environment.
pub use vigil_text::FileErrors as ConfigErrors;

/// Reads and validates the config at `path`, with overrides from the process environment. Relative
/// paths in it (`token_file`) are relative to the file's directory.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(source) => parse(&source, &file),
        Err(e) => Err(ConfigErrors(vec![ConfigError {
            file,
            line: 0,
            column: 0,
            message: format!("cannot read the config file: {e}"),
        }])),
    }
}

/// Validates config text with overrides from the process environment. `file` names it in errors,
/// and relative paths in it are relative to `file`'s directory.
pub fn parse(source: &str, file: &str) -> Result<Config, ConfigErrors> {
    parse_with_env(source, file, |name| std::env::var(name).ok())
}

/// [`parse`] with the environment given as a function from variable name to value.
///
/// `VIGIL_<SECTION>_<KEY>` overrides a key of `[node]`, `[api]`, `[health]` or `[shutdown]`; empty
/// values count as unset. `VIGIL_API_TOKEN` or `VIGIL_API_TOKEN_FILE` replace both `token` and
/// `token_file` of the file (and `VIGIL_API_READ_TOKEN` or `VIGIL_API_READ_TOKEN_FILE` both
/// `read_token` and `read_token_file`). `HOSTNAME` is the fallback for the default node id.
pub fn parse_with_env(
    source: &str,
    file: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    let mut report = Report::new(source, file);
    let (document, syntax_errors) = DeTable::parse_recoverable(source);
    // After a syntax error the tree is a guess: report the syntax errors, and of the rest only what
    // does not depend on the file (the environment).
    let document = if syntax_errors.is_empty() {
        document.into_inner()
    } else {
        for error in &syntax_errors {
            report.at_span(
                error.span().unwrap_or(0..0),
                syntax_message(error.message()),
            );
        }
        DeTable::new()
    };

    let mut node = RawNode::default();
    let mut api = RawApi::default();
    let mut health = RawHealth::default();
    let mut shutdown = RawShutdown::default();
    let mut cluster: Option<cluster::RawCluster> = None;
    let mut grpc: Option<grpc::RawGrpc> = None;
    let mut dns: Option<(dns::RawDns, Range<usize>)> = None;
    let mut checks = Vec::new();
    let mut check_definitions = BTreeMap::new();
    let mut checks_span = None;
    let mut neighbor_specs = Vec::new();
    let mut webhook_specs = Vec::new();
    let mut services_written = None;
    for (key, value) in &document {
        match key.get_ref().as_ref() {
            "node" => node = section("node", value, &mut report),
            "api" => api = section("api", value, &mut report),
            "health" => health = section("health", value, &mut report),
            "shutdown" => shutdown = section("shutdown", value, &mut report),
            "cluster" => cluster = Some(section("cluster", value, &mut report)),
            "grpc" => grpc = Some(section("grpc", value, &mut report)),
            "dns" => dns = Some((section("dns", value, &mut report), key.span())),
            "checks" => {
                (checks, check_definitions) = check_plans(value, &mut report);
                checks_span = Some(key.span());
            }
            "neighbors" => neighbor_specs = neighbors::neighbors(value, &mut report),
            "webhooks" => webhook_specs = webhooks::webhooks(value, &mut report),
            "services" => services_written = Some((key.span(), value)),
            other if value.get_ref().is_table() => report.at_span(
                key.span(),
                format!("unknown section [{other}]: the sections are {SECTIONS}"),
            ),
            other => report.at_span(
                key.span(),
                format!("unknown top-level key `{other}`: keys belong in one of the sections {SECTIONS}"),
            ),
        }
    }

    let mut overrides = Overrides {
        env: &env,
        report: &mut report,
    };
    let base = Path::new(file).parent().unwrap_or(Path::new(""));
    let node = node.build(&mut overrides);
    let api = api.build(&mut overrides, base);
    let health = health.build(&mut overrides);
    if let Some(span) = checks_span.filter(|_| checks.len() > health.max_checks) {
        overrides.report.at_span(
            span,
            format!(
                "{} checks, more than the {} a node holds; raise [health] max_checks or remove checks",
                checks.len(),
                health.max_checks
            ),
        );
    }
    let shutdown = shutdown.build(&mut overrides);
    let cluster = cluster.map(|c| c.build(&mut overrides, base));
    let check_names: Vec<&str> = checks.iter().map(|c| c.spec.name.as_str()).collect();
    let grpc = grpc.map(|g| g.build(&mut overrides, &check_names));
    let dns = dns.map(|(d, span)| {
        if cluster.is_none() {
            overrides.report.at_span(
                span,
                "[dns] answers from the service registry, which needs a [cluster] section",
            );
        }
        d.build(&mut overrides)
    });
    let services = match services_written {
        Some((span, value)) => {
            if cluster.is_none() {
                report.at_span(
                    span,
                    "[[services]] registers instances with the service registry, which needs a [cluster] section",
                );
            }
            services::registrations(value, &node.id, &mut report)
        }
        None => Vec::new(),
    };
    report.finish()?;
    Ok(Config {
        node,
        api,
        health,
        shutdown,
        cluster,
        grpc,
        dns,
        checks,
        check_definitions,
        neighbors: neighbor_specs,
        services,
        webhooks: webhook_specs,
    })
}

/// toml's message, with a hint where the usual cause is a value that should have been quoted.
fn syntax_message(message: &str) -> String {
    let unquoted = [
        "string values must be quoted",
        "invalid float",
        "invalid integer",
        "invalid number",
    ];
    if unquoted.iter().any(|start| message.starts_with(start)) {
        format!("{message} (quote strings, durations and addresses: \"30s\", \"127.0.0.1:8081\")")
    } else {
        message.to_owned()
    }
}

/// Collects errors: those in the file with their positions, those in the environment apart.
struct Report<'a> {
    file: Errors<'a>,
    environment: Vec<ConfigError>,
}

impl<'a> Report<'a> {
    fn new(source: &'a str, file: &'a str) -> Self {
        Report {
            file: Errors::new(source, file),
            environment: Vec::new(),
        }
    }

    fn at_span(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.file.at(span, message);
    }

    fn at(&mut self, at: &At, message: impl Into<String>) {
        match at {
            At::Span(span) => self.at_span(span.clone(), message),
            At::Env(var) => self.environment.push(ConfigError {
                file: ENVIRONMENT.to_owned(),
                line: 0,
                column: 0,
                message: format!("{var}: {}", message.into()),
            }),
        }
    }

    fn line_of(&self, offset: usize) -> usize {
        self.file.line_of(offset)
    }

    fn finish(mut self) -> Result<(), ConfigErrors> {
        if self.file.is_empty() && self.environment.is_empty() {
            return Ok(());
        }
        let ConfigErrors(mut errors) = self.file.into_errors();
        errors.append(&mut self.environment);
        Err(ConfigErrors(errors))
    }
}

/// Where a setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum At {
    /// A value in the file.
    Span(Range<usize>),
    /// An environment variable.
    Env(String),
}

/// A setting's value and where it came from.
struct Setting<T> {
    value: T,
    at: At,
}

impl<T> Setting<T> {
    fn from_file(spanned: Spanned<T>) -> Self {
        Setting {
            at: At::Span(spanned.span()),
            value: spanned.into_inner(),
        }
    }
}

/// Applies `VIGIL_<SECTION>_<KEY>` variables over file values.
struct Overrides<'e, 'r, 'a> {
    env: &'e dyn Fn(&str) -> Option<String>,
    report: &'r mut Report<'a>,
}

impl Overrides<'_, '_, '_> {
    /// The variable's name and its value, if set and not empty.
    fn var(&self, section: &str, key: &str) -> (String, Option<String>) {
        let name = format!("VIGIL_{section}_{key}").to_ascii_uppercase();
        let value = (self.env)(&name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty());
        (name, value)
    }

    /// The setting from the environment if its variable is set, else from the file.
    fn pick<T>(
        &mut self,
        file: Option<Spanned<T>>,
        section: &str,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<Setting<T>> {
        let file = file.map(Setting::from_file);
        let (name, value) = self.var(section, key);
        let Some(text) = value else { return file };
        match parse(&text) {
            Ok(value) => Some(Setting {
                value,
                at: At::Env(name),
            }),
            Err(message) => {
                self.report.at(&At::Env(name), message);
                file
            }
        }
    }

    fn string(
        &mut self,
        file: Option<Spanned<String>>,
        section: &str,
        key: &str,
    ) -> Option<Setting<String>> {
        self.pick(file, section, key, |text| Ok(text.to_owned()))
    }

    fn ratio(
        &mut self,
        file: Option<Spanned<f64>>,
        section: &str,
        key: &str,
    ) -> Option<Setting<f64>> {
        self.pick(file, section, key, |text| {
            text.parse().map_err(|_| {
                format!("invalid number \"{text}\": expected a number from 0 to 1, e.g. 0.9")
            })
        })
    }

    fn count(
        &mut self,
        file: Option<Spanned<usize>>,
        section: &str,
        key: &str,
    ) -> Option<Setting<usize>> {
        self.pick(file, section, key, |text| {
            text.parse()
                .map_err(|_| format!("invalid count \"{text}\": expected a whole number, e.g. 100"))
        })
    }

    /// A count setting held to `1..=max`; one out of range is reported where it was written and
    /// left out.
    fn count_within(
        &mut self,
        file: Option<Spanned<usize>>,
        section: &str,
        key: &str,
        max: usize,
    ) -> Option<usize> {
        let setting = self.count(file, section, key)?;
        if (1..=max).contains(&setting.value) {
            return Some(setting.value);
        }
        self.report
            .at(&setting.at, format!("{key} must be from 1 to {max}"));
        None
    }

    /// A duration setting held to its range; `limit` names its key. One out of range is reported
    /// where it was written and left out.
    fn duration(
        &mut self,
        file: Option<Spanned<HumanDuration>>,
        section: &str,
        limit: DurationLimit,
    ) -> Option<Setting<Duration>> {
        let file = file.map(|d| Spanned::new(d.span(), d.into_inner().0));
        let setting = self.pick(file, section, limit.setting, |text| {
            parse_duration(text).map_err(|error| error.to_string())
        })?;
        match limit.check(setting.value) {
            Ok(_) => Some(setting),
            Err(error) => {
                self.report.at(&setting.at, error.to_string());
                None
            }
        }
    }
}

/// Deserializes a section, reporting a value that is not a table.
fn section<T: DeserializeOwned + Default>(
    name: &str,
    value: &Spanned<DeValue<'_>>,
    report: &mut Report<'_>,
) -> T {
    match value.get_ref() {
        DeValue::Table(table) => deserialize_table(table, value.span(), report)
            .0
            .unwrap_or_default(),
        other => {
            report.at_span(
                value.span(),
                format!(
                    "`{name}` must be a table, not a {}: write [{name}] and its keys on the lines below",
                    other.type_str()
                ),
            );
            T::default()
        }
    }
}

/// Deserializes one table on its own, reporting every bad key ([`vigil_text::table`]). Returns
/// the value of what is left (if that deserializes) and the keys taken out (none: nothing was
/// wrong).
fn deserialize_table<T: DeserializeOwned>(
    table: &DeTable<'_>,
    span: Range<usize>,
    report: &mut Report<'_>,
) -> (Option<T>, Vec<String>) {
    let read = vigil_text::table::deserialize_table(table, span, &mut report.file);
    (read.value, read.removed)
}

/// The tables of an array of tables (`[[checks]]`, `[[neighbors]]`), each with its span, in file
/// order. A value that is not an array, or an entry that is not a table, is reported and left
/// out; `key` names the array and `noun` one of its entries in those reports.
fn array_of_tables<'v, 'de>(
    value: &'v Spanned<DeValue<'de>>,
    key: &str,
    noun: &str,
    report: &mut Report<'_>,
) -> Vec<(&'v DeTable<'de>, Range<usize>)> {
    let DeValue::Array(entries) = value.get_ref() else {
        report.at_span(
            value.span(),
            format!(
                "`{key}` must be an array of tables, not a {}: write each {noun} as a [[{key}]] table",
                value.get_ref().type_str()
            ),
        );
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|entry| match entry.get_ref() {
            DeValue::Table(table) => Some((table, entry.span())),
            other => {
                report.at_span(
                    entry.span(),
                    format!("each {noun} must be a table, not a {}", other.type_str()),
                );
                None
            }
        })
        .collect()
}

/// Validates every `[[checks]]` entry; plans are returned only for entries without errors.
fn check_plans(
    value: &Spanned<DeValue<'_>>,
    report: &mut Report<'_>,
) -> (Vec<CheckPlan>, BTreeMap<String, String>) {
    let mut plans = Vec::new();
    let mut definitions = BTreeMap::new();
    // Name → line of its first definition.
    let mut names: HashMap<String, usize> = HashMap::new();
    for (written, entry_span) in array_of_tables(value, "checks", "check", report) {
        // A check without a probe is reported at its header, by name; a stand-in probe lets the
        // rest of it be checked all the same.
        let mut table = written.clone();
        let probe_missing = table.get("probe").is_none();
        if probe_missing {
            report.at_span(entry_span.clone(), missing_probe(&table));
            table.insert(
                Spanned::new(entry_span.clone(), Cow::Borrowed("probe")),
                Spanned::new(entry_span.clone(), DeValue::String(Cow::Borrowed("memory"))),
            );
        }
        let table = &table;
        let (definition, mut removed) =
            deserialize_table::<CheckDefinition>(table, entry_span.clone(), report);
        if probe_missing {
            removed.push("probe".to_owned());
        }
        let Some(definition) = definition else {
            continue;
        };
        // The position of a key's value. An absent key is needed by the probe kind (e.g. `ttl` for
        // a ttl probe), so it is reported at `probe`; an absent `name` at the entry's header.
        let key_span = |key: &str| {
            table
                .get(key)
                .or_else(|| {
                    if key == "name" {
                        None
                    } else {
                        table.get("probe")
                    }
                })
                .map_or_else(|| entry_span.clone(), Spanned::span)
        };

        let mut unique = true;
        if let Some(name) = &definition.name {
            let at = key_span("name");
            let line = report.line_of(at.start);
            match names.entry(name.clone()) {
                Entry::Occupied(first) => {
                    unique = false;
                    report.at_span(
                        at,
                        format!(
                            "duplicate check name \"{name}\": the first check with this name is at line {}; \
                             names must be unique",
                            first.get()
                        ),
                    );
                }
                Entry::Vacant(slot) => {
                    slot.insert(line);
                }
            }
        }
        // With bad keys taken out, what is left is still validated, but an error that may come from
        // a key taken out (a `ttl` missing, thresholds out of order) is not reported again.
        let clean = removed.is_empty();
        match definition.plan(None) {
            Ok(plan) => {
                if unique && clean {
                    definitions.insert(plan.spec.name.clone(), format!("{definition:?}"));
                    plans.push(plan);
                }
            }
            Err(error)
                if removed
                    .iter()
                    .any(|key| key == error.field || mentions(&error.message, key)) => {}
            Err(error) => {
                let message = if error.message.contains(error.field) {
                    error.message
                } else {
                    format!("{}: {}", error.field, error.message)
                };
                report.at_span(key_span(error.field), message);
            }
        }
    }
    (plans, definitions)
}

/// The error for a check without `probe`, naming the check when it has a name.
fn missing_probe(table: &DeTable<'_>) -> String {
    let check = match table.get("name").map(Spanned::get_ref) {
        Some(DeValue::String(name)) => format!("check \"{name}\""),
        _ => "this check".to_owned(),
    };
    format!(
        "{check} has no `probe`: every check needs one, e.g. probe = \"http://127.0.0.1:8080/health\""
    )
}

/// Whether `message` names `key` as a word (`body` is not named by `expect_body`).
fn mentions(message: &str, key: &str) -> bool {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    message.match_indices(key).any(|(at, _)| {
        let before = message[..at].chars().next_back();
        let after = message[at + key.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

/// `[node]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    id: Option<Spanned<String>>,
    version: Option<Spanned<String>>,
    log: Option<Spanned<String>>,
}

impl RawNode {
    fn build(self, o: &mut Overrides<'_, '_, '_>) -> NodeConfig {
        let id = match o.string(self.id, "node", "id") {
            Some(id) => {
                if id.value.trim().is_empty() || id.value.chars().any(char::is_control) {
                    o.report.at(
                        &id.at,
                        "node id must not be empty nor contain control characters (leave it out to use the host name)",
                    );
                }
                id.value
            }
            None => default_node_id(o.env),
        };
        let version = o.string(self.version, "node", "version").map(|v| v.value);
        let log = o.string(self.log, "node", "log").and_then(|log| {
            match crate::log_filter::validate(&log.value) {
                Ok(_) => Some(log.value),
                Err(e) => {
                    o.report.at(
                        &log.at,
                        format!("log: \"{}\" is not a log filter ({e}); write e.g. \"info\", \"debug\" or \"warn,vigil_cluster=debug\"", log.value),
                    );
                    None
                }
            }
        });
        NodeConfig { id, version, log }
    }
}

/// The machine's host name, else `vigil`.
fn default_node_id(env: &dyn Fn(&str) -> Option<String>) -> String {
    first_name([
        std::fs::read_to_string("/proc/sys/kernel/hostname").ok(),
        env("HOSTNAME"),
    ])
}

/// The first of the candidate names that is not blank, trimmed; else `vigil`.
fn first_name(candidates: [Option<String>; 2]) -> String {
    candidates
        .into_iter()
        .flatten()
        .map(|name| name.trim().to_owned())
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| "vigil".to_owned())
}

/// `[api]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    bind: Option<Spanned<String>>,
    token: Option<Spanned<String>>,
    token_file: Option<Spanned<String>>,
    read_token: Option<Spanned<String>>,
    read_token_file: Option<Spanned<String>>,
    max_connections: Option<Spanned<usize>>,
    tls_cert: Option<Spanned<String>>,
    tls_key: Option<Spanned<String>>,
    tls_client_ca: Option<Spanned<String>>,
    tls_ca: Option<Spanned<String>>,
    probe_bind: Option<Spanned<String>>,
}

impl RawApi {
    fn build(self, o: &mut Overrides<'_, '_, '_>, base: &Path) -> ApiConfig {
        let mut api = ApiConfig::default();
        if let Some(bind) = o.string(self.bind, "api", "bind") {
            match parse_bind(&bind.value) {
                Ok(addr) => api.bind = addr,
                Err(message) => o.report.at(&bind.at, message),
            }
        }
        if let Some(max) = o.count(self.max_connections, "api", "max_connections") {
            if !(1..=MAX_API_CONNECTIONS).contains(&max.value) {
                o.report.at(
                    &max.at,
                    format!("max_connections must be from 1 to {MAX_API_CONNECTIONS} (leave it out for a quarter of the file descriptor limit)"),
                );
            }
            api.max_connections = Some(max.value);
        }

        api.token = resolve_token(o, "token", self.token, self.token_file, base);
        api.read_token =
            resolve_token(o, "read_token", self.read_token, self.read_token_file, base);
        if let Some(bind) = o.string(self.probe_bind, "api", "probe_bind") {
            match parse_bind(&bind.value) {
                Ok(addr) => api.probe_bind = Some(addr),
                Err(message) => o.report.at(&bind.at, message),
            }
        }
        let tls = RawTls {
            cert: o.string(self.tls_cert, "api", "tls_cert"),
            key: o.string(self.tls_key, "api", "tls_key"),
            client_ca: o.string(self.tls_client_ca, "api", "tls_client_ca"),
            peer_ca: o.string(self.tls_ca, "api", "tls_ca"),
        };
        api.tls = tls.build(o.report, base);
        api
    }
}

/// The token of `[api] KEY` or `KEY_file` (one of them), either replaced by its variable
/// `VIGIL_API_KEY` or `VIGIL_API_KEY_FILE`.
fn resolve_token(
    o: &mut Overrides<'_, '_, '_>,
    key: &str,
    inline: Option<Spanned<String>>,
    file: Option<Spanned<String>>,
    base: &Path,
) -> Option<String> {
    let file_key = format!("{key}_file");
    // Either variable replaces both keys of the file.
    let (token_var, env_token) = o.var("api", key);
    let (file_var, env_file) = o.var("api", &file_key);
    let (token, token_file, relative_to) = if env_token.is_some() || env_file.is_some() {
        let token = env_token.map(|value| Setting {
            value,
            at: At::Env(token_var.clone()),
        });
        let file = env_file.map(|value| Setting {
            value,
            at: At::Env(file_var.clone()),
        });
        (token, file, Path::new(""))
    } else {
        (
            inline.map(Setting::from_file),
            file.map(Setting::from_file),
            base,
        )
    };
    match (token, token_file) {
        (Some(token), Some(file)) => {
            let message = match &token.at {
                At::Span(span) => format!(
                    "set either `{key}` or `{file_key}`, not both (`{key}` is set at line {})",
                    o.report.line_of(span.start)
                ),
                At::Env(_) => format!("set either {token_var} or {file_var}, not both"),
            };
            o.report.at(&file.at, message);
            None
        }
        (Some(token), None) => match check_token(&token.value, key) {
            Ok(()) => Some(token.value),
            Err(problem) => {
                o.report.at(&token.at, format!("the token {problem}"));
                None
            }
        },
        (None, Some(file)) => read_token(&file, key, relative_to, o.report),
        (None, None) => None,
    }
}

/// `[api] tls_*` as written (or given by their variables).
struct RawTls {
    cert: Option<Setting<String>>,
    key: Option<Setting<String>>,
    client_ca: Option<Setting<String>>,
    peer_ca: Option<Setting<String>>,
}

impl RawTls {
    /// The TLS settings, with the certificate, key and CAs read and checked now, so that a file
    /// that cannot be served is an error at its setting, at start and at reload alike.
    fn build(self, report: &mut Report<'_>, base: &Path) -> Option<ApiTls> {
        // A path from the file is relative to the file's directory; one from a variable, to the
        // working directory.
        let path = |setting: &Setting<String>| match setting.at {
            At::Env(_) => PathBuf::from(&setting.value),
            At::Span(_) => base.join(&setting.value),
        };
        let (cert, key) = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => (cert, key),
            (Some(alone), None) => {
                report.at(
                    &alone.at,
                    "tls_cert needs tls_key (the certificate's private key)",
                );
                return None;
            }
            (None, Some(alone)) => {
                report.at(&alone.at, "tls_key needs tls_cert (the certificate chain)");
                return None;
            }
            (None, None) => {
                for alone in [&self.client_ca, &self.peer_ca].into_iter().flatten() {
                    report.at(&alone.at, "TLS needs tls_cert and tls_key as well");
                }
                return None;
            }
        };
        let files = vigil_api::serve::TlsFiles {
            cert: path(cert),
            key: path(key),
            client_ca: self.client_ca.as_ref().map(path),
        };
        if let Err(error) = vigil_api::serve::Tls::load(files.clone()) {
            report.at(&cert.at, format!("TLS cannot be served: {error}"));
            return None;
        }
        if let Some(peer_ca) = &self.peer_ca {
            let read = std::fs::read(path(peer_ca)).map_err(|e| e.to_string());
            let certificates = read.and_then(|pem| {
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| e.to_string())
            });
            match certificates {
                Ok(certificates) if !certificates.is_empty() => {}
                Ok(_) => report.at(&peer_ca.at, "tls_ca holds no PEM certificate"),
                Err(error) => report.at(&peer_ca.at, format!("tls_ca cannot be read: {error}")),
            }
        }
        Some(ApiTls {
            files,
            peer_ca: self.peer_ca.as_ref().map(path),
        })
    }
}

fn parse_bind(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    const ACCEPTED: &str =
        "write IP:PORT, e.g. \"127.0.0.1:8081\", \"0.0.0.0:8081\" or \"[::]:8081\"";
    let reason = if text.parse::<IpAddr>().is_ok() {
        "the port is missing"
    } else if text
        .rsplit_once(':')
        .is_some_and(|(host, _)| host.parse::<IpAddr>().is_err())
    {
        "the host must be an IP address, not a name"
    } else {
        "not an address"
    };
    Err(format!(
        "invalid bind address \"{text}\": {reason}; {ACCEPTED}"
    ))
}

/// Why a token of `[api] KEY` cannot be sent as `Authorization: Bearer TOKEN`.
fn check_token(token: &str, key: &str) -> Result<(), String> {
    if token.is_empty() {
        Err(format!(
            "is empty (leave `{key}` and `{key}_file` out to leave the API open)"
        ))
    } else if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err("must be one word without spaces or control characters (it is sent as `Authorization: Bearer TOKEN`)".to_owned())
    } else {
        Ok(())
    }
}

fn read_token(
    file: &Setting<String>,
    key: &str,
    relative_to: &Path,
    report: &mut Report<'_>,
) -> Option<String> {
    let path: PathBuf = relative_to.join(&file.value);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let token = text.trim();
            match check_token(token, key) {
                Ok(()) => Some(token.to_owned()),
                Err(problem) => {
                    report.at(
                        &file.at,
                        format!("the token in \"{}\" {problem}", path.display()),
                    );
                    None
                }
            }
        }
        Err(e) => {
            report.at(
                &file.at,
                format!("cannot read {key}_file \"{}\": {e}", path.display()),
            );
            None
        }
    }
}

/// `[health]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHealth {
    healthy_threshold: Option<Spanned<f64>>,
    degraded_threshold: Option<Spanned<f64>>,
    history_size: Option<Spanned<usize>>,
    instance_history_size: Option<Spanned<usize>>,
    history_max_age: Option<Spanned<HumanDuration>>,
    score_window: Option<Spanned<usize>>,
    max_checks: Option<Spanned<usize>>,
}

impl RawHealth {
    fn build(self, o: &mut Overrides<'_, '_, '_>) -> HealthConfig {
        let mut health = HealthConfig::default();
        let healthy = o.ratio(self.healthy_threshold, "health", "healthy_threshold");
        let degraded = o.ratio(self.degraded_threshold, "health", "degraded_threshold");
        let mut in_range = true;
        for (setting, key) in [
            (&healthy, "healthy_threshold"),
            (&degraded, "degraded_threshold"),
        ] {
            if let Some(setting) = setting {
                if !(0.0..=1.0).contains(&setting.value) {
                    in_range = false;
                    o.report.at(
                        &setting.at,
                        format!(
                            "{key} must be from 0 to 1 (got {}), e.g. 0.9",
                            setting.value
                        ),
                    );
                }
            }
        }
        if let Some(healthy) = &healthy {
            health.healthy_threshold = healthy.value;
        }
        if let Some(degraded) = &degraded {
            health.degraded_threshold = degraded.value;
        }
        if in_range && health.degraded_threshold > health.healthy_threshold {
            if let Some(at) = degraded.as_ref().or(healthy.as_ref()).map(|s| &s.at) {
                o.report.at(
                    at,
                    format!(
                        "degraded_threshold ({}) must not be above healthy_threshold ({})",
                        health.degraded_threshold, health.healthy_threshold
                    ),
                );
            }
        }
        if let Some(size) = o.count_within(self.history_size, "health", "history_size", MAX_HISTORY)
        {
            health.history_size = size;
        }
        if let Some(size) = o.count_within(
            self.instance_history_size,
            "health",
            "instance_history_size",
            MAX_INSTANCE_HISTORY,
        ) {
            health.instance_history_size = size;
        }
        if let Some(age) = o.duration(self.history_max_age, "health", limits::HISTORY_MAX_AGE) {
            health.history_max_age = age.value;
        }
        if let Some(window) = o.count_within(
            self.score_window,
            "health",
            "score_window",
            MAX_SCORE_WINDOW,
        ) {
            health.score_window = window;
        }
        if let Some(max) = o.count_within(self.max_checks, "health", "max_checks", MAX_CHECKS) {
            health.max_checks = max;
        }
        health
    }
}

/// `[shutdown]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShutdown {
    timeout: Option<Spanned<HumanDuration>>,
    drain: Option<Spanned<HumanDuration>>,
    on_critical: Option<Spanned<HumanDuration>>,
}

impl RawShutdown {
    fn build(self, o: &mut Overrides<'_, '_, '_>) -> ShutdownConfig {
        let mut shutdown = ShutdownConfig::default();
        if let Some(timeout) = o.duration(self.timeout, "shutdown", limits::SHUTDOWN_TIMEOUT) {
            shutdown.timeout = timeout.value;
        }
        if let Some(drain) = o.duration(self.drain, "shutdown", limits::SHUTDOWN_DRAIN) {
            shutdown.drain = drain.value;
        }
        shutdown.on_critical = o
            .duration(self.on_critical, "shutdown", limits::SHUTDOWN_ON_CRITICAL)
            .map(|s| s.value);
        shutdown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn ok(source: &str) -> Config {
        parse_with_env(source, "vigil.toml", no_env).expect("valid config")
    }

    /// Every error as (line, column, message).
    fn errors_with(
        source: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Vec<(usize, usize, String)> {
        parse_with_env(source, "vigil.toml", env)
            .expect_err("the config has errors")
            .0
            .into_iter()
            .map(|e| (e.line, e.column, e.message))
            .collect()
    }

    fn errors(source: &str) -> Vec<(usize, usize, String)> {
        errors_with(source, no_env)
    }

    #[test]
    fn operations_settings_are_checked_where_they_are_written() {
        assert_eq!(
            ok("[node]\nlog = \"warn,vigil_cluster=debug\"\n")
                .node
                .log
                .as_deref(),
            Some("warn,vigil_cluster=debug")
        );
        let errs = errors("[node]\nlog = \"info,[=\"\n");
        assert_eq!((errs.len(), errs[0].0), (1, 2), "{errs:?}");
        assert!(errs[0].2.contains("is not a log filter"), "{errs:?}");

        let errs = errors("[api]\ntls_cert = \"cert.pem\"\n");
        assert_eq!((errs.len(), errs[0].0), (1, 2), "{errs:?}");
        assert!(errs[0].2.contains("tls_cert needs tls_key"), "{errs:?}");
        let errs = errors("[api]\ntls_client_ca = \"ca.pem\"\n");
        assert!(errs[0].2.contains("needs tls_cert and tls_key"), "{errs:?}");
        let errs =
            errors("[api]\ntls_cert = \"/nonexistent.pem\"\ntls_key = \"/nonexistent.key\"\n");
        assert_eq!((errs.len(), errs[0].0), (1, 2), "{errs:?}");
        assert!(errs[0].2.contains("/nonexistent.pem"), "{errs:?}");

        let errs = errors("[cluster]\nprotocol_version = 9\n");
        assert_eq!((errs.len(), errs[0].0), (1, 2), "{errs:?}");
        assert!(errs[0].2.contains("protocol version 9"), "{errs:?}");
        let pinned = ok("[cluster]\nprotocol_version = 3\n");
        let cluster = pinned.cluster.expect("a cluster");
        assert_eq!(cluster.protocol.versions.max, 3);
    }

    #[test]
    fn webhooks_are_validated_at_their_keys() {
        let config = ok("[[webhooks]]\nurl = \"https://chat.example/hooks/T0\"\n");
        let hook = &config.webhooks[0];
        assert_eq!(hook.categories.len(), 7, "every category by default");
        assert_eq!(hook.min_severity, vigil_api::webhooks::Severity::Info);
        assert_eq!((hook.retries, hook.queue), (5, 1024));
        let source = r#"[[webhooks]]
url = "ftp://files.example/"
events = ["check", "weather"]
min_severity = "loud"
secret = "short"
timeout = "10ms"
retries = 99
queue = 0
"#;
        let found = errors(source);
        let expected = [
            (2, 7, "url: \"ftp://files.example/\" is not an http:// or https:// URL with a host"),
            (3, 20, "events: unknown event category \"weather\": write one of \"status\", \"check\", \"member\", \"leader\", \"service\", \"election\", \"neighbor\""),
            (4, 16, "min_severity: unknown severity \"loud\": write one of \"info\", \"warning\", \"critical\""),
            (5, 10, "secret: 5 bytes, at least 16 (vigil keygen makes one)"),
            (7, 11, "retries: 99, at most 20"),
            (8, 9, "queue: 0, from 1 to 65536"),
        ];
        for (line, column, message) in expected {
            assert!(
                found
                    .iter()
                    .any(|(l, c, m)| (*l, *c, m.as_str()) == (line, column, message)),
                "{line}:{column} {message} in {found:?}"
            );
        }
        assert!(
            found
                .iter()
                .any(|(l, _, m)| *l == 6 && m.contains("timeout")),
            "{found:?}"
        );
    }

    #[test]
    fn connection_check_and_history_limits_are_held_to_their_ranges() {
        for (source, message) in [
            (
                "[api]\nmax_connections = 0\n",
                "max_connections must be from 1 to 1048576",
            ),
            (
                "[api]\nmax_connections = 99999999999\n",
                "max_connections must be from 1 to 1048576",
            ),
            (
                "[health]\nmax_checks = 0\n",
                "max_checks must be from 1 to 1000000",
            ),
            (
                "[health]\nmax_checks = 50000000\n",
                "max_checks must be from 1 to 1000000",
            ),
            (
                "[health]\nhistory_size = 0\n",
                "history_size must be from 1 to 10000",
            ),
            (
                "[health]\nhistory_size = 100000000\n",
                "history_size must be from 1 to 10000",
            ),
            (
                "[health]\ninstance_history_size = 5000\n",
                "instance_history_size must be from 1 to 1000",
            ),
            (
                "[health]\nscore_window = 0\n",
                "score_window must be from 1 to 10000",
            ),
        ] {
            let errs = errors(source);
            assert_eq!(errs.len(), 1, "{source}: {errs:?}");
            assert_eq!(errs[0].0, 2, "{source}");
            assert!(errs[0].2.starts_with(message), "{source}: {}", errs[0].2);
        }
        let config = ok("[api]\nmax_connections = 4096\n[health]\nmax_checks = 20000\n");
        assert_eq!(config.api.max_connections, Some(4096));
        assert_eq!(config.health.max_checks, 20000);
    }

    /// Positions only.
    fn positions(source: &str) -> Vec<(usize, usize)> {
        errors(source).into_iter().map(|(l, c, _)| (l, c)).collect()
    }

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    /// A file in the temp dir, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(tag: &str, content: &str) -> Self {
            let unique = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let path = std::env::temp_dir().join(format!(
                "vigil-config-{tag}-{}-{unique}",
                std::process::id()
            ));
            std::fs::write(&path, content).expect("write temp file");
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn the_example_file_is_valid() {
        let config = ok(include_str!("../../../examples/vigil.toml"));
        let names: Vec<&str> = config.checks.iter().map(|c| c.spec.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "api",
                "postgres-port",
                "postgres-ready",
                "disk-root",
                "memory",
                "nightly-backup",
                "search"
            ]
        );
        assert!(config.checks[0].spec.critical);
        assert!(!config.checks[6].spec.enabled);
        assert_eq!(config.node.id, "web-1");
        assert_eq!(config.node.version.as_deref(), Some("1.4.2"));
        assert_eq!(config.api, ApiConfig::default());
        assert_eq!(config.health, HealthConfig::default());
        assert_eq!(config.shutdown.drain, Duration::from_secs(5));
        assert_eq!(config.shutdown.on_critical, None);
    }

    #[test]
    fn an_empty_file_means_defaults() {
        let config = ok("");
        assert!(!config.node.id.is_empty());
        assert_eq!(config.node.version, None);
        assert_eq!(config.api.bind, "127.0.0.1:8081".parse().expect("address"));
        assert_eq!(config.api.token, None);
        assert_eq!(config.health.healthy_threshold, 0.95);
        assert_eq!(config.health.degraded_threshold, 0.75);
        assert_eq!(config.health.history_size, 100);
        assert_eq!(config.health.history_max_age, Duration::from_secs(3600));
        assert_eq!(config.health.score_window, 20);
        assert_eq!(config.shutdown.timeout, Duration::from_secs(30));
        assert_eq!(config.shutdown.drain, Duration::ZERO);
        assert_eq!(config.shutdown.on_critical, None);
        assert!(config.checks.is_empty());
    }

    #[test]
    fn the_default_node_id_is_the_host_name() {
        assert_eq!(
            first_name([Some("box-7\n".into()), Some("other".into())]),
            "box-7"
        );
        assert_eq!(
            first_name([Some(" \n".into()), Some("from-env".into())]),
            "from-env"
        );
        assert_eq!(first_name([None, None]), "vigil");
    }

    #[test]
    fn settings_reach_the_engine() {
        let config = ok(r#"
[node]
id = "n1"
version = "2.0"
[health]
healthy_threshold = 0.9
degraded_threshold = 0.5
history_size = 10
history_max_age = "10m"
score_window = 5
[shutdown]
timeout = "5s"
drain = "500ms"
on_critical = "1m30s"
"#);
        let engine = config.health.engine_config(&config.node);
        assert_eq!(engine.node_id, "n1");
        assert_eq!(engine.version, "2.0");
        assert_eq!(engine.healthy_threshold, 0.9);
        assert_eq!(engine.degraded_threshold, 0.5);
        assert_eq!(engine.history_len, 10);
        assert_eq!(engine.history_age, Duration::from_secs(600));
        assert_eq!(engine.score_window, 5);
        assert!(engine.stagger);
        assert_eq!(config.shutdown.timeout, Duration::from_secs(5));
        assert_eq!(config.shutdown.drain, Duration::from_millis(500));
        assert_eq!(config.shutdown.on_critical, Some(Duration::from_secs(90)));
        let unversioned = NodeConfig {
            id: "n2".into(),
            version: None,
            log: None,
        };
        assert_eq!(
            config.health.engine_config(&unversioned).version,
            EngineConfig::default().version
        );
    }

    #[test]
    fn syntax_errors_have_positions() {
        // Unquoted duration: column of the value, and a hint.
        let errs = errors("[shutdown]\ntimeout = 30s\n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!((errs[0].0, errs[0].1), (2, 11));
        assert!(
            errs[0].2.starts_with("string values must be quoted"),
            "{}",
            errs[0].2
        );
        assert!(
            errs[0].2.contains("quote strings, durations and addresses"),
            "{}",
            errs[0].2
        );
        // An unquoted address reads as a bad float from where it stops being one.
        let errs = errors("[api]\nbind = 127.0.0.1:80\n");
        assert_eq!((errs[0].0, errs[0].1), (2, 13));
        assert!(errs[0].2.contains("quote strings"), "{}", errs[0].2);
        // An unterminated table header: at the end of the line.
        assert_eq!(positions("[node"), [(1, 6)]);
        // Every syntax error is reported, in file order.
        assert_eq!(
            positions(
                "[node]\nid = \"a\"\nid = \"b\"\n\n[[checks]]\nname = \"x\"\ninterval = 5s\n"
            ),
            [(3, 1), (7, 12)]
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        // "ü" is two bytes: the bad value is byte 29 of its line but character 28.
        let errs = errors(
            "[[checks]]\nname = \"a\"\nprobe = \"http://x\"\nheaders = { \"ü\" = \"x\", b = 1 }\n",
        );
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!((errs[0].0, errs[0].1), (4, 28));
    }

    #[test]
    fn unknown_keys_and_sections_point_at_the_key() {
        let errs = errors("[node]\nid = \"n\"\n  colour = \"red\"\n\n[apii]\nbind = \"x\"\n");
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!((errs[0].0, errs[0].1), (3, 3));
        assert!(
            errs[0].2.contains("unknown field `colour`"),
            "{}",
            errs[0].2
        );
        assert!(
            errs[0].2.contains("expected one of `id`, `version`, `log`"),
            "{}",
            errs[0].2
        );
        assert_eq!((errs[1].0, errs[1].1), (5, 2));
        assert!(
            errs[1].2.contains("unknown section [apii]"),
            "{}",
            errs[1].2
        );

        let errs = errors("id = \"n\"\n");
        assert_eq!((errs[0].0, errs[0].1), (1, 1));
        assert!(
            errs[0].2.contains("unknown top-level key `id`"),
            "{}",
            errs[0].2
        );

        let errs = errors("[[checks]]\nname = \"a\"\nprobe = \"memory\"\nretries = 3\n");
        assert_eq!((errs[0].0, errs[0].1), (4, 1));
        assert!(
            errs[0].2.contains("unknown field `retries`"),
            "{}",
            errs[0].2
        );
    }

    #[test]
    fn bad_values_point_at_the_value_and_say_what_is_accepted() {
        let errs = errors("[[checks]]\nname = \"a\"\nprobe = \"memory\"\ninterval = \"5x\"\n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!((errs[0].0, errs[0].1), (4, 12));
        assert!(
            errs[0].2.starts_with("interval: invalid duration \"5x\""),
            "{}",
            errs[0].2
        );
        assert!(
            errs[0].2.contains("\"500ms\", \"30s\", \"1m30s\""),
            "{}",
            errs[0].2
        );

        let errs = errors("[shutdown]\ntimeout = 30\n");
        assert_eq!((errs[0].0, errs[0].1), (2, 11));
        assert!(
            errs[0].2.contains("timeout: invalid type: integer `30`"),
            "{}",
            errs[0].2
        );

        let errs = errors("[health]\nhistory_size = -1\n");
        assert_eq!((errs[0].0, errs[0].1), (2, 16));
        assert!(errs[0].2.starts_with("history_size: "), "{}", errs[0].2);

        let errs =
            errors("[[checks]]\nname = \"a\"\nprobe = \"http://x\"\nheaders = { Accept = 1 }\n");
        assert_eq!((errs[0].0, errs[0].1), (4, 22));
        assert!(
            errs[0].2.starts_with("headers: invalid type: integer `1`"),
            "{}",
            errs[0].2
        );
    }

    #[test]
    fn sections_of_the_wrong_shape() {
        let errs = errors("node = \"n1\"\nchecks = 3\n");
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!((errs[0].0, errs[0].1), (1, 8));
        assert!(
            errs[0].2.contains("`node` must be a table"),
            "{}",
            errs[0].2
        );
        assert_eq!((errs[1].0, errs[1].1), (2, 10));
        assert!(
            errs[1].2.contains("write each check as a [[checks]] table"),
            "{}",
            errs[1].2
        );

        let errs = errors("checks = [1, { name = \"m\", probe = \"memory\" }]\n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!((errs[0].0, errs[0].1), (1, 11));
    }

    #[test]
    fn every_error_of_every_entry_and_section_is_reported() {
        let source = r#"[api]
bind = "127.0.0.1"
port = 80

[health]
healthy_threshold = "high"
score_window = 0

[[checks]]
name = "web"
probe = "http://127.0.0.1:8080/"
interval = "5x"
timeout = "forever"

[[checks]]
name = "db"
probe = "tcp://db.internal"

[[checks]]
probe = "memory"

[[checks]]
name = "ok"
probe = "memory"
"#;
        let result = parse_with_env(source, "vigil.toml", no_env);
        let errs = errors(source);
        assert_eq!(
            errs.iter().map(|(l, c, _)| (*l, *c)).collect::<Vec<_>>(),
            [
                (2, 8),
                (3, 1),
                (6, 21),
                (7, 16),
                (12, 12),
                (13, 11),
                (17, 9),
                (19, 1)
            ],
            "{errs:#?}"
        );
        assert!(errs[0].2.contains("the port is missing"), "{}", errs[0].2);
        assert!(errs[1].2.contains("unknown field `port`"), "{}", errs[1].2);
        assert!(
            errs[2].2.starts_with("healthy_threshold: invalid type"),
            "{}",
            errs[2].2
        );
        assert!(
            errs[3].2.contains("score_window must be from 1 to 10000"),
            "{}",
            errs[3].2
        );
        assert!(
            errs[4].2.contains("invalid duration \"5x\""),
            "{}",
            errs[4].2
        );
        assert!(
            errs[5].2.contains("invalid duration \"forever\""),
            "{}",
            errs[5].2
        );
        assert!(
            errs[6].2.starts_with("probe: invalid tcp target"),
            "{}",
            errs[6].2
        );
        assert_eq!(errs[7].2, "missing field `name`");

        // Displayed one per line, as file:line:column: message.
        let text = result.expect_err("errors").to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 8);
        assert!(
            lines[0].starts_with("vigil.toml:2:8: invalid bind address \"127.0.0.1\""),
            "{}",
            lines[0]
        );
        assert_eq!(lines[7], "vigil.toml:19:1: missing field `name`");
    }

    #[test]
    fn every_bad_key_of_one_entry_is_reported() {
        let source = "[[checks]]\nname = \"disk\"\nprobe = \"disk:relative\"\ninterval = 30\nenabled = \"yes\"\ncolour = 1\n";
        let errs = errors(source);
        assert_eq!(
            errs.iter().map(|(l, c, _)| (*l, *c)).collect::<Vec<_>>(),
            [(3, 9), (4, 12), (5, 11), (6, 1)],
            "{errs:#?}"
        );
        assert!(
            errs[0].2.starts_with("probe: invalid disk target"),
            "{}",
            errs[0].2
        );
        assert!(errs[1].2.starts_with("interval: "), "{}", errs[1].2);
        assert!(
            errs[2].2.starts_with("enabled: invalid type"),
            "{}",
            errs[2].2
        );
        assert!(
            errs[3].2.contains("unknown field `colour`"),
            "{}",
            errs[3].2
        );
    }

    #[test]
    fn a_bad_key_is_not_reported_again_as_missing() {
        // The bad ttl is reported; the ttl probe does not also complain that it has none.
        let errs = errors("[[checks]]\nname = \"job\"\nprobe = \"ttl\"\nttl = 30\n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!((errs[0].0, errs[0].1), (4, 7));
        // Nor are thresholds out of order against the default of a bad one.
        let errs = errors(
            "[[checks]]\nname = \"a\"\nprobe = \"memory\"\nfailures_before_degraded = 5\nfailures_before_unhealthy = \"x\"\n",
        );
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!((errs[0].0, errs[0].1), (5, 29));
        assert!(mentions("invalid ttl option `ttl`: missing", "ttl"));
        assert!(!mentions("invalid http option `expect_body`", "body"));
    }

    #[test]
    fn a_missing_probe_points_at_the_entry_and_names_the_check() {
        let errs = errors(
            "[node]\nid = \"x\"\n\n[[checks]]\nname = \"a\"\nprobe = \"memory\"\n\n[[checks]]\nname = \"b\"\ninterval = \"1ns\"\n",
        );
        assert_eq!(
            errs,
            [
                (
                    8,
                    1,
                    "check \"b\" has no `probe`: every check needs one, e.g. probe = \"http://127.0.0.1:8080/health\"".to_owned()
                ),
                (
                    10,
                    12,
                    "interval must be from 100ms to 24h, found 1ns".to_owned()
                )
            ]
        );
        let errs = errors("[[checks]]\ninterval = \"5s\"\n");
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(
            errs[0].2.starts_with("this check has no `probe`"),
            "{errs:?}"
        );
        assert!(errs[1].2.contains("name"), "{errs:?}");
        // A probe of the wrong type is reported once, not again as missing.
        let errs = errors("[[checks]]\nname = \"a\"\nprobe = 5\n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!((errs[0].0, errs[0].1), (3, 9));
    }

    #[test]
    fn check_definition_errors_point_at_their_key() {
        // Thresholds inverted: at failures_before_unhealthy.
        let errs = errors(
            "[[checks]]\nname = \"a\"\nprobe = \"memory\"\nfailures_before_degraded = 3\nfailures_before_unhealthy = 2\n",
        );
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!((errs[0].0, errs[0].1), (5, 29));
        assert!(
            errs[0].2.contains("failures_before_unhealthy (2)"),
            "{}",
            errs[0].2
        );

        // A zero interval: at interval.
        let errs = errors("[[checks]]\nname = \"a\"\nprobe = \"memory\"\n    interval = \"0s\"\n");
        assert_eq!((errs[0].0, errs[0].1), (4, 16));
        assert_eq!(errs[0].2, "interval must be from 100ms to 24h, found 0s");

        // A ttl probe without its ttl: at probe.
        let errs = errors("[[checks]]\nname = \"job\"\nprobe = \"ttl\"\n");
        assert_eq!((errs[0].0, errs[0].1), (3, 9));
        assert!(errs[0].2.contains("ttl"), "{}", errs[0].2);

        // A name the engine would refuse: at name.
        let errs = errors("[[checks]]\nname = \"my check\"\nprobe = \"memory\"\n");
        assert_eq!((errs[0].0, errs[0].1), (2, 8));
        assert!(
            errs[0].2.contains("invalid check name \"my check\""),
            "{}",
            errs[0].2
        );

        // A name in the neighbours' space: at name.
        let errs = errors("[[checks]]\nname = \"neighbor-db\"\nprobe = \"memory\"\n");
        assert_eq!((errs[0].0, errs[0].1), (2, 8));
        assert!(errs[0].2.contains("reserved"), "{}", errs[0].2);
    }

    /// Every duration setting, in a file where each is far too large for a clock.
    const HUGE: &str = "\"10000000000000000000s\"";
    const DURATION_KEYS: [(&str, &str, &str); 20] = [
        ("health", "history_max_age", "1s to 30d"),
        ("shutdown", "timeout", "1ms to 1h"),
        ("shutdown", "drain", "0s to 1h"),
        ("shutdown", "on_critical", "0s to 24h"),
        ("cluster", "heartbeat_interval", "10ms to 1m"),
        ("cluster", "phi_min_std_dev", "1ms to 1m"),
        ("cluster", "phi_acceptable_pause", "0s to 1m"),
        ("cluster", "probe_timeout", "10ms to 1m"),
        ("cluster", "suspicion_min", "100ms to 1h"),
        ("cluster", "suspicion_max", "100ms to 1h"),
        ("cluster", "gossip_interval", "10ms to 1m"),
        ("cluster", "push_pull_interval", "1s to 1h"),
        ("cluster", "reap_after", "1s to 7d"),
        ("cluster", "election_timeout", "60ms to 1m"),
        ("checks", "interval", "100ms to 24h"),
        ("checks", "timeout", "10ms to 1h"),
        ("checks", "start_period", "0s to 24h"),
        ("checks", "ttl", "1s to 7d"),
        ("neighbors", "interval", "100ms to 24h"),
        ("neighbors", "timeout", "10ms to 1h"),
    ];

    /// A config setting each duration of [`DURATION_KEYS`] to `value`, one key per line, and
    /// the line of each.
    fn every_duration(value: &str) -> (String, Vec<usize>) {
        let mut source = String::new();
        let mut lines = Vec::new();
        let mut current = "";
        for (section, key, _) in DURATION_KEYS {
            // A check reports its first bad value only, so each is in a check of its own.
            if section != current || section == "checks" {
                current = section;
                source += &match section {
                    "checks" => format!(
                        "[[checks]]\nname = \"job-{key}\"\nprobe = \"ttl\"\n{}",
                        if key == "ttl" { "" } else { "ttl = \"1m\"\n" }
                    ),
                    "neighbors" => {
                        "[[neighbors]]\nname = \"db\"\naddress = \"127.0.0.1:5432\"\n".to_owned()
                    }
                    other => format!("[{other}]\n"),
                };
            }
            lines.push(source.lines().count() + 1);
            source += &format!("{key} = {value}\n");
        }
        (source, lines)
    }

    #[test]
    fn every_duration_out_of_range_is_reported_at_its_value_with_the_range() {
        let (source, lines) = every_duration(HUGE);
        let errs = errors(&source);
        assert_eq!(errs.len(), DURATION_KEYS.len(), "{errs:#?}");
        for ((line, column, message), ((_, key, range), expected_line)) in
            errs.iter().zip(DURATION_KEYS.iter().zip(&lines))
        {
            assert_eq!(
                (*line, *column),
                (*expected_line, key.len() + 4),
                "{message}"
            );
            assert_eq!(
                message,
                &format!("{key} must be from {range}, found 10000000000000000000s")
            );
        }

        let errs = errors("[health]\nhistory_max_age = \"20000y\"\n");
        assert_eq!(
            errs,
            [(
                2,
                19,
                "history_max_age must be from 1s to 30d, found 7305000d".to_owned()
            )]
        );
        let errs = errors("[[checks]]\nname = \"a\"\nprobe = \"memory\"\ninterval = \"1ns\"\n");
        assert_eq!(
            errs,
            [(
                4,
                12,
                "interval must be from 100ms to 24h, found 1ns".to_owned()
            )]
        );
        let errs = errors_with("", env_of(&[("VIGIL_SHUTDOWN_DRAIN", "2h")]));
        assert_eq!(
            errs,
            [(
                0,
                0,
                "VIGIL_SHUTDOWN_DRAIN: drain must be from 0s to 1h, found 2h".to_owned()
            )]
        );
    }

    #[test]
    fn the_largest_durations_are_accepted() {
        let (source, _) = every_duration("\"1s\"");
        let largest: String = source
            .lines()
            .map(|line| {
                let key = line.split(" = ").next().unwrap_or_default();
                let range = DURATION_KEYS
                    .iter()
                    .find(|(_, k, _)| *k == key)
                    .map(|(_, _, range)| range);
                match range {
                    Some(range) => format!(
                        "{key} = \"{}\"\n",
                        range.rsplit(' ').next().unwrap_or_default()
                    ),
                    None => format!("{line}\n"),
                }
            })
            .collect();
        // Keys shared by sections (`timeout`, `interval`) take the first range listed: the
        // smaller, so every value is in range.
        let config = ok(&largest);
        assert_eq!(
            config.health.history_max_age,
            Duration::from_secs(30 * 86_400)
        );
        let cluster = config.cluster.expect("cluster");
        assert_eq!(cluster.election_timeout, Duration::from_secs(60));
        assert_eq!(cluster.protocol.reap_after, Duration::from_secs(7 * 86_400));
    }

    #[test]
    fn duplicate_names_point_at_the_second_and_name_the_first() {
        let source = "[[checks]]\nname = \"db\"\nprobe = \"memory\"\n\n[[checks]]\nname = \"x\"\nprobe = \"memory\"\n\n[[checks]]\nprobe = \"memory\"\nname   = \"db\"\n";
        let errs = errors(source);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!((errs[0].0, errs[0].1), (11, 10));
        assert!(
            errs[0].2.contains("duplicate check name \"db\""),
            "{}",
            errs[0].2
        );
        assert!(errs[0].2.contains("at line 2"), "{}", errs[0].2);
    }

    #[test]
    fn api_and_health_values_are_validated_at_their_key() {
        let errs = errors("[api]\nbind = \"localhost:80\"\n");
        assert_eq!((errs[0].0, errs[0].1), (2, 8));
        assert!(errs[0].2.contains("must be an IP address"), "{}", errs[0].2);

        let errs = errors("[health]\nhealthy_threshold = 1.5\n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!((errs[0].0, errs[0].1), (2, 21));
        assert!(errs[0].2.contains("must be from 0 to 1"), "{}", errs[0].2);

        let errs = errors("[health]\nhealthy_threshold = 0.8\ndegraded_threshold = 0.9\n");
        assert_eq!((errs[0].0, errs[0].1), (3, 22));
        assert!(
            errs[0]
                .2
                .contains("must not be above healthy_threshold (0.8)"),
            "{}",
            errs[0].2
        );
        // Only healthy set, below the default degraded threshold: at healthy_threshold.
        let errs = errors("[health]\nhealthy_threshold = 0.5\n");
        assert_eq!((errs[0].0, errs[0].1), (2, 21));
        // Whole numbers are numbers too.
        assert_eq!(
            ok("[health]\nhealthy_threshold = 1\n")
                .health
                .healthy_threshold,
            1.0
        );

        let errs = errors("[api]\ntoken = \"a\"\ntoken_file = \"/nonexistent\"\n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!((errs[0].0, errs[0].1), (3, 14));
        assert!(
            errs[0].2.contains("not both (`token` is set at line 2)"),
            "{}",
            errs[0].2
        );

        let errs = errors("[api]\ntoken = \"two words\"\n");
        assert_eq!((errs[0].0, errs[0].1), (2, 9));
        assert!(
            !errs[0].2.contains("two words"),
            "the token is not echoed: {}",
            errs[0].2
        );
    }

    #[test]
    fn the_token_is_read_from_token_file() {
        let file = TempFile::new("token", "  s3cret-token\n");
        let source = format!("[api]\ntoken_file = \"{}\"\n", file.0.display());
        assert_eq!(ok(&source).api.token.as_deref(), Some("s3cret-token"));

        // Relative to the config file's directory.
        let dir = file.0.parent().expect("temp dir");
        let name = file.0.file_name().expect("file name").to_string_lossy();
        let config = parse_with_env(
            &format!("[api]\ntoken_file = \"{name}\"\n"),
            &dir.join("vigil.toml").display().to_string(),
            no_env,
        )
        .expect("valid config");
        assert_eq!(config.api.token.as_deref(), Some("s3cret-token"));

        let empty = TempFile::new("empty-token", "\n");
        let errs = errors(&format!("[api]\ntoken_file = \"{}\"\n", empty.0.display()));
        assert_eq!((errs[0].0, errs[0].1), (2, 14));
        assert!(errs[0].2.contains("is empty"), "{}", errs[0].2);
    }

    #[test]
    fn an_unreadable_token_file_is_an_error_at_its_key() {
        let missing =
            std::env::temp_dir().join(format!("vigil-config-missing-{}", std::process::id()));
        let errs = errors(&format!(
            "[api]\n\ntoken_file = \"{}\"\n",
            missing.display()
        ));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!((errs[0].0, errs[0].1), (3, 14));
        assert!(
            errs[0].2.starts_with("cannot read token_file"),
            "{}",
            errs[0].2
        );
        assert!(
            errs[0].2.contains(&missing.display().to_string()),
            "{}",
            errs[0].2
        );
    }

    #[test]
    fn environment_variables_override_the_file() {
        let source = "[node]\nid = \"file\"\n[api]\nbind = \"127.0.0.1:1\"\ntoken_file = \"/nonexistent\"\n[health]\nscore_window = 3\n";
        let config = parse_with_env(
            source,
            "vigil.toml",
            env_of(&[
                ("VIGIL_NODE_ID", "n1"),
                ("VIGIL_API_BIND", " 0.0.0.0:9000 "),
                ("VIGIL_API_TOKEN", "from-env"),
                ("VIGIL_HEALTH_HEALTHY_THRESHOLD", "0.9"),
                ("VIGIL_HEALTH_HISTORY_SIZE", "7"),
                ("VIGIL_HEALTH_SCORE_WINDOW", ""),
                ("VIGIL_SHUTDOWN_ON_CRITICAL", "1m"),
                ("VIGIL_SHUTDOWN_DRAIN", "2s"),
            ]),
        )
        .expect("valid config");
        assert_eq!(config.node.id, "n1");
        assert_eq!(config.api.bind, "0.0.0.0:9000".parse().expect("address"));
        // VIGIL_API_TOKEN replaces the file's token_file.
        assert_eq!(config.api.token.as_deref(), Some("from-env"));
        assert_eq!(config.health.healthy_threshold, 0.9);
        assert_eq!(config.health.history_size, 7);
        // Empty counts as unset.
        assert_eq!(config.health.score_window, 3);
        assert_eq!(config.shutdown.on_critical, Some(Duration::from_secs(60)));
        assert_eq!(config.shutdown.drain, Duration::from_secs(2));
    }

    #[test]
    fn bad_environment_values_name_the_variable() {
        let source = "[api]\nbind = \"127.0.0.1\"\n";
        let result = parse_with_env(
            source,
            "vigil.toml",
            env_of(&[
                ("VIGIL_API_BIND", "0.0.0.0"),
                ("VIGIL_SHUTDOWN_TIMEOUT", "5x"),
                ("VIGIL_HEALTH_DEGRADED_THRESHOLD", "2"),
            ]),
        );
        let errs = result.expect_err("bad environment").0;
        // The file's bad bind is overridden, so not reported; each variable is, with its name.
        assert_eq!(errs.len(), 3, "{errs:#?}");
        for e in &errs {
            assert_eq!((e.file.as_str(), e.line, e.column), ("environment", 0, 0));
        }
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert!(
            text[0].starts_with("environment: VIGIL_API_BIND: invalid bind address \"0.0.0.0\": the port is missing"),
            "{}",
            text[0]
        );
        assert!(
            text[1].starts_with("environment: VIGIL_HEALTH_DEGRADED_THRESHOLD: degraded_threshold must be from 0 to 1"),
            "{}",
            text[1]
        );
        assert!(
            text[2].starts_with("environment: VIGIL_SHUTDOWN_TIMEOUT: invalid duration \"5x\""),
            "{}",
            text[2]
        );

        // Environment errors come after the file's, and both token variables at once are refused.
        let errs = errors_with(
            "[shutdown]\ndrain = \"soon\"\n",
            env_of(&[("VIGIL_API_TOKEN", "a"), ("VIGIL_API_TOKEN_FILE", "/x")]),
        );
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!((errs[0].0, errs[0].1), (2, 9));
        assert_eq!(errs[1].0, 0);
        assert!(
            errs[1]
                .2
                .starts_with("VIGIL_API_TOKEN_FILE: set either VIGIL_API_TOKEN or"),
            "{}",
            errs[1].2
        );
    }

    #[test]
    fn environment_errors_are_reported_with_syntax_errors() {
        let errs = errors_with("[node\n", env_of(&[("VIGIL_HEALTH_HISTORY_SIZE", "many")]));
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(errs[0].0, 1);
        assert!(
            errs[1]
                .2
                .starts_with("VIGIL_HEALTH_HISTORY_SIZE: invalid count \"many\""),
            "{}",
            errs[1].2
        );
    }

    #[test]
    fn an_unreadable_file_is_one_error_naming_it() {
        let path =
            std::env::temp_dir().join(format!("vigil-config-absent-{}.toml", std::process::id()));
        let errs = load(&path).expect_err("no such file").0;
        assert_eq!(errs.len(), 1);
        let text = errs[0].to_string();
        assert!(
            text.starts_with(&format!("{}: cannot read the config file", path.display())),
            "{text}"
        );

        let file = TempFile::new("load", "[node]\nid = \"from-disk\"\n");
        assert_eq!(load(&file.0).expect("valid config").node.id, "from-disk");
    }

    #[test]
    fn services_are_registrations_of_this_node_with_a_default_id() {
        let config = ok(r#"[node]
id = "n1"
[cluster]
[[services]]
name = "api"
address = "127.0.0.1"
port = 9669
tags = ["blue"]
deregister_critical_after = "10m"
[[services.checks]]
name = "http"
probe = "http://127.0.0.1:9669/health"
interval = "1s"
[[services]]
name = "db"
id = "db-1"
address = "::1"
port = 5432
[[services]]
name = "batch"
id = "batch-1"
address = "127.0.0.1"
port = 1
ephemeral = true
checks = []
"#);
        let services = &config.services;
        assert_eq!(services.len(), 3);
        assert_eq!(services[0].id, "api-127.0.0.1:9669");
        assert_eq!(services[0].tags, ["blue"]);
        assert_eq!(services[0].checks.as_ref().map(Vec::len), Some(1));
        assert_eq!(
            services[0].node, None,
            "registered on the node asked: this one"
        );
        assert_eq!(services[1].id, "db-1");
        assert_eq!(services[1].checks, None, "left out: the default TCP check");
        assert_eq!(services[2].checks, Some(vec![]), "[]: no checks");
        assert!(services[2].ephemeral);
        assert!(ok("[cluster]\n").services.is_empty());
    }

    #[test]
    fn service_errors_point_at_their_key() {
        let entry = "[cluster]\n[[services]]\nname = \"api\"\naddress = \"127.0.0.1\"\n";
        for (rest, at, message) in [
            ("port = 0\n", (5, 8), "port must be 1 to 65535"),
            ("port = 70000\n", (5, 8), "port must be 1 to 65535"),
            ("port = \"x\"\n", (5, 8), "port must be 1 to 65535"),
            (
                "port = 80\nderegister_critical_after = \"soon\"\n",
                (6, 29),
                "invalid duration",
            ),
            ("port = 80\ncolour = \"red\"\n", (6, 10), "unknown field `colour`"),
            ("port = 80\nnode = \"n2\"\n", (6, 1), "`node` is not one of its keys"),
            ("port = 80\nid = \"a b\"\n", (6, 6), "may not contain"),
            (
                "port = 80\n[[services.checks]]\nprobe = \"gopher://x\"\n",
                (7, 9),
                "checks[0].probe",
            ),
            (
                "port = 80\n[[services.checks]]\nprobe = \"tcp://127.0.0.1:80\"\ninterval = \"1ms\"\n",
                (8, 12),
                "checks[0].interval",
            ),
            ("", (2, 1), "missing field `port`"),
            (
                "port = 80\n[[services]]\nname = \"api\"\naddress = \"127.0.0.1\"\nport = 80\n",
                (6, 1),
                "already registered by the entry at line 2",
            ),
        ] {
            let source = format!("{entry}{rest}");
            let errs = errors(&source);
            assert_eq!(errs.len(), 1, "{source}: {errs:?}");
            let (line, column, text) = &errs[0];
            assert_eq!((*line, *column), at, "{source}: {text}");
            assert!(text.contains(message), "{source}: {text}");
        }
        let errs = errors("[[services]]\nname = \"api\"\naddress = \"127.0.0.1\"\nport = 80\n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!((errs[0].0, errs[0].1), (1, 3));
        assert!(errs[0].2.contains("needs a [cluster] section"), "{errs:?}");
    }

    #[test]
    fn the_dns_section_turns_dns_on_and_its_values_are_checked_at_their_key() {
        assert!(ok("[cluster]\n").dns.is_none(), "no section, no DNS");
        let dns = ok("[cluster]\n[dns]\n")
            .dns
            .expect("an empty section means defaults");
        assert_eq!(dns, DnsConfig::default());
        assert_eq!(dns.bind, SocketAddr::from(([127, 0, 0, 1], 8600)));
        let dns = ok("[cluster]\n[dns]\nbind = \"127.0.0.1:5353\"\ndomain = \"dc1.example.\"\nttl = \"30s\"\n")
            .dns
            .expect("a DNS section");
        assert_eq!(dns.bind.port(), 5353);
        assert_eq!(dns.domain, "dc1.example");
        assert_eq!(dns.ttl, Duration::from_secs(30));

        for (source, at, message) in [
            (
                "[cluster]\n[dns]\nbind = \"localhost:53\"\n",
                (3, 8),
                "must be an IP address",
            ),
            (
                "[cluster]\n[dns]\nbind = \"127.0.0.1\"\n",
                (3, 8),
                "the port is missing",
            ),
            (
                "[cluster]\n[dns]\nttl = \"2h\"\n",
                (3, 7),
                "ttl must be from 0s to 1h",
            ),
            (
                "[cluster]\n[dns]\nttl = \"soon\"\n",
                (3, 7),
                "invalid duration",
            ),
            (
                "[cluster]\n[dns]\ndomain = \"\"\n",
                (3, 10),
                "domain: the domain is empty",
            ),
            (
                "[cluster]\n[dns]\ndomain = \"a..b\"\n",
                (3, 10),
                "a label is empty",
            ),
            (
                "[cluster]\n[dns]\nport = 53\n",
                (3, 1),
                "unknown field `port`",
            ),
            ("[dns]\n", (1, 2), "needs a [cluster] section"),
        ] {
            let errs = errors(source);
            assert_eq!(errs.len(), 1, "{source}: {errs:?}");
            assert_eq!((errs[0].0, errs[0].1), at, "{source}: {errs:?}");
            assert!(errs[0].2.contains(message), "{source}: {}", errs[0].2);
        }
        let errs = errors_with("[cluster]\n[dns]\n", env_of(&[("VIGIL_DNS_TTL", "5h")]));
        assert!(
            errs[0].2.starts_with("VIGIL_DNS_TTL: ttl must be from"),
            "{errs:?}"
        );
    }

    #[test]
    fn the_cluster_section_turns_membership_on() {
        assert!(ok("").cluster.is_none(), "no section, no cluster");
        let defaults = ok("[cluster]\n")
            .cluster
            .expect("an empty section means defaults");
        assert_eq!(defaults.bind, SocketAddr::from(([127, 0, 0, 1], 7946)));
        assert_eq!(defaults.role, vigil_gossip::Role::Member);

        let key = vigil_gossip::crypto::Key::from_bytes([9; 32]).to_base64();
        let c = ok(&format!(
            "[cluster]\nbind = \"127.0.0.1:7000\"\nseeds = [\"127.0.0.1:7001\", \"127.0.0.1:7002\"]\nrole = \"voter\"\nvoters = [\"a\", \"b\", \"c\"]\ntags = {{ zone = \"a\" }}\nkey = \"{key}\"\nheartbeat_interval = \"250ms\"\nobservers = 3\nsuspicion_min = \"2s\"\n"
        ))
        .cluster
        .expect("cluster");
        assert_eq!(c.seeds.len(), 2);
        assert_eq!(c.role, vigil_gossip::Role::Voter);
        assert_eq!(c.voters, ["a", "b", "c"]);
        assert_eq!(c.tags.get("zone").map(String::as_str), Some("a"));
        assert!(c.keyring.is_some());
        assert_eq!(c.protocol.heartbeat_interval, Duration::from_millis(250));
        assert_eq!(c.protocol.observers, 3);
        assert_eq!(c.protocol.suspicion_min, Duration::from_secs(2));
    }

    #[test]
    fn cluster_errors_point_at_their_key() {
        let errs = errors(
            "[cluster]\nseeds = [\"127.0.0.1:1\", \"nowhere\"]\nrole = \"king\"\nkey = \"short\"\nobservers = 0\n",
        );
        let at: Vec<(usize, usize)> = errs.iter().map(|e| (e.0, e.1)).collect();
        assert_eq!(at, [(2, 25), (3, 8), (4, 7), (5, 13)], "{errs:?}");
        assert!(
            errs[0].2.contains("invalid seed \"nowhere\""),
            "{}",
            errs[0].2
        );
        assert!(errs[1].2.contains("unknown role \"king\""), "{}", errs[1].2);
        assert!(errs[2].2.contains("vigil keygen"), "{}", errs[2].2);
        assert!(
            errs[3].2.contains("observers must be at least 1"),
            "{}",
            errs[3].2
        );

        let errs = errors("[cluster]\nbind = \"0.0.0.0:7946\"\n");
        assert_eq!((errs[0].0, errs[0].1), (2, 8));
        assert!(errs[0].2.contains("advertise"), "{}", errs[0].2);
    }

    #[test]
    fn cluster_seeds_come_from_the_environment_as_a_list() {
        let env = env_of(&[
            ("VIGIL_CLUSTER_SEEDS", "127.0.0.1:1, 127.0.0.1:2"),
            ("VIGIL_CLUSTER_ROLE", "voter"),
        ]);
        let c = parse_with_env("[cluster]\n", "vigil.toml", env)
            .expect("valid")
            .cluster
            .expect("cluster");
        assert_eq!(c.seeds.len(), 2);
        assert_eq!(c.role, vigil_gossip::Role::Voter);
        let env = env_of(&[("VIGIL_CLUSTER_SEEDS", "127.0.0.1:1,bad")]);
        let errors = parse_with_env("[cluster]\n", "vigil.toml", env).expect_err("bad seed");
        assert!(
            errors
                .to_string()
                .contains("environment: VIGIL_CLUSTER_SEEDS: seeds: invalid seed \"bad\""),
            "{errors}"
        );
    }

    mod arbitrary_input {
        use super::super::parse_with_env;
        use proptest::prelude::*;

        /// Lines near the valid shape reach deeper than random text alone.
        fn document() -> impl Strategy<Value = String> {
            let line = prop_oneof![
                Just("[[checks]]".to_owned()),
                Just("[api]".to_owned()),
                Just("[health]".to_owned()),
                "(name|probe|interval|ttl|bind|token|max_used|healthy_threshold|score_window) = (\"[a-z:/0-9. ]{0,10}\"|[0-9.-]{1,4}|true|\\[\\]|\\{\\})",
                any::<String>(),
            ];
            proptest::collection::vec(line, 0..12).prop_map(|lines| lines.join("\n"))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(500))]
            #[test]
            fn any_document_gives_a_config_or_positioned_errors(source in document()) {
                if let Err(errors) = parse_with_env(&source, "fuzz.toml", |_| None) {
                    prop_assert!(!errors.0.is_empty());
                    for error in &errors.0 {
                        prop_assert!(error.line >= 1, "{error} in {source:?}");
                        prop_assert!(error.line <= source.lines().count().max(1), "{error} in {source:?}");
                    }
                }
            }
        }
    }
}
