//! Redis probes: `redis://…` sends `PING`; `redis-pubsub://…` and `redis-kv://…` are active round
//! trips that prove the server does its job end to end, each with a payload unique to the run.
//!
//! - pub/sub loopback: subscribe to a fresh channel, publish the payload, wait for the same bytes.
//! - key-value: `SET` a fresh key (with a 60 s expiry, so nothing is left behind if the run is cut
//!   short), `GET` it back, `DEL` it and see exactly one key removed.
//!
//! A report's `outcome` detail tells the four results apart: `success`, `failure` (an error from
//! the server or the network), `timeout` (no answer within the probe's own limit) and
//! `integrity_violation` (an answer came, but not the data that was sent).
//!
//! The probe opens its sockets itself and hands them to the client through a [`ReplyBudget`]: a
//! Redis reply announces its own length (a bulk string may claim 4 GiB) and the client buffers it
//! whole, so the bytes read in one run are counted under it and the run fails past
//! `max_reply_bytes`.

use std::fmt;
use std::time::{Duration, Instant};
use std::sync::Arc;

use futures_util::StreamExt;
use rand::Rng;
use redis::aio::{MultiplexedConnection, PubSub};
use redis::{
    AsyncCommands, AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, ErrorKind, RedisError,
    RedisResult,
};
use tokio::net::TcpStream;
use vigil_health::{Probe, ProbeFuture, Report};

use crate::kind::{BuildError, Built, Invalid, Kind, ProbeOptions, Target};
use crate::database::{max_reply_bytes, redact_password, Bounded, ReplyBudget};
use crate::util::{
    error_chain, fmt_elapsed, own_timeout,
};

pub(crate) const KIND: Kind = Kind {
    scheme: "redis",
    form: "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]",
    parse: parse_ping,
};

pub(crate) const PUBSUB: Kind = Kind {
    scheme: "redis-pubsub",
    form: "redis-pubsub://[[USER]:PASSWORD@]HOST[:PORT][/DB]",
    parse: parse_pubsub,
};

pub(crate) const KV: Kind = Kind {
    scheme: "redis-kv",
    form: "redis-kv://[[USER]:PASSWORD@]HOST[:PORT][/DB]",
    parse: parse_kv,
};

/// The schemes this file parses.
pub(crate) const KINDS: &[Kind] = &[KIND, PUBSUB, KV];

/// How long the key of a key-value round trip lives if the run never deletes it.
const KEY_EXPIRY_SECONDS: u64 = 60;

/// What a Redis probe does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Ping,
    PubSub,
    Kv,
}

/// A validated Redis probe.
#[derive(Clone, PartialEq)]
pub struct RedisSpec {
    mode: Mode,
    /// The `redis://` URL the client connects to.
    url: String,
    /// The target as given, with any password replaced.
    display: String,
    timeout: Duration,
    max_reply_bytes: u64,
}

fn parse_ping(target: &str, rest: &str, options: &ProbeOptions) -> Result<Arc<dyn Target>, Invalid> {
    parse(Mode::Ping, target, rest, options)
}

fn parse_pubsub(target: &str, rest: &str, options: &ProbeOptions) -> Result<Arc<dyn Target>, Invalid> {
    parse(Mode::PubSub, target, rest, options)
}

fn parse_kv(target: &str, rest: &str, options: &ProbeOptions) -> Result<Arc<dyn Target>, Invalid> {
    parse(Mode::Kv, target, rest, options)
}

fn parse(
    mode: Mode,
    target: &str,
    rest: &str,
    options: &ProbeOptions,
) -> Result<Arc<dyn Target>, Invalid> {
    let url = format!("redis:{rest}");
    let info = redis::IntoConnectionInfo::into_connection_info(url.as_str())
        .map_err(|error| Invalid::target(error_chain(&error)))?;
    if matches!(info.addr(), redis::ConnectionAddr::Tcp(host, _) if host.is_empty()) {
        return Err(Invalid::target("missing host"));
    }
    Ok(Arc::new(RedisSpec {
        mode,
        url,
        display: redact_password(target),
        timeout: own_timeout(options),
        max_reply_bytes: max_reply_bytes(options)?,
    }))
}

