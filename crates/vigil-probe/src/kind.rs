//! What every probe kind shares, and nothing that names one kind: the options a target is parsed
//! with ([`ProbeOptions`]), the [`Kind`] entry a kind registers, the [`Target`] trait its parsed
//! spec implements, what building one gives ([`Built`]), the errors a kind reports, `HOST:PORT`
//! parsing, and the exit codes of `vigil probe`.
//!
//! Each kind's file depends on this module only; the registry (in the crate root) and the parser
//! ([`crate::spec`]) depend on the kinds. Adding a kind is one file that fills a [`Kind`] and one
//! line in the registry.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use vigil_health::Report;
use vigil_text::HumanDuration;

/// Per-kind settings that don't fit in the target string, read the same way by every front end:
/// `#[serde(flatten)]`ed into the agent's `[[checks]]`, the API's check definitions and stack
/// files' `health` tables, and (feature `clap`) flattened into `vigil probe`'s flags.
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
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct ProbeOptions {
    /// The probe's own limit for the steps it reports apart from other failures (a gRPC connection
    /// and call, a Redis round trip), so that it can say "timeout" before the engine gives up on
    /// it; 9/10 of this is used (default 5s). In a check it is also the check's timeout.
    #[serde(default, deserialize_with = "human_duration")]
    #[cfg_attr(
        feature = "clap",
        arg(long, default_value = "10s", value_parser = probe_timeout, help = "Give up after this long")
    )]
    pub timeout: Option<Duration>,
    /// HTTP method (default `GET`).
    #[cfg_attr(feature = "clap", arg(short = 'X', long, help = "HTTP method"))]
    pub method: Option<String>,
    /// HTTP request headers, in order; a name may repeat. Files and the API write them as a table
    /// of name → value, sent in name order.
    #[serde(default, deserialize_with = "header_table")]
    #[cfg_attr(
        feature = "clap",
        arg(
            short = 'H',
            long = "header",
            value_parser = header_line,
            help = "HTTP request header, as \"Name: value\" (repeatable)"
        )
    )]
    pub headers: Vec<(String, String)>,
    /// HTTP request body.
    #[cfg_attr(feature = "clap", arg(long, help = "HTTP request body"))]
    pub body: Option<String>,
    /// HTTP status codes that pass (each in `100..=599`). Without it any `2xx` passes, `429 Too Many
    /// Requests` warns (as in Consul) and anything else fails.
    #[cfg_attr(
        feature = "clap",
        arg(
            long = "expect-status",
            value_parser = status_code,
            help = "HTTP status that passes (repeatable; default any 2xx)"
        )
    )]
    pub expect_status: Option<Vec<u16>>,
    /// A substring the HTTP response body must contain (searched in its first 64 KiB).
    #[cfg_attr(
        feature = "clap",
        arg(long, help = "Substring the HTTP response body must contain")
    )]
    pub expect_body: Option<String>,
    /// Accept any TLS certificate and host name for `https://` and `grpc://` targets.
    #[serde(default)]
    #[cfg_attr(
        feature = "clap",
        arg(
            long = "insecure",
            alias = "tls-no-verify",
            help = "Accept any TLS certificate"
        )
    )]
    pub tls_skip_verify: bool,
    /// `grpc`: use TLS (implied by any other `tls_*` option but `tls_skip_verify`).
    #[serde(default)]
    #[cfg_attr(feature = "clap", arg(long, help = "gRPC: connect over TLS"))]
    pub tls: bool,
    /// `grpc` and `https`: PEM file of the certificate authorities to trust instead of the
    /// built-in web roots.
    #[cfg_attr(
        feature = "clap",
        arg(
            long = "tls-ca-cert",
            value_name = "TLS_CA_CERT",
            help = "gRPC and HTTPS: PEM file of the certificate authorities to trust"
        )
    )]
    pub tls_ca: Option<PathBuf>,
    /// `grpc` and `https`: PEM file of the client certificate chain (needs `tls_key`).
    #[cfg_attr(
        feature = "clap",
        arg(
            long = "tls-client-cert",
            value_name = "TLS_CLIENT_CERT",
            help = "gRPC and HTTPS: PEM file of the client certificate"
        )
    )]
    pub tls_cert: Option<PathBuf>,
    /// `grpc` and `https`: PEM file of the client certificate's private key (needs `tls_cert`).
    #[cfg_attr(
        feature = "clap",
        arg(
            long = "tls-client-key",
            value_name = "TLS_CLIENT_KEY",
            help = "gRPC and HTTPS: PEM file of the client certificate's key"
        )
    )]
    pub tls_key: Option<PathBuf>,
    /// `grpc`: the name the server certificate must carry (default: the target's host).
    #[cfg_attr(
        feature = "clap",
        arg(long, help = "gRPC: the name the server certificate must carry")
    )]
    pub tls_server_name: Option<String>,
    /// `disk` and `memory`: the used ratio (`0.0..=1.0`) above which the probe fails (default `0.9`).
    #[cfg_attr(
        feature = "clap",
        arg(long, help = "Disk or memory: the highest used ratio that passes")
    )]
    pub max_used: Option<f64>,
    /// `postgres` and `redis*`: the most bytes one run reads from the server, over all its
    /// connections (default 4 MiB). A server that sends more fails the check, so a broken or
    /// hostile server cannot make the probe buffer whatever message length it announces.
    #[cfg_attr(
        feature = "clap",
        arg(
            long,
            help = "PostgreSQL or Redis: the most bytes read from the server (default 4194304, 4 MiB)"
        )
    )]
    pub max_reply_bytes: Option<u64>,
    /// `ttl`: how long a TTL check stays passing without a report. Required for `ttl`, from 1s to
    /// 7 days ([`limits::TTL`](crate::limits::TTL)).
    #[serde(default, deserialize_with = "human_duration")]
    #[cfg_attr(feature = "clap", arg(skip))]
    pub ttl: Option<Duration>,
}

