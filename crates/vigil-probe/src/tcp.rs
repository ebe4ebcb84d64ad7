//! `tcp://HOST:PORT` probes: resolve the host and connect with tokio; a connection passes and is closed
//! at once, anything else fails with the reason.

use std::fmt;
use std::net::{Ipv6Addr, SocketAddr};
use std::time::Instant;

use tokio::net::TcpStream;
use vigil_health::{Probe, ProbeFuture, Report};

use crate::spec::{Invalid, Kind, ProbeOptions, ProbeSpec};
use crate::util::fmt_elapsed;

pub(crate) const KIND: Kind = Kind {
    scheme: "tcp",
    form: "tcp://HOST:PORT (IPv6 as tcp://[::1]:PORT)",
    parse,
};

/// A validated `tcp://HOST:PORT` probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpSpec {
    /// A host name or IP address (IPv6 without brackets).
    host: String,
    port: u16,
}

fn parse(_target: &str, rest: &str, _options: &ProbeOptions) -> Result<ProbeSpec, Invalid> {
    let authority = rest
        .strip_prefix("//")
        .ok_or_else(|| Invalid::target("missing `//` after `tcp:`"))?;
    let authority = authority.strip_suffix('/').unwrap_or(authority);
    let (host, port) = split_authority(authority)?;
    Ok(ProbeSpec::Tcp(TcpSpec {
        host: host.to_owned(),
        port,
    }))
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

impl TcpSpec {
    pub(crate) fn build(&self) -> TcpProbe {
        TcpProbe { spec: self.clone() }
    }

    /// `host:port`, with brackets around an IPv6 address.
    fn authority(&self) -> String {
        authority(&self.host, self.port)
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
