//! Probe targets: [`ProbeSpec`], [`ProbeOptions`], [`Built`], [`ProbeSpecError`] and the parser that
//! turns a target string into a validated spec.
//!
//! Parsing dispatches on the part before the first `:` through the [`KINDS`] table. Each kind's module
//! exports a [`Kind`] (its scheme, the accepted form for error messages and its parse function), so a
//! new kind is one new module plus one line in [`KINDS`] (and its [`ProbeSpec`] variant).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::{disk, exec, grpc, http, memory, postgres, redis, tcp};

/// Every probe kind the parser knows, in the order they are listed in error messages.
const KINDS: &[Kind] = &[
    http::HTTP,
    http::HTTPS,
    tcp::KIND,
    grpc::KIND,
    postgres::KIND,
    postgres::POSTGRESQL,
    redis::KIND,
    redis::PUBSUB,
    redis::KV,
    exec::KIND,
    disk::KIND,
    memory::KIND,
    TTL,
];

/// Per-kind settings that don't fit in the target string.
///
/// Every field is optional; settings that do not apply to a target's kind are ignored.
///
/// ```
/// use vigil_probe::ProbeOptions;
/// let options = ProbeOptions {
///     expect_status: Some(vec![200, 204]),
///     ..ProbeOptions::default()
/// };
/// # let _ = options;
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProbeOptions {
    /// HTTP method (default `GET`).
    pub method: Option<String>,
    /// HTTP request headers, in order; a name may repeat.
    pub headers: Vec<(String, String)>,
    /// HTTP request body.
    pub body: Option<String>,
    /// HTTP status codes that pass (each in `100..=599`). Without it any `2xx` passes, `429 Too Many
    /// Requests` warns (as in Consul) and anything else fails.
    pub expect_status: Option<Vec<u16>>,
    /// A substring the HTTP response body must contain (searched in its first 64 KiB).
    pub expect_body: Option<String>,
    /// Accept any TLS certificate and host name for `https://` targets.
    pub tls_skip_verify: bool,
    /// `disk` and `memory`: the used ratio (`0.0..=1.0`) above which the probe fails (default `0.9`).
    pub max_used: Option<f64>,
    /// `ttl`: how long a TTL check stays passing without a report. Required for `ttl`, from 1s to
    /// 7 days ([`limits::TTL`](crate::limits::TTL)).
    pub ttl: Option<Duration>,
    /// `grpc`: use TLS (implied by any other `tls_*` option but `tls_skip_verify`).
    pub tls: bool,
    /// `grpc`: PEM file of the certificate authorities to trust instead of the built-in web roots.
    pub tls_ca: Option<PathBuf>,
    /// `grpc`: PEM file of the client certificate chain (needs `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// `grpc`: PEM file of the client certificate's private key (needs `tls_cert`).
    pub tls_key: Option<PathBuf>,
    /// `grpc`: the name the server certificate must carry (default: the target's host).
    pub tls_server_name: Option<String>,
    /// The probe's own limit for the steps it reports apart from other failures (a gRPC connection
    /// and call, a Redis round trip), so that it can say "timeout" before the engine gives up on
    /// it; 9/10 of this is used (default 5s).
    pub timeout: Option<Duration>,
    /// `postgres` and `redis*`: the most bytes one run reads from the server, over all its
    /// connections (default 4 MiB). A server that sends more fails the check, so a broken or
    /// hostile server cannot make the probe buffer whatever message length it announces.
    pub max_reply_bytes: Option<u64>,
}

impl ProbeOptions {
    /// Whether a `grpc://` target is reached over TLS.
    pub(crate) fn uses_tls(&self) -> bool {
        self.tls
            || self.tls_ca.is_some()
            || self.tls_cert.is_some()
            || self.tls_key.is_some()
            || self.tls_server_name.is_some()
    }
}

/// A parsed, validated probe definition. Make one with [`ProbeSpec::parse`], run it with
/// [`ProbeSpec::build`]; its [`Display`](fmt::Display) is the target again (passwords redacted).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
#[allow(
    clippy::large_enum_variant,
    reason = "a spec is parsed once per check and never moved in a hot path"
)]
pub enum ProbeSpec {
    /// `http://…` or `https://…`: one request, judged by status code and optionally body.
    Http(http::HttpSpec),
    /// `tcp://HOST:PORT`: a TCP connect.
    Tcp(tcp::TcpSpec),
    /// `grpc://HOST:PORT[/SERVICE]`: one `grpc.health.v1.Health/Check` call.
    Grpc(grpc::GrpcSpec),
    /// `postgres://…`: connect and `SELECT 1`.
    Postgres(postgres::PostgresSpec),
    /// `redis://…` (`PING`), `redis-pubsub://…` and `redis-kv://…` (active round trips).
    Redis(redis::RedisSpec),
    /// `exec:COMMAND ARG…`: run a command (no shell), judged by its exit code.
    Exec(exec::ExecSpec),
    /// `disk:/PATH`: used ratio of the file system holding the path.
    Disk(disk::DiskSpec),
    /// `memory`: used ratio of the machine's memory.
    Memory(memory::MemorySpec),
    /// `ttl`: the watched process reports itself at least this often; the engine runs TTL checks.
    Ttl(Duration),
}

