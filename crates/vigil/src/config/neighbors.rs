//! `[[neighbors]]`: the peers this node watches (the services it calls, its team's other nodes),
//! each with an address, a protocol, a schedule and thresholds, validated with every error at its
//! key.

use std::collections::HashMap;

use serde::Deserialize;
use toml::de::DeValue;
use toml::Spanned;
use vigil_health::Thresholds;
use vigil_probe::neighbors::{NeighborSpec, Protocol, CHECK_PREFIX};
use vigil_probe::{ProbeOptions, ProbeSpec};
use vigil_text::limits;
use vigil_text::HumanDuration;

use super::{array_of_tables, deserialize_table, Report};

/// One `[[neighbors]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNeighbor {
    name: Spanned<String>,
    address: Spanned<String>,
    protocol: Option<Spanned<String>>,
    interval: Option<Spanned<HumanDuration>>,
    timeout: Option<Spanned<HumanDuration>>,
    failures_before_degraded: Option<Spanned<u32>>,
    failures_before_unavailable: Option<Spanned<u32>>,
    successes_before_healthy: Option<Spanned<u32>>,
    #[serde(default = "yes")]
    monitor: bool,
    #[serde(default)]
    degrade_node: bool,
}

fn yes() -> bool {
    true
}

/// Validates every `[[neighbors]]` table; the valid ones are returned in file order.
pub(super) fn neighbors(
    value: &Spanned<DeValue<'_>>,
    report: &mut Report<'_>,
) -> Vec<NeighborSpec> {
    let mut specs = Vec::new();
    // Name → line of its first definition.
    let mut names: HashMap<String, usize> = HashMap::new();
    for (table, span) in array_of_tables(value, "neighbors", "neighbour", report) {
        let (raw, removed) = deserialize_table::<RawNeighbor>(table, span, report);
        let Some(raw) = raw else { continue };
        if let Some(spec) = raw.validate(&mut names, report) {
            if removed.is_empty() {
                specs.push(spec);
            }
        }
    }
    specs
}

impl RawNeighbor {
    fn validate(
        self,
        names: &mut HashMap<String, usize>,
        report: &mut Report<'_>,
    ) -> Option<NeighborSpec> {
        let mut ok = true;
        let name = self.name.get_ref().clone();
        let check = format!("{CHECK_PREFIX}{name}");
        if name.is_empty() || !vigil_health::valid_check_name(&check) {
            report.at_span(
                self.name.span(),
                format!("invalid neighbour name \"{name}\": use letters, digits, '.', '_', '-' and ':' (at most 119)"),
            );
            ok = false;
        } else {
            let line = report.line_of(self.name.span().start);
            if let Some(first) = names.get(&name) {
                report.at_span(
                    self.name.span(),
                    format!("duplicate neighbour name \"{name}\": the first is at line {first}; names must be unique"),
                );
                ok = false;
            } else {
                names.insert(name.clone(), line);
            }
        }
        let protocol = match self.protocol.as_ref().map(|p| p.get_ref().as_str()) {
            None | Some("grpc") => Protocol::Grpc,
            Some("http") => Protocol::Http,
            Some("tcp") => Protocol::Tcp,
            Some(other) => {
                let span = self.protocol.as_ref().map_or(0..0, Spanned::span);
                report.at_span(
                    span,
                    format!("protocol: unknown protocol \"{other}\": write \"grpc\", \"http\" or \"tcp\""),
                );
                return None;
            }
        };
        let mut spec = NeighborSpec::new(name, self.address.get_ref().clone(), protocol);
        // The address must make a probe target of its protocol.
        let target = protocol.target(&spec.address);
        if let Err(error) = ProbeSpec::parse(&target, &ProbeOptions::default()) {
            report.at_span(self.address.span(), format!("address: {error}"));
            ok = false;
        }
        for (value, slot, limit) in [
            (&self.interval, &mut spec.interval, limits::CHECK_INTERVAL),
            (&self.timeout, &mut spec.timeout, limits::CHECK_TIMEOUT),
        ] {
            if let Some(value) = value {
                match limit.check(value.get_ref().0) {
                    Ok(duration) => *slot = duration,
                    Err(error) => {
                        report.at_span(value.span(), error.to_string());
                        ok = false;
                    }
                }
            }
        }
        let defaults = Thresholds::default();
        let degraded = self
            .failures_before_degraded
            .as_ref()
            .map_or(defaults.warning_after(), |v| *v.get_ref());
        let unavailable = self
            .failures_before_unavailable
            .as_ref()
            .map_or(defaults.critical_after(), |v| *v.get_ref());
        let healthy = self
            .successes_before_healthy
            .as_ref()
            .map_or(defaults.passing_after(), |v| *v.get_ref());
        match Thresholds::new(degraded, unavailable, healthy) {
            Ok(thresholds) => spec.thresholds = thresholds,
            Err(error) => {
                let span = self
                    .failures_before_unavailable
                    .as_ref()
                    .or(self.failures_before_degraded.as_ref())
                    .or(self.successes_before_healthy.as_ref())
                    .map_or_else(|| self.name.span(), Spanned::span);
                // The engine names its thresholds after checks; a neighbour's third is `unavailable`.
                let message = error
                    .to_string()
                    .replace("failures_before_unhealthy", "failures_before_unavailable");
                report.at_span(span, format!("thresholds: {message}"));
                ok = false;
            }
        }
        spec.monitor = self.monitor;
        spec.degrade_node = self.degrade_node;
        ok.then_some(spec)
    }
}
