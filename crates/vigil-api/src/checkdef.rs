//! Declarative check definitions: the `[[checks]]` tables of the config file and the JSON body of
//! `PUT /v1/checks/{name}` are the same thing, parsed by the same code.

use std::fmt;

use serde::Deserialize;
use vigil_health::{CheckSpec, Engine, RegisterError, Registered, Thresholds};
use vigil_probe::neighbors::CHECK_PREFIX;
use vigil_probe::{limits, Built, ProbeOptions, ProbeSpec, ProbeSpecError};

pub use vigil_text::HumanDuration;

/// One check, as written in config or sent to the API. Every field but `probe` is optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckDefinition {
    /// Unique name. In the API the name comes from the path and may be left out here.
    pub name: Option<String>,
    /// What the check verifies.
    #[serde(default)]
    pub description: String,
    /// Probe target: `http://…`, `https://…`, `tcp://host:port`, `exec:CMD ARGS`, `disk:/path`,
    /// `memory`, `ttl`.
    pub probe: String,
    /// Time between runs (default 30s; 100ms to 24h).
    pub interval: Option<HumanDuration>,
    /// Failures before the first pass are ignored for this long (at most 24h).
    pub start_period: Option<HumanDuration>,
    /// Default true.
    pub enabled: Option<bool>,
    /// Default false.
    #[serde(default)]
    pub critical: bool,
    /// Component, for component scores.
    pub component: Option<String>,
    /// Default 1 (TTL checks: 1).
    pub failures_before_degraded: Option<u32>,
    /// Default 3 (TTL checks: 1).
    pub failures_before_unhealthy: Option<u32>,
    /// Default 1.
    pub successes_before_healthy: Option<u32>,
    /// The probe's options (`method`, `headers`, `expect_status`, `tls_*`, `max_used`, `ttl`,
    /// ...); its `timeout` (default 10s; 10ms to 1h) is the check's per-run timeout too.
    #[serde(flatten)]
    pub options: ProbeOptions,
}

/// A definition that does not make a valid check; `field` names the offending key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DefinitionError {
    /// The key the error is about (`probe`, `interval`, `failures_before_unhealthy`, ...).
    pub field: &'static str,
    /// What is wrong, for people.
    pub message: String,
}

impl DefinitionError {
    fn new(field: &'static str, message: impl fmt::Display) -> Self {
        DefinitionError {
            field,
            message: message.to_string(),
        }
    }
}

/// A validated definition, ready to register.
pub struct CheckPlan {
    /// The engine's spec.
    pub spec: CheckSpec,
    /// The probe, or the TTL.
    pub feed: Built,
}

impl fmt::Debug for CheckPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckPlan")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl CheckPlan {
    /// Registers the check, replacing any of the same name.
    pub fn register(self, engine: &Engine) -> Result<Registered, RegisterError> {
        match self.feed {
            Built::Probe(probe) => engine.register_shared(self.spec, probe),
            Built::Ttl(ttl) => engine.register_ttl(self.spec, ttl),
        }
    }
}

impl CheckDefinition {
    /// Validates the definition into a spec and a probe. `name` overrides the `name` field.
    pub fn plan(&self, name: Option<&str>) -> Result<CheckPlan, DefinitionError> {
        let name = name
            .or(self.name.as_deref())
            .ok_or_else(|| DefinitionError::new("name", "missing field `name`"))?;
        if !vigil_health::valid_check_name(name) {
            let invalid = RegisterError::InvalidName(name.to_owned());
            return Err(DefinitionError::new("name", invalid));
        }
        if name.starts_with(CHECK_PREFIX) {
            return Err(DefinitionError::new(
                "name",
                format!(
                    "invalid check name \"{name}\": names starting with \"{CHECK_PREFIX}\" are \
                     reserved for the checks of neighbours with degrade_node"
                ),
            ));
        }
        self.check_durations()?;
        let probe = ProbeSpec::parse(&self.probe, &self.options).map_err(probe_error)?;
        let feed = probe.build().map_err(probe_error)?;
        let is_ttl = matches!(feed, Built::Ttl(_));

        let defaults = if is_ttl {
            Thresholds::immediate()
        } else {
            Thresholds::default()
        };
        let thresholds = Thresholds::new(
            self.failures_before_degraded
                .unwrap_or(defaults.warning_after()),
            self.failures_before_unhealthy
                .unwrap_or(defaults.critical_after()),
            self.successes_before_healthy
                .unwrap_or(defaults.passing_after()),
        )
        .map_err(|e| {
            let field = match &e {
                vigil_health::ThresholdError::Zero(field) => field,
                vigil_health::ThresholdError::Inverted { .. } => "failures_before_unhealthy",
            };
            DefinitionError::new(field, e)
        })?;

        let mut spec = CheckSpec::new(name)
            .description(self.description.clone())
            .enabled(self.enabled.unwrap_or(true))
            .critical(self.critical)
            .thresholds(thresholds);
        if let Some(d) = self.interval {
            spec = spec.interval(d.0);
        }
        if let Some(d) = self.options.timeout {
            spec = spec.timeout(d);
        }
        if let Some(d) = self.start_period {
            spec = spec.start_period(d.0);
        }
        if let Some(component) = &self.component {
            spec = spec.component(component.clone());
        }
        Ok(CheckPlan { spec, feed })
    }

