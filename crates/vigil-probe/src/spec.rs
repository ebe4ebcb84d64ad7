//! Probe targets: [`ProbeSpec`], [`ProbeSpecError`] and the parser that turns a target string into
//! a validated spec.
//!
//! Parsing dispatches on the part before the first `:` through the registered kinds (the
//! registry in the crate root); each kind's file fills a [`Kind`] and implements [`Target`], so
//! this module names no kind.

use std::fmt;
use std::sync::Arc;

use vigil_health::Report;

use crate::kind::{Built, Invalid, ProbeOptions, Target};

/// A parsed, validated probe definition. Make one with [`ProbeSpec::parse`], run it with
/// [`ProbeSpec::build`]; its [`Display`](fmt::Display) is the target again (passwords redacted).
#[derive(Clone, Debug)]
pub struct ProbeSpec(Arc<dyn Target>);

impl PartialEq for ProbeSpec {
    fn eq(&self, other: &Self) -> bool {
        self.0.same(other.0.as_any())
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
        let kind = crate::registered()
            .into_iter()
            .find(|kind| kind.scheme.eq_ignore_ascii_case(scheme))
            .ok_or_else(|| ProbeSpecError::UnknownKind {
                kind: scheme.to_owned(),
                target: target.to_owned(),
            })?;
        let parsed = (kind.parse)(target, rest, options).map_err(|invalid| match invalid {
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
        })?;
        Ok(ProbeSpec(parsed))
    }

    /// The probe kind: `http` (also for `https://` targets), `tcp`, `grpc`, `postgres`, `redis`,
    /// `redis-pubsub`, `redis-kv`, `exec`, `disk`, `memory` or `ttl`.
    pub fn kind(&self) -> &'static str {
        self.0.kind()
    }

    /// Builds the probe (an HTTP client is built here, once) or, for `ttl`, returns the TTL.
    pub fn build(&self) -> Result<Built, ProbeSpecError> {
        self.0.build().map_err(|error| ProbeSpecError::Build {
            kind: self.kind(),
            target: self.to_string(),
            reason: error.0,
        })
    }

    /// Whether the watched process pushes its results instead of being probed (a `ttl` check):
    /// nothing can run such a target, only wait for its reports.
    pub fn is_pushed(&self) -> bool {
        self.0.pushed()
    }

    /// The exit code of `vigil probe` for a run of this target that reported `report`, or that
    /// timed out (`None`): the codes of [`exit`](crate::exit), or those of the tool a kind's users
    /// script against (`grpc_health_probe`'s for `grpc://`).
    pub fn exit_code(&self, report: Option<&Report>) -> u8 {
        self.0.exit_code(report)
    }
}

impl fmt::Display for ProbeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Every accepted form, comma separated, for error messages.
fn accepted_forms() -> String {
    crate::registered()
        .iter()
        .map(|kind| kind.form)
        .collect::<Vec<_>>()
        .join(", ")
}