impl RedisSpec {
    fn mode_kind(&self) -> &'static str {
        match self.mode {
            Mode::Ping => KIND.scheme,
            Mode::PubSub => PUBSUB.scheme,
            Mode::Kv => KV.scheme,
        }
    }

    fn probe(&self) -> Result<RedisProbe, BuildError> {
        let info = redis::IntoConnectionInfo::into_connection_info(self.url.as_str())
            .map_err(|error| BuildError(error_chain(&error)))?;
        Ok(RedisProbe {
            spec: self.clone(),
            info,
        })
    }
}

impl fmt::Debug for RedisSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSpec")
            .field("mode", &self.mode)
            .field("target", &self.display)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Target for RedisSpec {
    fn kind(&self) -> &'static str {
        self.mode_kind()
    }

    fn build(&self) -> Result<Built, BuildError> {
        self.probe().map(Built::probe)
    }
}

impl fmt::Display for RedisSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

/// How one run ended, before it becomes a report.
enum Outcome {
    Success(String),
    Failure(String),
    Integrity(String),
}

/// A built Redis probe.
pub(crate) struct RedisProbe {
    spec: RedisSpec,
    info: ConnectionInfo,
}

impl RedisProbe {
    async fn run(&self) -> Report {
        let start = Instant::now();
        let budget = ReplyBudget::new(self.spec.max_reply_bytes);
        let work = async {
            match self.spec.mode {
                Mode::Ping => self.ping(&budget).await,
                Mode::PubSub => self.pubsub(&budget).await,
                Mode::Kv => self.kv(&budget).await,
            }
        };
        let target = &self.spec.display;
        let finished = tokio::time::timeout(self.spec.timeout, work).await;
        let outcome = match finished {
            _ if budget.exceeded() => Outcome::Failure(budget.failure()),
            Err(_) => {
                let limit = fmt_elapsed(self.spec.timeout);
                return Report::fail(format!("{target}: timeout, no answer within {limit}"))
                    .with_error("timed out")
                    .with_detail("outcome", "timeout");
            }
            Ok(Ok(outcome)) => outcome,
            Ok(Err(error)) => Outcome::Failure(error_chain(&error)),
        };
        let latency = start.elapsed();
        let report = match outcome {
            Outcome::Success(what) => Report::pass(format!("{what} in {}", fmt_elapsed(latency)))
                .with_detail("outcome", "success"),
            Outcome::Failure(reason) => Report::fail(format!("{target}: {reason}"))
                .with_error(&reason)
                .with_detail("outcome", "failure"),
            Outcome::Integrity(reason) => {
                Report::fail(format!("{target}: integrity violation: {reason}"))
                    .with_error(&reason)
                    .with_detail("outcome", "integrity_violation")
            }
        };
        report.with_detail("latency_ms", latency.as_secs_f64() * 1000.0)
    }

    /// A socket to the server whose reads draw on `budget`.
    async fn socket(&self, budget: &ReplyBudget) -> RedisResult<Bounded<TcpStream>> {
        let ConnectionAddr::Tcp(host, port) = self.info.addr() else {
            return Err(RedisError::from((
                ErrorKind::InvalidClientConfig,
                "only plain TCP targets are supported",
            )));
        };
        let stream = TcpStream::connect((host.as_str(), *port)).await?;
        Ok(budget.wrap(stream))
    }

    /// A command connection; its driver runs until the connection is dropped.
    async fn connection(&self, budget: &ReplyBudget) -> RedisResult<MultiplexedConnection> {
        let socket = self.socket(budget).await?;
        let (connection, driver) =
            MultiplexedConnection::new_with_config(self.info.redis_settings(), socket, config())
                .await?;
        tokio::spawn(driver);
        Ok(connection)
    }

    async fn ping(&self, budget: &ReplyBudget) -> RedisResult<Outcome> {
        let mut connection = self.connection(budget).await?;
        let answer: String = redis::cmd("PING").query_async(&mut connection).await?;
        Ok(if answer == "PONG" {
            Outcome::Success("PONG".to_owned())
        } else {
            Outcome::Failure(format!("PING answered `{answer}`, not PONG"))
        })
    }