    /// Every duration in its range ([`limits`]), before anything adds it to a clock.
    fn check_durations(&self) -> Result<(), DefinitionError> {
        let durations = [
            (self.interval.map(|d| d.0), limits::CHECK_INTERVAL),
            (self.options.timeout, limits::CHECK_TIMEOUT),
            (self.start_period.map(|d| d.0), limits::START_PERIOD),
            (self.options.ttl, limits::TTL),
        ];
        for (value, limit) in durations {
            if let Some(d) = value {
                limit
                    .check(d)
                    .map_err(|message| DefinitionError::new(limit.setting, message))?;
            }
        }
        Ok(())
    }
}

/// A probe error belongs to the option it names, or else to `probe`.
fn probe_error(error: ProbeSpecError) -> DefinitionError {
    let field = match &error {
        ProbeSpecError::InvalidOption { option, .. } => option,
        _ => "probe",
    };
    DefinitionError::new(field, error)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn json_definition_becomes_a_check() {
        let def: CheckDefinition = serde_json::from_str(
            r#"{"probe": "tcp://127.0.0.1:9", "interval": "5s", "critical": true, "component": "db"}"#,
        )
        .unwrap();
        let plan = def.plan(Some("db")).unwrap();
        assert_eq!(plan.spec.interval, Duration::from_secs(5));
        assert!(plan.spec.critical);
        assert_eq!(plan.spec.component.as_deref(), Some("db"));
    }

    #[test]
    fn errors_name_the_field() {
        let def = CheckDefinition {
            probe: "ftp://x".into(),
            ..Default::default()
        };
        assert_eq!(def.plan(Some("x")).unwrap_err().field, "probe");
        let def = CheckDefinition {
            probe: "memory".into(),
            failures_before_degraded: Some(3),
            failures_before_unhealthy: Some(2),
            ..Default::default()
        };
        assert_eq!(
            def.plan(Some("x")).unwrap_err().field,
            "failures_before_unhealthy"
        );
        let def = CheckDefinition {
            probe: "memory".into(),
            ..Default::default()
        };
        let reserved = def.plan(Some("neighbor-db")).unwrap_err();
        assert_eq!(reserved.field, "name");
        assert!(
            reserved.message.contains("reserved"),
            "{}",
            reserved.message
        );
    }

    #[test]
    fn durations_out_of_range_name_their_field_and_the_range() {
        for (json, field, message) in [
            (
                r#"{"probe": "ttl", "ttl": "10000000000000000000s"}"#,
                "ttl",
                "ttl must be from 1s to 7d, found 10000000000000000000s",
            ),
            (
                r#"{"probe": "memory", "interval": "1ns"}"#,
                "interval",
                "interval must be from 100ms to 24h, found 1ns",
            ),
            (
                r#"{"probe": "memory", "timeout": "2h"}"#,
                "timeout",
                "timeout must be from 10ms to 1h, found 2h",
            ),
            (
                r#"{"probe": "memory", "start_period": "20000y"}"#,
                "start_period",
                "start_period must be from 0s to 24h, found 7305000d",
            ),
        ] {
            let def: CheckDefinition = serde_json::from_str(json).unwrap();
            let error = def.plan(Some("x")).unwrap_err();
            assert_eq!((error.field, error.message.as_str()), (field, message));
        }
        let def: CheckDefinition = serde_json::from_str(
            r#"{"probe": "ttl", "ttl": "7d", "interval": "24h", "timeout": "1h", "start_period": "24h"}"#,
        )
        .unwrap();
        assert!(
            def.plan(Some("x")).is_ok(),
            "the largest values are accepted"
        );
    }

    #[test]
    fn ttl_checks_fail_at_once_by_default() {
        let def = CheckDefinition {
            probe: "ttl".into(),
            options: ProbeOptions {
                ttl: Some(Duration::from_secs(30)),
                ..ProbeOptions::default()
            },
            ..Default::default()
        };
        assert_eq!(
            def.plan(Some("job")).unwrap().spec.thresholds,
            Thresholds::immediate()
        );
    }
}
