//! Every request and response body of the HTTP API, as serde structs: the handlers serialize
//! them and the `vigil` commands deserialize them, so a field renamed on one side fails to compile
//! on the other instead of reading blank. The OpenAPI document ([`openapi`](crate::openapi)) is
//! generated from them too (with the `openapi` feature), and its test fails while the checked-in
//! copy still describes the old field.
//!
//! The bodies of the probe endpoints (`/health*`) live in [`vigil_health::wire`] and are
//! re-exported here; the check definition of `PUT /v1/checks/{name}` is
//! [`CheckDefinition`]. Fields of bodies that were once built as JSON maps are declared in
//! alphabetical order, the order those maps wrote them in, so the bytes on the wire stay what
//! they were.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vigil_health::{CheckState, HistoryEntry, Status};

pub use crate::checkdef::CheckDefinition;
pub use vigil_cluster::raft::{GroupMember, GroupRole, InstanceState};
pub use vigil_health::wire::*;

/// Every error: a 4xx (or 503) status and what went wrong, for the person reading it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
}

/// `GET /v1/checks/{name}`: one check and its kept history.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckDetail<'a> {
    /// The check.
    pub check: Check<'a>,
    /// Its past runs, oldest first.
    pub history: Vec<HistoryEntry>,
    /// Its name.
    pub name: String,
}

/// What a change of the check registry did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum CheckOutcome {
    /// A new check (`201`).
    Registered,
    /// A check of that name was replaced (`200`).
    Replaced,
    /// The check is gone.
    Unregistered,
}

/// `PUT` and `DELETE /v1/checks/{name}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckChanged {
    /// The check's name.
    pub check: String,
    /// What happened to it.
    pub result: CheckOutcome,
}

/// The JSON body of a TTL update (a plain-text body is the note itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Note {
    /// Shown as the check's message.
    pub note: Option<String>,
}

/// `PUT /v1/checks/{name}/pass|warn|fail`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TtlUpdated {
    /// The check's name.
    pub check: String,
    /// Its state after the update.
    pub state: Option<CheckState>,
}

/// The change of `POST /v1/keyring/{op}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum KeyringChange {
    /// Accept the key for decryption.
    Install,
    /// Encrypt with the key (installed first).
    Use,
    /// Forget the key (not the primary).
    Remove,
}

/// The body of `POST /v1/keyring/install|use|remove`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", schema(example = json!({"key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="})))]
pub struct KeyRequest {
    /// The key: 32 bytes in base64, as `vigil keygen` prints it.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$")
    )]
    pub key: String,
}

/// `GET /v1/keyring` and the answer of every keyring change: the keys installed afterwards.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Keyring {
    /// Every installed key, never the key itself.
    pub keys: Vec<KeyInfo>,
}

/// One installed key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyInfo {
    /// The key's fingerprint.
    pub fingerprint: String,
    /// Whether this key encrypts outgoing frames.
    pub primary: bool,
}

/// One member, in the membership seed's schema.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// Gossip address.
    pub address: String,
    /// API address, when it advertises one.
    pub api_address: Option<String>,
    /// The health it last gossiped: `starting`, `healthy`, `degraded`, `unhealthy`, `stopping`.
    pub health: String,
    /// The score it last gossiped, 0 to 100.
    pub health_score: u8,
    /// Its node id again; in `/v1/members` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Its incarnation number.
    pub incarnation: u64,
    /// When it was last heard from, RFC 3339.
    pub last_heartbeat_time: Option<String>,
    /// Node id.
    pub node_id: String,
    /// Suspicion level of the failure detector (0 for this node).
    pub phi_score: f64,
    /// `voter` or `member`.
    pub role: String,
    /// `alive`, `suspect`, `dead` or `left`.
    pub state: String,
    /// Its liveness when not alive, else its health, upper case: `HEALTHY`, `SUSPECT`, ...
    pub status: String,
    /// Free-form labels it gossips.
    pub tags: BTreeMap<String, String>,
}

