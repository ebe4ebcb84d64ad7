//! `postgres://…` probes: connect, run `SELECT 1` and read the server version, in one round trip
//! after the handshake, on a fresh connection each run.
//!
//! The connection is plaintext (loopback, a private network, or a socket directory as host);
//! a `sslmode=require` target fails with a message saying so.
//!
//! The probe opens the socket itself (each host of the target in turn, as libpq does) and hands it
//! to the client through a [`ReplyBudget`], so that a server announcing a huge message fails the
//! check after `max_reply_bytes` instead of being buffered whole. `target_session_attrs` is not
//! checked: any server that answers counts.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};
use tokio_postgres::config::Host;
use tokio_postgres::{NoTls, SimpleQueryMessage};
use vigil_health::{Probe, ProbeFuture, Report};

use crate::kind::{BuildError, Built, Invalid, Kind, ProbeOptions, Target};
use crate::database::{max_reply_bytes, redact_password, Bounded, ReplyBudget};
use crate::util::{
    error_chain, fmt_elapsed, own_timeout,
};

/// The port of a host the target gives none for.
const DEFAULT_PORT: u16 = 5432;

pub(crate) const KIND: Kind = Kind {
    scheme: "postgres",
    form: "postgres://[USER[:PASSWORD]@]HOST[:PORT][/DATABASE][?OPTIONS]",
    parse,
};

/// `postgresql://`, the other scheme libpq accepts.
pub(crate) const POSTGRESQL: Kind = Kind {
    scheme: "postgresql",
    form: "postgresql://[USER[:PASSWORD]@]HOST[:PORT][/DATABASE][?OPTIONS]",
    parse,
};

/// The schemes this file parses.
pub(crate) const KINDS: &[Kind] = &[KIND, POSTGRESQL];

/// A validated `postgres://` probe.
#[derive(Clone)]
pub struct PostgresSpec {
    /// The target as given, with any password replaced.
    display: String,
    /// The target as given, to tell specs apart.
    target: String,
    config: tokio_postgres::Config,
    timeout: Duration,
    max_reply_bytes: u64,
}

fn parse(target: &str, _rest: &str, options: &ProbeOptions) -> Result<Arc<dyn Target>, Invalid> {
    let mut config = tokio_postgres::Config::from_str(target)
        .map_err(|error| Invalid::target(error_chain(&error)))?;
    if config.get_hosts().is_empty() {
        return Err(Invalid::target("missing host"));
    }
    let timeout = own_timeout(options);
    let max_reply_bytes = max_reply_bytes(options)?;
    config.connect_timeout(timeout);
    if config.get_application_name().is_none() {
        config.application_name("vigil");
    }
    Ok(Arc::new(PostgresSpec {
        display: redact_password(target),
        target: target.to_owned(),
        config,
        timeout,
        max_reply_bytes,
    }))
}

impl PostgresSpec {
    fn probe(&self) -> PostgresProbe {
        PostgresProbe { spec: self.clone() }
    }
}

impl fmt::Debug for PostgresSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSpec")
            .field("target", &self.display)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl PartialEq for PostgresSpec {
    fn eq(&self, other: &Self) -> bool {
        self.target == other.target
            && self.timeout == other.timeout
            && self.max_reply_bytes == other.max_reply_bytes
    }
}

impl Target for PostgresSpec {
    fn kind(&self) -> &'static str {
        KIND.scheme
    }

    fn build(&self) -> Result<Built, BuildError> {
        Ok(Built::probe(self.probe()))
    }
}

impl fmt::Display for PostgresSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

/// A built PostgreSQL probe.
pub(crate) struct PostgresProbe {
    spec: PostgresSpec,
}