fn human_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    Option::<HumanDuration>::deserialize(deserializer).map(|d| d.map(|d| d.0))
}

fn header_table<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<(String, String)>, D::Error> {
    BTreeMap::<String, String>::deserialize(deserializer).map(|table| table.into_iter().collect())
}

/// `vigil probe --timeout`, held to its range.
#[cfg(feature = "clap")]
fn probe_timeout(text: &str) -> Result<Duration, vigil_text::LimitError> {
    crate::limits::PROBE_TIMEOUT.parse(text)
}

/// `Name: value`, as `curl -H` takes it.
#[cfg(feature = "clap")]
fn header_line(text: &str) -> Result<(String, String), String> {
    text.split_once(':')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .ok_or_else(|| format!("header {text:?} must look like \"Name: value\""))
}

/// An HTTP status code, `100..=599`.
#[cfg(feature = "clap")]
fn status_code(text: &str) -> Result<u16, String> {
    text.trim()
        .parse()
        .ok()
        .filter(|code| (100..=599).contains(code))
        .ok_or_else(|| "expected an HTTP status code from 100 to 599, e.g. 200".to_owned())
}

/// One scheme of a probe kind, as the parser sees it.
pub(crate) struct Kind {
    /// The part of a target before the first `:` (the whole target for kinds without an argument).
    pub(crate) scheme: &'static str,
    /// The accepted form, shown in error messages.
    pub(crate) form: &'static str,
    /// Parses a target whose scheme matched.
    pub(crate) parse: Parser,
}

/// A kind's parse function: `(whole target, text after the first ':', options)`.
pub(crate) type Parser = fn(&str, &str, &ProbeOptions) -> Result<Arc<dyn Target>, Invalid>;

/// A parsed, validated target of one kind; its [`Display`](fmt::Display) is the target again
/// (passwords redacted).
pub(crate) trait Target: fmt::Display + fmt::Debug + Send + Sync + SameTarget {
    /// The kind's name (`http` for both `http://` and `https://`).
    fn kind(&self) -> &'static str;

    /// Builds the probe (clients are built here, once) or, for `ttl`, gives the TTL.
    fn build(&self) -> Result<Built, BuildError>;

    /// Whether the watched process pushes its results instead of being probed (`ttl`).
    fn pushed(&self) -> bool {
        false
    }

    /// `vigil probe`'s exit code for a run of this target: `None` when it timed out.
    fn exit_code(&self, report: Option<&Report>) -> u8 {
        exit::code(report)
    }
}

/// Equality between targets of any kind: equal when of the same type and equal as such.
pub(crate) trait SameTarget {
    fn as_any(&self) -> &dyn Any;
    fn same(&self, other: &dyn Any) -> bool;
}

impl<T: PartialEq + Any> SameTarget for T {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn same(&self, other: &dyn Any) -> bool {
        other.downcast_ref::<T>() == Some(self)
    }
}