/// `GET /cluster/status`: the membership seed's schema; members that left are not counted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    /// Whether a quorum is reachable (Raft's view on a voter, gossip's otherwise).
    pub has_quorum: bool,
    /// Members alive and healthy or degraded.
    pub healthy_nodes: usize,
    /// This node's id.
    pub local_node: String,
    /// Every member that has not left, by node id.
    pub membership: BTreeMap<String, Member>,
    /// Members that have not left.
    pub total_nodes: usize,
    /// Voters this node can reach, itself included.
    pub voters_reachable: usize,
    /// Voters in the cluster.
    pub voters_total: usize,
}

/// `GET /v1/members`: every member this node knows, itself and those that left included.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Members {
    /// Whether a quorum is reachable (Raft's view on a voter, gossip's otherwise).
    pub has_quorum: bool,
    /// This node's id.
    pub local_node: String,
    /// Every member, each with its `id`.
    pub members: Vec<Member>,
}

/// `GET /v1/leader`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Leader {
    /// The leader's API address, when known.
    pub api_address: Option<String>,
    /// Whether the answering voter is in touch with a majority.
    pub has_quorum: bool,
    /// Whether the answering voter leads.
    pub is_leader: bool,
    /// The leader's node id; `null` while an election runs or without quorum.
    pub leader_id: Option<String>,
    /// The node that answered.
    pub served_by: String,
    /// When the leader was elected, RFC 3339.
    pub since: Option<String>,
    /// How old the answering voter's view may be, in milliseconds (`null`: never in contact).
    pub stale_ms: Option<u64>,
    /// The Raft term.
    pub term: u64,
}

/// The body of `POST /v1/services`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", schema(example = json!({"name": "api", "id": "api-1", "address": "10.0.0.5", "port": 8080, "tags": ["v2"], "ephemeral": false})))]
pub struct Registration {
    /// The service's name: 1 to 200 characters, no `/`, spaces or control characters.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[^/\s\u0000-\u001f\u007f-\u009f]{1,200}$")
    )]
    pub name: String,
    /// The instance's id, unique within its service; same rules as the name.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[^/\s\u0000-\u001f\u007f-\u009f]{1,200}$")
    )]
    pub id: String,
    /// Host or IP clients dial.
    #[cfg_attr(feature = "openapi", schema(pattern = r"\S"))]
    pub address: String,
    /// Port clients dial, 1 to 65535.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 65535))]
    pub port: u16,
    /// Free-form labels.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The node the instance runs on, same rules as the name; the node asked when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[^/\s\u0000-\u001f\u007f-\u009f]{1,200}$")
    )]
    pub node: Option<String>,
    /// Removed once its node is declared dead or gone, or once a TTL check of it lapses.
    #[serde(default)]
    pub ephemeral: bool,
    /// The instance's checks, run by the agent of its node: each a check definition as in
    /// `PUT /v1/checks/{name}` (`probe`, `interval`, `timeout`, thresholds, `ttl`, ...) with a
    /// `name` (default `check-1`, `check-2`, ...). Left out: a TCP check of `address:port`
    /// every 10s; `[]`: no checks, always passing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<Object>>))]
    pub checks: Option<Vec<serde_json::Map<String, serde_json::Value>>>,
    /// Deregistered once a check has been critical this long (`90s`, `10m`; 1s to 30 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deregister_critical_after: Option<String>,
}

/// One check of an instance and its last state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstanceCheck {
    /// The check's name.
    pub name: String,
    /// The message of the result that put it in its state.
    pub output: String,
    /// Its probe, as registered.
    pub probe: String,
    /// `unknown` before a first counted result, then `passing`, `warning` or `critical`.
    pub state: vigil_health::CheckState,
}

/// One registered instance of a service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Instance {
    /// Host or IP clients dial.
    pub address: String,
    /// Its checks with their last states; in registry reads only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<InstanceCheck>>,
    /// Removed once its node is declared dead or gone.
    pub ephemeral: bool,
    /// The health of its node; in registry reads only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<NodeHealth>,
    /// The instance's id.
    pub id: String,
    /// The service's name.
    pub name: String,
    /// The node it runs on.
    pub node: String,
    /// Port clients dial.
    pub port: u16,
    /// What discovery says of it: `unknown`, `passing`, `warning`, `critical` (a check is, or
    /// its node is dead or gone) or `maintenance`; in registry reads only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<InstanceState>,
    /// Free-form labels.
    pub tags: Vec<String>,
}

