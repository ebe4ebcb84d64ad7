//! The health of service instances as the registry records it: the last state of each of an
//! instance's checks, reported by the agent of the instance's node, and the one state that
//! discovery answers with.
//!
//! The checks themselves run on that agent; the registry only carries their definitions (as the
//! API accepted them) and their results, so that every agent answers discovery from its own
//! copy and the answer has one index, the Raft log's.

use std::sync::Arc;

use litemap::LiteMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use vigil_health::CheckState;

/// A JSON object as serde_json parses one.
pub type JsonObject = serde_json::Map<String, serde_json::Value>;

/// A check of an instance as registered: the JSON object of a check definition, which the agent
/// of the instance's node parses and validates. The registry only stores it.
///
/// It is kept as its JSON text, shared by every version of the registry and by the check that
/// runs it: tens of bytes where a parsed object takes close to a kilobyte, for each of up to
/// 10,000 instances an agent may hold.
#[derive(Clone, Debug)]
pub struct CheckBody(Arc<RawValue>);

impl CheckBody {
    /// The body of `object`.
    pub fn new(object: &JsonObject) -> CheckBody {
        let text = serde_json::value::to_raw_value(object)
            .expect("a JSON object of strings and values always serializes");
        CheckBody(Arc::from(text))
    }

    /// The body's JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The body read as `T`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }

    /// The body as an object.
    pub fn object(&self) -> JsonObject {
        self.parse().unwrap_or_default()
    }

    /// The `probe` the body names, if it names one as a string.
    pub fn probe(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct Probe {
            probe: Option<serde_json::Value>,
        }
        match self.parse::<Probe>().ok()?.probe? {
            serde_json::Value::String(probe) => Some(probe),
            _ => None,
        }
    }
}

impl PartialEq for CheckBody {
    fn eq(&self, other: &CheckBody) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for CheckBody {}

impl Serialize for CheckBody {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for CheckBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<CheckBody, D::Error> {
        // Through an object, not straight into the raw text: log entries are internally tagged
        // enums, which serde buffers, and a buffered value has no raw text left to borrow.
        JsonObject::deserialize(deserializer).map(|object| CheckBody::new(&object))
    }
}

/// Checks by name. Instances have one or a few, so a sorted vector: a B-tree map would allocate
/// a node of eleven slots for each of them.
pub type CheckMap<V> = LiteMap<String, V>;

/// `map` holding exactly its entries: a map built entry by entry keeps room for four, and an
/// agent holds one or two per instance.
pub fn compacted<V>(map: CheckMap<V>) -> CheckMap<V> {
    let mut entries = map.into_tuple_vec();
    entries.shrink_to_fit();
    // Still in the order the map kept them in.
    LiteMap::from_sorted_store_unchecked(entries)
}

/// Longest check output the registry keeps; longer output is cut at a character boundary.
pub const MAX_OUTPUT: usize = 512;

/// What discovery says of an instance.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum InstanceState {
    /// No check has a counted result yet.
    #[default]
    Unknown,
    /// Every check passes (or the instance has none).
    Passing,
    /// A check warns; none is critical.
    Warning,
    /// A check is critical, or the instance's node is dead or gone.
    Critical,
    /// Taken out of service on purpose; never returned as healthy.
    Maintenance,
}

impl InstanceState {
    /// Every state, in display order.
    pub const ALL: [InstanceState; 5] = [
        InstanceState::Unknown,
        InstanceState::Passing,
        InstanceState::Warning,
        InstanceState::Critical,
        InstanceState::Maintenance,
    ];

    /// The lowercase name used in JSON, DNS, metrics and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Unknown => "unknown",
            InstanceState::Passing => "passing",
            InstanceState::Warning => "warning",
            InstanceState::Critical => "critical",
            InstanceState::Maintenance => "maintenance",
        }
    }
}

/// The last result of one check of an instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    /// The check's state.
    pub state: CheckState,
    /// The message of the result that put it there, at most [`MAX_OUTPUT`] bytes.
    #[serde(default)]
    pub output: String,
}

impl CheckReport {
    /// A report with `output` cut to [`MAX_OUTPUT`] bytes.
    pub fn new(state: CheckState, output: &str) -> CheckReport {
        let mut end = output.len().min(MAX_OUTPUT);
        while !output.is_char_boundary(end) {
            end -= 1;
        }
        CheckReport {
            state,
            output: output[..end].to_owned(),
        }
    }
}

/// One instance's checks as its node's agent last reported them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceReport {
    /// The service.
    pub name: String,
    /// The instance.
    pub id: String,
    /// Each check's result, by check name.
    pub checks: CheckMap<CheckReport>,
}

/// What the registry holds about an instance's health.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceHealth {
    /// Each check's last result, by check name; a check with no report yet is absent.
    #[serde(default)]
    pub checks: CheckMap<CheckReport>,
    /// Since when a check has been critical (the reporting agent's clock, milliseconds since
    /// the Unix epoch); `deregister_critical_after` counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical_since_ms: Option<u64>,
    /// Why the instance is in maintenance, while it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<String>,
}

impl InstanceHealth {
    /// The instance's state from its checks alone, given how many checks it has: critical if
    /// any is, else warning if any is, else unknown while any has no counted result, else
    /// passing. Maintenance wins over all of them.
    pub fn state(&self, checks: usize) -> InstanceState {
        if self.maintenance.is_some() {
            return InstanceState::Maintenance;
        }
        let worst = self.checks.values().map(|c| c.state).max();
        match worst {
            Some(CheckState::Critical) => InstanceState::Critical,
            Some(CheckState::Warning) => InstanceState::Warning,
            _ if checks == 0 => InstanceState::Passing,
            _ if self.checks.len() < checks
                || self.checks.values().any(|c| c.state == CheckState::Unknown) =>
            {
                InstanceState::Unknown
            }
            _ => InstanceState::Passing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(states: &[CheckState]) -> InstanceHealth {
        InstanceHealth {
            checks: states
                .iter()
                .enumerate()
                .map(|(i, s)| (i.to_string(), CheckReport::new(*s, "")))
                .collect(),
            ..InstanceHealth::default()
        }
    }

    #[test]
    fn the_worst_check_decides_and_a_missing_result_is_unknown() {
        use CheckState::*;
        assert_eq!(health(&[]).state(0), InstanceState::Passing);
        assert_eq!(health(&[]).state(1), InstanceState::Unknown);
        assert_eq!(health(&[Passing]).state(2), InstanceState::Unknown);
        assert_eq!(health(&[Passing, Passing]).state(2), InstanceState::Passing);
        assert_eq!(health(&[Passing, Warning]).state(3), InstanceState::Warning);
        assert_eq!(
            health(&[Warning, Critical]).state(2),
            InstanceState::Critical
        );
        assert_eq!(health(&[Unknown, Passing]).state(2), InstanceState::Unknown);
        let mut down = health(&[Passing]);
        down.maintenance = Some("upgrade".into());
        assert_eq!(down.state(1), InstanceState::Maintenance);
    }

    #[test]
    fn output_is_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_OUTPUT);
        let report = CheckReport::new(CheckState::Critical, &long);
        assert!(report.output.len() <= MAX_OUTPUT);
        assert!(report.output.chars().all(|c| c == 'é'));
    }
}
