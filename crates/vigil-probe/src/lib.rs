//! The built-in probe kinds of vigil: what a check looks at, written as one target string.
//!
//! A target such as `http://127.0.0.1:8080/healthz` or `exec:pg_isready -q` is parsed with its
//! [`ProbeOptions`] into a validated [`ProbeSpec`], and [`ProbeSpec::build`] turns that into a
//! [`vigil_health::Probe`] for the engine to run (or, for `ttl`, the TTL the engine enforces itself).
//! A probe looks once and reports a [`vigil_health::Report`]; the engine applies timeouts,
//! thresholds and scheduling. The same strings are what `vigil probe TARGET` takes on the command
//! line, so a container can use it as a `HEALTHCHECK` without a shell:
//!
//! ```text
//! HEALTHCHECK CMD ["vigil", "probe", "http://127.0.0.1:8080/healthz"]
//! ```
//!
//! # Targets
//!
//! | target | passes when | options |
//! | --- | --- | --- |
//! | `http://HOST[:PORT][/PATH]`, `https://…` | status is 2xx (429 warns), or in `expect_status`; body contains `expect_body` | `method`, `headers`, `body`, `expect_status`, `expect_body`, `tls_skip_verify` |
//! | `tcp://HOST:PORT`, `tcp://[::1]:PORT` | a TCP connection is made | |
//! | `grpc://HOST:PORT[/SERVICE]` | `grpc.health.v1.Health/Check` answers `SERVING` (`""` = the whole server) | `tls`, `tls_ca`, `tls_cert`, `tls_key`, `tls_server_name`, `tls_skip_verify`, `timeout` |
//! | `postgres://…`, `postgresql://…` (libpq URL) | the connection is made and `SELECT 1` answers; reports the server version | `timeout`, `max_reply_bytes` |
//! | `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]` | `PING` answers `PONG` | `timeout`, `max_reply_bytes` |
//! | `redis-pubsub://…` (same form) | a message with a unique payload, published on a fresh channel, comes back to a subscriber byte for byte | `timeout`, `max_reply_bytes` |
//! | `redis-kv://…` (same form) | a fresh key is written, read back byte for byte and deleted | `timeout`, `max_reply_bytes` |
//! | `exec:COMMAND [ARG]...` | exit code 0 (1 warns, anything else or a signal fails); words are split with shell-like quoting, but no shell runs; output is kept up to 4 KiB; the whole process group is killed when the run ends | |
//! | `disk:/PATH` | the file system holding `PATH` is at most `max_used` full, counted as `df` does | `max_used` (default 0.9) |
//! | `memory` | at most `max_used` of the memory is in use (`MemTotal` − `MemAvailable`, Linux) | `max_used` (default 0.9) |
//! | `ttl` | the watched process reports pass within `ttl` (run by the engine) | `ttl` (required) |
//!
//! Active probes report their `outcome` apart (`success`, `failure`, `timeout`,
//! `integrity_violation`) in the report's details; a `grpc` failure names its step in `failure`.
//!
//! Options that do not apply to a target's kind are ignored. `grpc`, `postgres` and `redis*` need
//! the cargo features of those names (on by default), so an embedding service can leave their
//! clients out. Anything wrong in a target or its
//! options is a [`ProbeSpecError`] whose message names the bad part and the accepted form.
//!
//! # Example
//!
//! ```
//! use vigil_probe::{Built, ProbeOptions, ProbeSpec};
//!
//! let options = ProbeOptions {
//!     expect_status: Some(vec![200, 204]),
//!     headers: vec![("Accept".into(), "application/json".into())],
//!     ..ProbeOptions::default()
//! };
//! let spec = ProbeSpec::parse("http://127.0.0.1:8080/healthz", &options)?;
//! assert_eq!(spec.kind(), "http");
//! match spec.build()? {
//!     // Register the probe with the engine, or run it once: `probe.probe().await`.
//!     Built::Probe(probe) => assert_eq!(probe.kind(), "http"),
//!     Built::Ttl(_) => unreachable!("an http target is not a ttl check"),
//! }
//!
//! let error = ProbeSpec::parse("tcp://db.internal", &options).unwrap_err();
//! assert_eq!(
//!     error.to_string(),
//!     "invalid tcp target `tcp://db.internal`: missing port; \
//!      expected tcp://HOST:PORT (IPv6 as tcp://[::1]:PORT)"
//! );
//! # Ok::<(), vigil_probe::ProbeSpecError>(())
//! ```

#![forbid(unsafe_code)]

/// Declares each kind's module and lists its schemes, in the order error messages list them.
/// A kind is its own file plus one line here.
macro_rules! kinds {
    ($($(#[$attr:meta])* $module:ident,)*) => {
        $($(#[$attr])* mod $module;)*

        /// Every registered scheme of every kind built in.
        #[allow(clippy::vec_init_then_push, reason = "a kind left out by its feature has no element")]
        fn registered() -> Vec<&'static kind::Kind> {
            let mut all: Vec<&'static [kind::Kind]> = Vec::new();
            $($(#[$attr])* all.push($module::KINDS);)*
            all.into_iter().flatten().collect()
        }
    };
}

kinds! {
    http,
    tcp,
    #[cfg(feature = "grpc")]
    grpc,
    #[cfg(feature = "postgres")]
    postgres,
    #[cfg(feature = "redis")]
    redis,
    exec,
    disk,
    memory,
    ttl,
}

#[cfg(any(feature = "postgres", feature = "redis"))]
mod database;
mod kind;
pub mod neighbors;
mod spec;
mod util;

pub use kind::{exit, Built, ProbeOptions};
pub use spec::{ProbeSpec, ProbeSpecError};
pub use vigil_text::{limits, parse_duration, DurationLimit};