/// A node's health as last recorded in the registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeHealth {
    /// Health score in percent; `null` when the node never reported.
    pub score: Option<u8>,
    /// `healthy`, `degraded`, `unhealthy`, `starting`, `stopping`, `dead`, `left` or `unknown`.
    pub status: String,
}

/// `POST /v1/services`: `201` when the instance is new, `200` when it was already so.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Registered {
    /// The instance as registered.
    pub registered: Instance,
}

/// `DELETE /v1/services/{name}/{id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Deregistered {
    /// The instance removed.
    pub deregistered: InstanceName,
}

/// The body of `PUT /v1/services/{name}/{id}/maintenance` and
/// `PUT /v1/members/{node}/maintenance`, optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MaintenanceRequest {
    /// Why the instance or node is in maintenance; `in maintenance` when left out.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `PUT` and `DELETE /v1/services/{name}/{id}/maintenance`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Maintenance {
    /// The instance.
    pub instance: InstanceName,
    /// Why it is in maintenance; `null` once out of it.
    pub maintenance: Option<String>,
}

/// `PUT` and `DELETE /v1/members/{node}/maintenance`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeMaintenance {
    /// The node.
    pub node: String,
    /// Why it is in maintenance; `null` once out of it.
    pub maintenance: Option<String>,
}

/// What a config reload did (`POST /v1/reload`, SIGHUP, `vigil reload`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reloaded {
    /// Checks that are new.
    pub added: Vec<String>,
    /// Checks whose definition changed: replaced, their history starting again.
    pub changed: Vec<String>,
    /// Checks no longer in the file: removed.
    pub removed: Vec<String>,
    /// Checks as they were: kept running, with their history.
    pub unchanged: usize,
    /// Other settings that changed and were applied at once (`api.token`, `[[webhooks]]`).
    pub applied: Vec<String>,
    /// Sections that changed but take effect only when the agent restarts.
    pub at_restart: Vec<String>,
}

/// What a registry backup holds (`POST /v1/snapshot`, `vigil snapshot inspect`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SnapshotSummary {
    /// The Raft log index it was read at.
    pub index: u64,
    /// When it was read, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// Bytes of its registry.
    pub bytes: usize,
    /// SHA-256 of its registry, hex.
    pub sha256: String,
    /// Services registered.
    pub services: usize,
    /// Instances registered.
    pub instances: usize,
    /// Nodes with a recorded health report.
    pub nodes: usize,
    /// Holders' sessions.
    pub sessions: usize,
    /// Elections.
    pub elections: usize,
    /// Locks.
    pub locks: usize,
}

/// An instance by its service and id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstanceName {
    /// The instance's id.
    pub id: String,
    /// The service's name.
    pub name: String,
}

/// `GET /v1/services`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Services {
    /// The Raft index of the registry read; `null` before the first entry.
    pub applied_index: Option<u64>,
    /// Every node's last recorded health.
    pub nodes: BTreeMap<String, NodeHealth>,
    /// Every service's instances, by service name.
    pub services: BTreeMap<String, Vec<Instance>>,
}

/// `GET /v1/services/{name}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Service {
    /// The Raft index of the registry read; `null` before the first entry.
    pub applied_index: Option<u64>,
    /// The service's instances.
    pub instances: Vec<Instance>,
    /// The service's name.
    pub name: String,
}

/// `POST /v1/instance-reports`: an agent's report of the checks of instances on its node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstanceReports {
    /// The reporting node; reports about instances on other nodes are ignored.
    pub node: String,
    /// When, in milliseconds since the Unix epoch (the reporter's clock).
    pub at_ms: u64,
    /// Each instance whose checks changed: `{"name", "id", "checks": {"tcp": {"state",
    /// "output"}}}`.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub instances: Vec<vigil_cluster::raft::InstanceReport>,
}

impl InstanceReports {
    /// The registry command that records them.
    pub fn into_command(self) -> vigil_cluster::raft::Command {
        vigil_cluster::raft::Command::ReportInstances {
            node: self.node,
            at_ms: self.at_ms,
            instances: self.instances,
        }
    }
}

/// `GET /v1/registry`: the whole registry, as agents that are not voters copy it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegistryCopy {
    /// The Raft index it was read at; `null` before the first entry.
    pub applied_index: Option<u64>,
    /// The registry.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub registry: vigil_cluster::raft::Registry,
}