impl PostgresProbe {
    async fn run(&self) -> Report {
        let start = Instant::now();
        let budget = ReplyBudget::new(self.spec.max_reply_bytes);
        let outcome = tokio::time::timeout(self.spec.timeout, self.query(&budget)).await;
        if budget.exceeded() {
            let reason = budget.failure();
            return Report::fail(format!("{}: {reason}", self.spec.display))
                .with_error(&reason)
                .with_detail("outcome", "failure");
        }
        match outcome {
            Err(_) => Report::fail(format!(
                "{}: no answer within {}",
                self.spec.display,
                fmt_elapsed(self.spec.timeout)
            ))
            .with_error("timed out")
            .with_detail("outcome", "timeout"),
            Ok(Err(reason)) => Report::fail(format!("{}: {reason}", self.spec.display))
                .with_error(&reason)
                .with_detail("outcome", "failure"),
            Ok(Ok(version)) => {
                let latency = start.elapsed();
                Report::pass(format!(
                    "SELECT 1 on PostgreSQL {version} in {}",
                    fmt_elapsed(latency)
                ))
                .with_detail("server_version", version)
                .with_detail("latency_ms", latency.as_secs_f64() * 1000.0)
            }
        }
    }

    /// Connects to the first host that accepts, runs the query and returns the server version.
    async fn query(&self, budget: &ReplyBudget) -> Result<String, String> {
        let config = &self.spec.config;
        let ports = config.get_ports();
        let addrs = config.get_hostaddrs();
        let mut last_error = String::from("no host to connect to");
        for (index, host) in config.get_hosts().iter().enumerate() {
            // One port for every host, or one each, as libpq reads them.
            let port = ports
                .get(index)
                .or_else(|| ports.first())
                .copied()
                .unwrap_or(DEFAULT_PORT);
            // Each host gets the connect timeout, so one that swallows packets leaves time for
            // the next.
            let limit = config
                .get_connect_timeout()
                .copied()
                .unwrap_or(self.spec.timeout);
            let unreachable = match (host, addrs.get(index)) {
                (_, Some(ip)) => {
                    match within(limit, TcpStream::connect(SocketAddr::new(*ip, port))).await {
                        Ok(stream) => return self.session(budget.wrap(stream)).await,
                        Err(error) => error,
                    }
                }
                (Host::Tcp(name), None) => {
                    match within(limit, TcpStream::connect((name.as_str(), port))).await {
                        Ok(stream) => return self.session(budget.wrap(stream)).await,
                        Err(error) => error,
                    }
                }
                (Host::Unix(dir), None) => {
                    let path = dir.join(format!(".s.PGSQL.{port}"));
                    match within(limit, UnixStream::connect(path)).await {
                        Ok(stream) => return self.session(budget.wrap(stream)).await,
                        Err(error) => error,
                    }
                }
            };
            last_error = format!("cannot connect: {unreachable}");
        }
        Err(last_error)
    }

    /// The handshake and the query on a connected socket.
    async fn session<S>(&self, stream: Bounded<S>) -> Result<String, String>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (client, connection) = self
            .spec
            .config
            .connect_raw(stream, NoTls)
            .await
            .map_err(|error| format!("cannot connect: {}", error_chain(&error)))?;
        // The connection future drives the socket; it ends when the client is dropped below.
        let driver = tokio::spawn(connection);
        let rows = client
            .simple_query("SELECT 1, current_setting('server_version')")
            .await
            .map_err(|error| format!("SELECT 1 failed: {}", error_chain(&error)));
        drop(client);
        let _ = driver.await;
        let version = rows?.into_iter().find_map(|message| match message {
            SimpleQueryMessage::Row(row) => row.get(1).map(str::to_owned),
            _ => None,
        });
        version.ok_or_else(|| "SELECT 1 returned no row".to_owned())
    }
}

/// A connection attempt cut at `limit`.
async fn within<S>(
    limit: Duration,
    connect: impl std::future::Future<Output = std::io::Result<S>>,
) -> std::io::Result<S> {
    tokio::time::timeout(limit, connect)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

impl Probe for PostgresProbe {
    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(self.run())
    }

    fn kind(&self) -> &'static str {
        KIND.scheme
    }
}