/// What [`ProbeSpec::build`] produces.
#[derive(Clone)]
pub enum Built {
    /// A probe for the engine to run on its schedule.
    Probe(Arc<dyn vigil_health::Probe>),
    /// A TTL check with this TTL; the engine implements it.
    Ttl(Duration),
}

impl fmt::Debug for Built {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Built::Probe(probe) => f.debug_tuple("Probe").field(&probe.kind()).finish(),
            Built::Ttl(ttl) => f.debug_tuple("Ttl").field(ttl).finish(),
        }
    }
}

/// Why a target or its options were rejected. Each message names the bad part and the accepted forms.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeSpecError {
    /// The target is empty.
    #[error("empty probe target; expected one of: {}", accepted_forms())]
    Empty,
    /// The target does not start with a known kind.
    #[error(
        "unknown probe kind `{kind}` in `{target}`; expected one of: {}",
        accepted_forms()
    )]
    UnknownKind {
        /// The part before the first `:`.
        kind: String,
        /// The whole target.
        target: String,
    },
    /// The target names a known kind, but the rest of it is wrong.
    #[error("invalid {kind} target `{target}`: {reason}; expected {form}")]
    InvalidTarget {
        /// The kind (`http`, `tcp`, ...).
        kind: &'static str,
        /// The whole target.
        target: String,
        /// What is wrong with it.
        reason: String,
        /// The form this kind accepts.
        form: &'static str,
    },
    /// An option is invalid, or missing where the kind needs it.
    #[error("invalid {kind} option `{option}`: {reason}")]
    InvalidOption {
        /// The kind (`http`, `tcp`, ...).
        kind: &'static str,
        /// The [`ProbeOptions`] field, e.g. `expect_status`.
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The probe could not be set up (for example its HTTP client).
    #[error("cannot build the {kind} probe for `{target}`: {reason}")]
    Build {
        /// The kind (`http`, `tcp`, ...).
        kind: &'static str,
        /// The target (passwords redacted).
        target: String,
        /// What failed.
        reason: String,
    },
}

impl ProbeSpec {
    /// Parses and validates a target (see the crate docs for the syntax) with its options.
    ///
    /// ```
    /// use vigil_probe::{ProbeOptions, ProbeSpec};
    /// let spec = ProbeSpec::parse("tcp://127.0.0.1:5432", &ProbeOptions::default())?;
    /// assert_eq!(spec.kind(), "tcp");
    /// assert!(ProbeSpec::parse("tcp://127.0.0.1", &ProbeOptions::default()).is_err());
    /// # Ok::<(), vigil_probe::ProbeSpecError>(())
    /// ```
    pub fn parse(target: &str, options: &ProbeOptions) -> Result<ProbeSpec, ProbeSpecError> {
        let target = target.trim();
        if target.is_empty() {
            return Err(ProbeSpecError::Empty);
        }
        let (scheme, rest) = target.split_once(':').unwrap_or((target, ""));
        let kind = KINDS
            .iter()
            .find(|kind| kind.scheme.eq_ignore_ascii_case(scheme))
            .ok_or_else(|| ProbeSpecError::UnknownKind {
                kind: scheme.to_owned(),
                target: target.to_owned(),
            })?;
        (kind.parse)(target, rest, options).map_err(|invalid| match invalid {
            Invalid::Target(reason) => ProbeSpecError::InvalidTarget {
                kind: kind.scheme,
                target: target.to_owned(),
                reason,
                form: kind.form,
            },
            Invalid::Option { option, reason } => ProbeSpecError::InvalidOption {
                kind: kind.scheme,
                option,
                reason,
            },
        })
    }

