//! `[grpc]`: the gRPC health server — where it listens, and which service names stand for which
//! checks. The section's presence turns the server on.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::Deserialize;
use toml::Spanned;

use super::{parse_bind, Overrides};

/// `[grpc]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcSettings {
    /// Listen address (default `127.0.0.1:9091`).
    pub bind: SocketAddr,
    /// Health service name → the checks that must all serve for it to be `SERVING`.
    pub services: BTreeMap<String, Vec<String>>,
}

impl Default for GrpcSettings {
    fn default() -> Self {
        GrpcSettings {
            bind: SocketAddr::from(([127, 0, 0, 1], 9091)),
            services: BTreeMap::new(),
        }
    }
}

/// `[grpc]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGrpc {
    bind: Option<Spanned<String>>,
    #[serde(default)]
    services: BTreeMap<Spanned<String>, Spanned<Vec<Spanned<String>>>>,
}

impl RawGrpc {
    /// Validates the section; `checks` are the names of the configured checks, which services
    /// may group and must not shadow.
    pub(super) fn build(self, o: &mut Overrides<'_, '_, '_>, checks: &[&str]) -> GrpcSettings {
        let mut grpc = GrpcSettings::default();
        if let Some(bind) = o.string(self.bind, "grpc", "bind") {
            match parse_bind(&bind.value) {
                Ok(addr) => grpc.bind = addr,
                Err(message) => o.report.at(&bind.at, message),
            }
        }
        for (name, members) in self.services {
            if name.get_ref().is_empty() {
                o.report.at_span(
                    name.span(),
                    "services: the empty name is the whole node; name a service, e.g. \"app.Api\"",
                );
                continue;
            }
            if checks.contains(&name.get_ref().as_str()) {
                o.report.at_span(
                    name.span(),
                    format!(
                        "services: \"{}\" is already a check's name; a service needs a name of its own",
                        name.get_ref()
                    ),
                );
                continue;
            }
            let span = members.span();
            let members = members.into_inner();
            if members.is_empty() {
                o.report.at_span(span, "services: list at least one check");
                continue;
            }
            let mut valid = true;
            for member in &members {
                if !checks.contains(&member.get_ref().as_str()) {
                    o.report.at_span(
                        member.span(),
                        format!(
                            "services: no check is named \"{}\" (the [[checks]] names are: {})",
                            member.get_ref(),
                            checks.join(", ")
                        ),
                    );
                    valid = false;
                }
            }
            if valid {
                grpc.services.insert(
                    name.into_inner(),
                    members.into_iter().map(Spanned::into_inner).collect(),
                );
            }
        }
        grpc
    }
}