/// What [`ProbeSpec::build`](crate::ProbeSpec::build) produces.
#[derive(Clone)]
pub enum Built {
    /// A probe for the engine to run on its schedule.
    Probe(Arc<dyn vigil_health::Probe>),
    /// A TTL check with this TTL; the engine implements it.
    Ttl(Duration),
}

impl Built {
    /// Wraps a kind's probe.
    pub(crate) fn probe(probe: impl vigil_health::Probe) -> Built {
        Built::Probe(Arc::new(probe))
    }
}

impl fmt::Debug for Built {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Built::Probe(probe) => f.debug_tuple("Probe").field(&probe.kind()).finish(),
            Built::Ttl(ttl) => f.debug_tuple("Ttl").field(ttl).finish(),
        }
    }
}

/// Why a kind could not set its probe up (for example its HTTP client); the parser adds the kind
/// and the target.
#[derive(Debug)]
pub(crate) struct BuildError(pub(crate) String);

/// What a kind's parse function found wrong; the parser adds the kind, target and form.
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

/// The `max_used` ratio when none is given.
pub(crate) const DEFAULT_MAX_USED: f64 = 0.9;

/// The `max_used` option, validated, or its default.
pub(crate) fn max_used(options: &ProbeOptions) -> Result<f64, Invalid> {
    match options.max_used {
        None => Ok(DEFAULT_MAX_USED),
        Some(ratio) if ratio.is_finite() && (0.0..=1.0).contains(&ratio) => Ok(ratio),
        Some(ratio) => Err(Invalid::option(
            "max_used",
            format!("{ratio} is not a ratio in 0..=1 (0.9 means 90% used)"),
        )),
    }
}

/// Splits `HOST:PORT` (IPv6 in brackets) into a host without brackets and a non-zero port.
pub(crate) fn split_authority(authority: &str) -> Result<(&str, u16), Invalid> {
    if authority.contains(['/', '?', '#', '@']) {
        return Err(Invalid::target(
            "only a host and a port are allowed, no path, query or user",
        ));
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (address, after) = bracketed
            .split_once(']')
            .ok_or_else(|| Invalid::target("missing `]` after the IPv6 address"))?;
        if address.parse::<Ipv6Addr>().is_err() {
            return Err(Invalid::target(format!(
                "`{address}` is not an IPv6 address"
            )));
        }
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| Invalid::target("missing port"))?;
        (address, port)
    } else {
        let (host, port) = authority
            .rsplit_once(':')
            .ok_or_else(|| Invalid::target("missing port"))?;
        if host.contains(':') {
            return Err(Invalid::target(
                "put an IPv6 address in brackets, as in [::1]:8080",
            ));
        }
        (host, port)
    };
    if host.is_empty() {
        return Err(Invalid::target("missing host"));
    }
    let port = match port.parse::<u16>() {
        Ok(port) if port != 0 => port,
        _ if port.is_empty() => return Err(Invalid::target("missing port")),
        _ => {
            return Err(Invalid::target(format!(
                "port `{port}` is not a number in 1..=65535"
            )))
        }
    };
    Ok((host, port))
}

/// `host:port`, with brackets around an IPv6 address.
pub(crate) fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The exit codes of `vigil probe`, for every kind that does not follow a convention of its own.
///
/// | exit | meaning |
/// | --- | --- |
/// | 0 | healthy (pass) |
/// | 1 | bad arguments (unknown or missing argument, unparsable target or option) |
/// | 2 | unhealthy (fail) |
/// | 3 | timed out |
/// | 4 | warning (exec exit code 1, HTTP 429) |
pub mod exit {
    use vigil_health::{Report, Verdict};

    /// The probe passed.
    pub const HEALTHY: u8 = 0;
    /// The command line, the target or an option is wrong.
    pub const BAD_ARGUMENTS: u8 = 1;
    /// The probe failed.
    pub const UNHEALTHY: u8 = 2;
    /// The probe did not answer in time.
    pub const TIMED_OUT: u8 = 3;
    /// The probe warned.
    pub const WARNING: u8 = 4;

    /// The code of a run: `None` when it timed out.
    pub(crate) fn code(report: Option<&Report>) -> u8 {
        match report.map(|report| report.verdict) {
            None => TIMED_OUT,
            Some(Verdict::Pass) => HEALTHY,
            Some(Verdict::Warn) => WARNING,
            Some(Verdict::Fail) => UNHEALTHY,
        }
    }
}