    /// The probe kind: `http` (also for `https://` targets), `tcp`, `grpc`, `postgres`, `redis`,
    /// `redis-pubsub`, `redis-kv`, `exec`, `disk`, `memory` or `ttl`.
    pub fn kind(&self) -> &'static str {
        match self {
            ProbeSpec::Http(_) => http::KIND_NAME,
            ProbeSpec::Tcp(_) => tcp::KIND.scheme,
            ProbeSpec::Grpc(_) => grpc::KIND.scheme,
            ProbeSpec::Postgres(_) => postgres::KIND.scheme,
            ProbeSpec::Redis(spec) => spec.kind(),
            ProbeSpec::Exec(_) => exec::KIND.scheme,
            ProbeSpec::Disk(_) => disk::KIND.scheme,
            ProbeSpec::Memory(_) => memory::KIND.scheme,
            ProbeSpec::Ttl(_) => TTL.scheme,
        }
    }

    /// Builds the probe (an HTTP client is built here, once) or, for `ttl`, returns the TTL.
    pub fn build(&self) -> Result<Built, ProbeSpecError> {
        match self {
            ProbeSpec::Http(spec) => spec.build().map(probe),
            ProbeSpec::Tcp(spec) => Ok(probe(spec.build())),
            ProbeSpec::Grpc(spec) => spec.build().map(probe),
            ProbeSpec::Postgres(spec) => Ok(probe(spec.build())),
            ProbeSpec::Redis(spec) => spec.build().map(probe),
            ProbeSpec::Exec(spec) => Ok(probe(spec.build())),
            ProbeSpec::Disk(spec) => Ok(probe(spec.build())),
            ProbeSpec::Memory(spec) => Ok(probe(spec.build())),
            ProbeSpec::Ttl(ttl) => Ok(Built::Ttl(*ttl)),
        }
    }
}

impl fmt::Display for ProbeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeSpec::Http(spec) => spec.fmt(f),
            ProbeSpec::Tcp(spec) => spec.fmt(f),
            ProbeSpec::Grpc(spec) => spec.fmt(f),
            ProbeSpec::Postgres(spec) => spec.fmt(f),
            ProbeSpec::Redis(spec) => spec.fmt(f),
            ProbeSpec::Exec(spec) => spec.fmt(f),
            ProbeSpec::Disk(spec) => spec.fmt(f),
            ProbeSpec::Memory(spec) => spec.fmt(f),
            ProbeSpec::Ttl(_) => f.write_str(TTL.scheme),
        }
    }
}

fn probe(probe: impl vigil_health::Probe) -> Built {
    Built::Probe(Arc::new(probe))
}

/// One probe kind as the parser sees it.
pub(crate) struct Kind {
    /// The part of a target before the first `:` (the whole target for kinds without an argument).
    pub(crate) scheme: &'static str,
    /// The accepted form, shown in error messages.
    pub(crate) form: &'static str,
    /// Parses a target whose scheme matched: `(whole target, text after the first ':', options)`.
    pub(crate) parse: fn(&str, &str, &ProbeOptions) -> Result<ProbeSpec, Invalid>,
}

/// What a kind's parse function found wrong; [`ProbeSpec::parse`] adds the kind, target and form.
#[derive(Debug)]
pub(crate) enum Invalid {
    /// The target is wrong.
    Target(String),
    /// An option is wrong or missing.
    Option {
        /// The [`ProbeOptions`] field.
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl Invalid {
    pub(crate) fn target(reason: impl Into<String>) -> Self {
        Invalid::Target(reason.into())
    }

    pub(crate) fn option(option: &'static str, reason: impl Into<String>) -> Self {
        Invalid::Option {
            option,
            reason: reason.into(),
        }
    }
}

/// Every accepted form, comma separated, for error messages.
fn accepted_forms() -> String {
    KINDS
        .iter()
        .map(|kind| kind.form)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Fails unless the target is the bare kind name (for kinds that take no argument).
pub(crate) fn no_argument(target: &str, rest: &str) -> Result<(), Invalid> {
    if target.contains(':') {
        Err(Invalid::target(format!(
            "takes no argument, found `:{rest}`"
        )))
    } else {
        Ok(())
    }
}

/// The `max_used` option, validated, or its default.
pub(crate) fn max_used(options: &ProbeOptions) -> Result<f64, Invalid> {
    match options.max_used {
        None => Ok(crate::util::DEFAULT_MAX_USED),
        Some(ratio) if ratio.is_finite() && (0.0..=1.0).contains(&ratio) => Ok(ratio),
        Some(ratio) => Err(Invalid::option(
            "max_used",
            format!("{ratio} is not a ratio in 0..=1 (0.9 means 90% used)"),
        )),
    }
}

const TTL: Kind = Kind {
    scheme: "ttl",
    form: "ttl (with the ttl option)",
    parse: parse_ttl,
};

fn parse_ttl(target: &str, rest: &str, options: &ProbeOptions) -> Result<ProbeSpec, Invalid> {
    no_argument(target, rest)?;
    match options.ttl {
        None => Err(Invalid::option(
            "ttl",
            "missing; a ttl check needs one, e.g. 30s",
        )),
        Some(ttl) => crate::limits::TTL
            .check(ttl)
            .map(ProbeSpec::Ttl)
            .map_err(|message| Invalid::option("ttl", message)),
    }
}