/// One target group of `GET /v1/sd/prometheus`, as Prometheus's `http_sd_configs` reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TargetGroup {
    /// The labels of every target in the group.
    pub labels: BTreeMap<String, String>,
    /// `host:port` of each target.
    pub targets: Vec<String>,
}

/// One neighbour as the monitor sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Neighbor {
    /// Its address.
    pub address: String,
    /// Failed probes in a row.
    pub consecutive_failures: u32,
    /// Passed probes in a row.
    pub consecutive_successes: u32,
    /// Whether its being `unavailable` makes this node degraded.
    pub degrade_node: bool,
    /// Probes that failed.
    pub failures_total: u64,
    /// When it was last probed, RFC 3339.
    pub last_checked: Option<String>,
    /// Why the last probe failed; `null` after a pass.
    pub last_error: Option<String>,
    /// How long the last probe took, in seconds.
    pub last_latency_seconds: Option<f64>,
    /// Whether it is probed at all.
    pub monitored: bool,
    /// Its name.
    pub name: String,
    /// Probes run.
    pub probes_total: u64,
    /// How it is probed: `grpc`, `http` or `tcp`.
    pub protocol: String,
    /// When its state last changed, RFC 3339.
    pub since: Option<String>,
    /// `unknown`, `healthy`, `degraded` or `unavailable`.
    pub state: String,
}

/// `GET /v1/neighbors`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Neighbors {
    /// Every configured neighbour.
    pub neighbors: Vec<Neighbor>,
    /// How many there are.
    pub total: usize,
    /// How many are `unavailable`.
    pub unavailable: usize,
}

/// The first event of `/v1/events`: the node as it is when the stream opens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Opening {
    /// When the status was last computed, RFC 3339.
    pub at: String,
    /// Why the node is in its status.
    pub message: String,
    /// The node's id.
    pub node_id: String,
    /// The node's status.
    pub status: Status,
    /// Always `status`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// The event of `/v1/events` that tells of a service whose instances or their states changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceChanged {
    /// The service.
    pub service: String,
    /// Its index now (`X-Vigil-Index` of its discovery answer).
    pub index: u64,
    /// Its instances now.
    pub instances: usize,
    /// Those of them passing.
    pub passing: usize,
    /// Always `service_changed`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// The event of `/v1/events` that tells a slow client how many events it missed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Lagged {
    /// Events dropped.
    pub missed: u64,
    /// Always `lagged`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// `POST /v1/sessions`: a holder's new session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", schema(example = json!({"holder": "head-server-1", "ttl": "10s", "instance": "head/head-1"})))]
pub struct SessionRequest {
    /// Who holds it, for people reading: at most 200 bytes (default: empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// How long it lives without a renewal, 100ms to 24h (default `10s`); renew every third.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// `SERVICE/ID` of a registered instance whose checks it follows: invalidated when they
    /// turn critical or the instance goes into maintenance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The node whose agent the holder runs beside (default: the agent asked): the session is
    /// given up when that node dies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// `DELETE /v1/sessions/{id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionEnded {
    /// The session's id.
    pub ended: String,
}

/// A session as the cluster holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionBody {
    /// When it was created, RFC 3339.
    pub created: String,
    /// Who holds it.
    pub holder: String,
    /// What it holds or waits for: elections and locks.
    pub holds: Vec<HeldRole>,
    /// Its id.
    pub id: String,
    /// `SERVICE/ID` of the instance it follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Why the cluster gave it up, once it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalidated: Option<String>,
    /// The node whose agent created it.
    pub node: String,
    /// Its TTL in milliseconds.
    pub ttl_ms: u64,
}

/// A role a session is a candidate of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeldRole {
    /// The candidate id.
    pub candidate: String,
    /// `election` or `lock`.
    pub kind: String,
    /// The role's name.
    pub name: String,
    /// The fencing token, while it holds the role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<u64>,
    /// Whether it holds the role but is asked to give it up.
    #[serde(default)]
    pub yielding: bool,
}