    async fn pubsub(&self, budget: &ReplyBudget) -> RedisResult<Outcome> {
        let channel = unique("vigil:probe:channel");
        let payload = unique("vigil-probe");
        let socket = self.socket(budget).await?;
        let mut subscriber = PubSub::new(self.info.redis_settings(), socket).await?;
        subscriber.subscribe(&channel).await?;
        let mut publisher = self.connection(budget).await?;
        let receivers: i64 = publisher.publish(&channel, &payload).await?;
        if receivers < 1 {
            return Ok(Outcome::Failure(format!(
                "PUBLISH on {channel} reached no subscriber"
            )));
        }
        let mut messages = subscriber.on_message();
        let Some(message) = messages.next().await else {
            return Ok(Outcome::Failure(
                "the subscription closed before the message came back".to_owned(),
            ));
        };
        Ok(judge_echo(
            &payload,
            message.get_channel_name() == channel,
            message.get_payload_bytes(),
            &channel,
        ))
    }

    async fn kv(&self, budget: &ReplyBudget) -> RedisResult<Outcome> {
        let key = unique("vigil:probe:key");
        let value = unique("vigil-probe");
        let mut connection = self.connection(budget).await?;
        let () = connection.set_ex(&key, &value, KEY_EXPIRY_SECONDS).await?;
        let read: Option<Vec<u8>> = connection.get(&key).await?;
        let deleted: i64 = connection.del(&key).await?;
        Ok(judge_kv(&key, &value, read.as_deref(), deleted))
    }
}

/// A command connection's settings: the probe's own timeout bounds each run, so the client's
/// response timeout is left out.
fn config() -> AsyncConnectionConfig {
    AsyncConnectionConfig::new().set_response_timeout(None)
}

/// A name no other run uses: a prefix and 128 random bits.
fn unique(prefix: &str) -> String {
    let bits: u128 = rand::rng().random();
    format!("{prefix}:{bits:032x}")
}

/// Judges what came back on the loopback channel against what was published.
fn judge_echo(sent: &str, same_channel: bool, received: &[u8], channel: &str) -> Outcome {
    if !same_channel {
        Outcome::Integrity("a message came back on another channel".to_owned())
    } else if received != sent.as_bytes() {
        Outcome::Integrity(format!(
            "published {} bytes on {channel}, received {} different bytes",
            sent.len(),
            received.len()
        ))
    } else {
        Outcome::Success(format!("pub/sub loopback on {channel}"))
    }
}

/// Judges a key-value round trip: the value read back and how many keys `DEL` removed.
fn judge_kv(key: &str, written: &str, read: Option<&[u8]>, deleted: i64) -> Outcome {
    match read {
        None => Outcome::Integrity(format!("{key} was written but read back as missing")),
        Some(read) if read != written.as_bytes() => Outcome::Integrity(format!(
            "{key}: wrote {} bytes, read back {} different bytes",
            written.len(),
            read.len()
        )),
        Some(_) if deleted != 1 => {
            Outcome::Integrity(format!("{key}: DEL removed {deleted} keys instead of 1"))
        }
        Some(_) => Outcome::Success(format!("SET, GET and DEL of {key}")),
    }
}

impl Probe for RedisProbe {
    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(self.run())
    }

    fn kind(&self) -> &'static str {
        self.spec.mode_kind()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_integrity(outcome: &Outcome) -> bool {
        matches!(outcome, Outcome::Integrity(_))
    }

    #[test]
    fn echo_must_match_byte_for_byte() {
        assert!(matches!(
            judge_echo("abc", true, b"abc", "c"),
            Outcome::Success(_)
        ));
        assert!(is_integrity(&judge_echo("abc", true, b"abd", "c")));
        assert!(is_integrity(&judge_echo("abc", false, b"abc", "c")));
    }

    #[test]
    fn kv_must_read_back_and_delete_exactly_its_key() {
        assert!(matches!(
            judge_kv("k", "v", Some(b"v"), 1),
            Outcome::Success(_)
        ));
        assert!(is_integrity(&judge_kv("k", "v", None, 0)));
        assert!(is_integrity(&judge_kv("k", "v", Some(b"w"), 1)));
        assert!(is_integrity(&judge_kv("k", "v", Some(b"v"), 0)));
    }

    #[test]
    fn names_are_unique() {
        assert_ne!(unique("p"), unique("p"));
    }
}
