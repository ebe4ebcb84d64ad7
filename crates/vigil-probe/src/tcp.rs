//! `tcp://HOST:PORT` probes: resolve the host and connect with tokio; a connection passes and is closed
//! at once, anything else fails with the reason.

use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;
use std::sync::Arc;

use tokio::net::TcpStream;
use vigil_health::{Probe, ProbeFuture, Report};

use crate::kind::{authority, split_authority, BuildError, Built, Invalid, Kind, ProbeOptions, Target};
use crate::util::fmt_elapsed;

pub(crate) const KIND: Kind = Kind {
    scheme: "tcp",
    form: "tcp://HOST:PORT (IPv6 as tcp://[::1]:PORT)",
    parse,
};

/// The schemes this file parses.
pub(crate) const KINDS: &[Kind] = &[KIND];

/// A validated `tcp://HOST:PORT` probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpSpec {
    /// A host name or IP address (IPv6 without brackets).
    host: String,
    port: u16,
}

fn parse(_target: &str, rest: &str, _options: &ProbeOptions) -> Result<Arc<dyn Target>, Invalid> {
    let authority = rest
        .strip_prefix("//")
        .ok_or_else(|| Invalid::target("missing `//` after `tcp:`"))?;
    let authority = authority.strip_suffix('/').unwrap_or(authority);
    let (host, port) = split_authority(authority)?;
    Ok(Arc::new(TcpSpec {
        host: host.to_owned(),
        port,
    }))
}

impl TcpSpec {
    fn probe(&self) -> TcpProbe {
        TcpProbe { spec: self.clone() }
    }

    /// `host:port`, with brackets around an IPv6 address.
    fn authority(&self) -> String {
        authority(&self.host, self.port)
    }
}

impl Target for TcpSpec {
    fn kind(&self) -> &'static str {
        KIND.scheme
    }

    fn build(&self) -> Result<Built, BuildError> {
        Ok(Built::probe(self.probe()))
    }
}

impl fmt::Display for TcpSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tcp://{}", self.authority())
    }
}

/// A built TCP probe.
pub(crate) struct TcpProbe {
    spec: TcpSpec,
}

impl TcpProbe {
    async fn run(&self) -> Report {
        let authority = self.spec.authority();
        let start = Instant::now();
        let addresses: Vec<SocketAddr> =
            match tokio::net::lookup_host((self.spec.host.as_str(), self.spec.port)).await {
                Ok(addresses) => addresses.collect(),
                Err(error) => {
                    return Report::fail(format!("cannot resolve `{}`: {error}", self.spec.host))
                        .with_error(error)
                }
            };
        if addresses.is_empty() {
            return Report::fail(format!("`{}` resolved to no address", self.spec.host));
        }
        // Try each address in turn, as a client would; report every failure if none connects.
        let mut failures = Vec::new();
        for address in addresses {
            match TcpStream::connect(address).await {
                Ok(stream) => {
                    drop(stream);
                    let elapsed = fmt_elapsed(start.elapsed());
                    let target = if address.to_string() == authority {
                        authority
                    } else {
                        format!("{authority} ({address})")
                    };
                    return Report::pass(format!("connected to {target} in {elapsed}"))
                        .with_detail("address", address.to_string());
                }
                Err(error) if address.to_string() == authority => {
                    failures.push(error.to_string());
                }
                Err(error) => failures.push(format!("{address}: {error}")),
            }
        }
        let reasons = failures.join("; ");
        Report::fail(format!("cannot connect to {authority}: {reasons}")).with_error(reasons)
    }
}

impl Probe for TcpProbe {
    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(self.run())
    }

    fn kind(&self) -> &'static str {
        KIND.scheme
    }
}