/// `POST /v1/elections/{name}/campaign`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", schema(example = json!({"candidate": "head-1", "session": "9f0c…", "value": "10.0.0.5:9000", "policy": "lowest-id", "preempt": true})))]
pub struct CampaignRequest {
    /// The candidate's id: 1 to 200 bytes, no control characters.
    pub candidate: String,
    /// The session it campaigns with.
    pub session: String,
    /// What it publishes while it leads (an address, say): at most 1,024 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `first` (default) or `lowest-id`; an election keeps the policy it started with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// With `lowest-id`: a lower id takes over from a higher one (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preempt: Option<bool>,
}

/// `POST /v1/elections/{name}/resign` and `POST /v1/locks/{name}/release`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ResignRequest {
    /// The candidate (for a lock: its holder name, the session's id by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<String>,
    /// Its session.
    pub session: String,
}

/// `POST /v1/locks/{name}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LockRequest {
    /// The session that will hold the lock.
    pub session: String,
    /// Who asks, as the lock shows it (default: the session's id): 1 to 200 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<String>,
    /// What the holder publishes: at most 1,024 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// How many may hold it at once, 1 (default) to 1,024: a semaphore above 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// A holder of an election or a lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoleHolder {
    /// The candidate id.
    pub id: String,
    /// Its session.
    pub session: String,
    /// Since when it holds the role, RFC 3339 (the leader's clock).
    pub since: String,
    /// The fencing token of its grant: higher than every earlier grant of the role.
    pub token: u64,
    /// What it publishes.
    pub value: String,
    /// Whether it is asked to give the role up (a lower id preempts it).
    pub yielding: bool,
}

/// A candidate of an election or a lock, holding it or waiting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoleCandidate {
    /// Whether it holds the role.
    pub holding: bool,
    /// The candidate id.
    pub id: String,
    /// Its session.
    pub session: String,
    /// What it publishes.
    pub value: String,
}

/// An election or a lock: `GET /v1/elections/{name}`, `GET /v1/locks/{name}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoleBody {
    /// Every candidate, holders first, then in the order the policy grants them.
    pub candidates: Vec<RoleCandidate>,
    /// The holders, oldest grant first; an election has one at most.
    pub holders: Vec<RoleHolder>,
    /// The Raft index of its last change (`X-Vigil-Index`).
    pub index: u64,
    /// `election` or `lock`.
    pub kind: String,
    /// The election's leader (its one holder); absent for locks and while nobody leads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<RoleHolder>,
    /// How many may hold it at once.
    pub limit: u32,
    /// Its name.
    pub name: String,
    /// `first` or `lowest-id`.
    pub policy: String,
    /// Whether a lower id takes over from a higher one.
    pub preempt: bool,
}

/// What a campaign or a lock request got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CampaignResult {
    /// Whether the candidate holds the role now.
    pub holding: bool,
    /// The role as it is now.
    pub role: RoleBody,
    /// The fencing token of its grant, while it holds the role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<u64>,
}

/// `GET /v1/elections`, `GET /v1/locks`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoleList {
    /// The Raft index of the last change to any session or role.
    pub index: u64,
    /// Every election or lock, by name.
    pub roles: Vec<RoleBody>,
}

/// The event of `/v1/events` that tells of an election or lock whose holders or candidates
/// changed (`election_changed`, `lock_changed`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoleChanged {
    /// The role now; absent once its last candidate left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<RoleBody>,
    /// Its name.
    pub name: String,
    /// `election_changed` or `lock_changed`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// What a resignation or a lock release left.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Resigned {
    /// The role's name.
    pub name: String,
    /// The role now; absent once its last candidate left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<RoleBody>,
}

/// `GET /v1/voters`, and the answer to a change of the voters: the Raft group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Voters {
    /// Voters first, then learners, each group by name.
    pub members: Vec<GroupMember>,
    /// Whether a change is under way (old and new voters must both agree until it ends).
    pub changing: bool,
    /// The log index of the membership in force.
    pub membership_index: Option<u64>,
    /// The last index of the answering voter's log.
    pub last_log_index: Option<u64>,
    /// The voter that answered.
    pub served_by: String,
}

impl Voters {
    /// The body of `set` as voter `node` sees it.
    pub fn of(set: vigil_cluster::raft::VoterSet, node: String) -> Voters {
        Voters {
            members: set.members,
            changing: set.changing,
            membership_index: set.membership_index,
            last_log_index: set.last_log_index,
            served_by: node,
        }
    }
}
