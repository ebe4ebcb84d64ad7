//! `[dns]`: the DNS interface to service discovery — where it listens, the domain it answers
//! and the TTL of its answers. The section's presence turns it on; it answers from the service
//! registry, so it needs a `[cluster]` section too.

use serde::Deserialize;
use toml::Spanned;
use vigil_api::dns::{check_domain, DnsConfig};
use vigil_text::{limits, HumanDuration};

use super::{parse_bind, Overrides};

/// `[dns]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDns {
    bind: Option<Spanned<String>>,
    domain: Option<Spanned<String>>,
    ttl: Option<Spanned<HumanDuration>>,
}

impl RawDns {
    /// Validates the section.
    pub(super) fn build(self, o: &mut Overrides<'_, '_, '_>) -> DnsConfig {
        let mut dns = DnsConfig::default();
        if let Some(bind) = o.string(self.bind, "dns", "bind") {
            match parse_bind(&bind.value) {
                Ok(addr) => dns.bind = addr,
                Err(message) => o.report.at(&bind.at, message),
            }
        }
        if let Some(domain) = o.string(self.domain, "dns", "domain") {
            match check_domain(&domain.value) {
                Ok(()) => {
                    dns.domain = domain
                        .value
                        .strip_suffix('.')
                        .unwrap_or(&domain.value)
                        .to_owned()
                }
                Err(reason) => o.report.at(&domain.at, format!("domain: {reason}")),
            }
        }
        if let Some(ttl) = o.duration(self.ttl, "dns", limits::DNS_TTL) {
            dns.ttl = ttl.value;
        }
        dns
    }
}
