//! `[cluster]`: membership — where gossip listens, whom to join, this node's role, the cluster
//! key, and the protocol's tunables. The section's presence turns membership on.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;
use vigil_gossip::crypto::{Key, Keyring};
use vigil_gossip::Role;
use vigil_text::limits;
use vigil_text::HumanDuration;

use super::{parse_bind, At, Overrides, Setting};

/// `[cluster]`, validated.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// Gossip address, UDP and TCP (default `127.0.0.1:7946`).
    pub bind: SocketAddr,
    /// Address other members use, when `bind` is a wildcard or behind NAT.
    pub advertise: Option<SocketAddr>,
    /// Gossip addresses of members to join through.
    pub seeds: Vec<SocketAddr>,
    /// `voter` or `member`.
    pub role: Role,
    /// Free-form labels spread with the node.
    pub tags: BTreeMap<String, String>,
    /// Ids of the voters, for quorum.
    pub voters: Vec<String>,
    /// Encryption keys: the first encrypts, all decrypt.
    pub keyring: Option<Keyring>,
    /// Where the keyring lives, so `vigil keyring` changes survive restarts.
    pub key_file: Option<PathBuf>,
    /// Protocol tunables.
    pub protocol: vigil_gossip::Config,
    /// Where a voter keeps its Raft log and snapshots; `None`: `vigil-data/<node id>` under
    /// the working directory.
    pub data_dir: Option<PathBuf>,
    /// Where a voter listens for Raft traffic (TCP); default: the gossip host, any free port
    /// (the address is published in the gossip tag `raft`).
    pub raft_bind: Option<SocketAddr>,
    /// Raft's longest election timeout (default 500 ms); see `vigil_cluster::raft::RaftConfig`.
    pub election_timeout: std::time::Duration,
}

/// Default of `election_timeout`: on a LAN, a dead leader is replaced within about 1 s.
pub const DEFAULT_ELECTION_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            bind: SocketAddr::from(([127, 0, 0, 1], 7946)),
            advertise: None,
            seeds: Vec::new(),
            role: Role::Member,
            tags: BTreeMap::new(),
            voters: Vec::new(),
            keyring: None,
            key_file: None,
            protocol: vigil_gossip::Config::default(),
            data_dir: None,
            raft_bind: None,
            election_timeout: DEFAULT_ELECTION_TIMEOUT,
        }
    }
}

/// `[cluster]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCluster {
    bind: Option<Spanned<String>>,
    advertise: Option<Spanned<String>>,
    seeds: Option<Spanned<Vec<Spanned<String>>>>,
    role: Option<Spanned<String>>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    voters: Vec<String>,
    key: Option<Spanned<String>>,
    key_file: Option<Spanned<String>>,
    heartbeat_interval: Option<Spanned<HumanDuration>>,
    observers: Option<Spanned<usize>>,
    phi_threshold: Option<Spanned<f64>>,
    phi_window: Option<Spanned<usize>>,
    phi_min_std_dev: Option<Spanned<HumanDuration>>,
    phi_acceptable_pause: Option<Spanned<HumanDuration>>,
    probe_timeout: Option<Spanned<HumanDuration>>,
    indirect_probes: Option<Spanned<usize>>,
    suspicion_min: Option<Spanned<HumanDuration>>,
    suspicion_max: Option<Spanned<HumanDuration>>,
    gossip_interval: Option<Spanned<HumanDuration>>,
    fanout: Option<Spanned<usize>>,
    push_pull_interval: Option<Spanned<HumanDuration>>,
    reap_after: Option<Spanned<HumanDuration>>,
    data_dir: Option<Spanned<String>>,
    raft_bind: Option<Spanned<String>>,
    election_timeout: Option<Spanned<HumanDuration>>,
    protocol_version: Option<Spanned<usize>>,
}

impl RawCluster {
    pub(super) fn build(self, o: &mut Overrides<'_, '_, '_>, base: &Path) -> ClusterSettings {
        let mut c = ClusterSettings::default();
        let bind = o.string(self.bind.clone(), "cluster", "bind");
        let bind_at = bind.as_ref().map(|b| b.at.clone());
        if let Some(addr) = address(o, bind) {
            c.bind = addr;
        }
        let advertise = o.string(self.advertise.clone(), "cluster", "advertise");
        c.advertise = address(o, advertise);
        if let (true, None, Some(at)) = (c.bind.ip().is_unspecified(), c.advertise, bind_at) {
            o.report.at(
                &at,
                "bind is a wildcard address: set `advertise` to the address other members reach this node at",
            );
        }
        c.seeds = self.seeds_from(o);
        if let Some(role) = o.string(self.role.clone(), "cluster", "role") {
            match role.value.as_str() {
                "voter" => c.role = Role::Voter,
                "member" => c.role = Role::Member,
                other => o.report.at(
                    &role.at,
                    format!("role: unknown role \"{other}\": write \"voter\" or \"member\""),
                ),
            }
        }
        c.tags = self.tags.clone();
        c.voters = self.voters.clone();
        let key = o.string(self.key.clone(), "cluster", "key");
        let key_file = o.string(self.key_file.clone(), "cluster", "key_file");
        match (key, key_file) {
            (Some(_), Some(file)) => o
                .report
                .at(&file.at, "set either `key` or `key_file`, not both"),
            (Some(key), None) => match Key::parse(&key.value) {
                Ok(k) => c.keyring = Some(Keyring::new(k)),
                Err(e) => o.report.at(
                    &key.at,
                    format!("key: {e} (generate one with `vigil keygen`)"),
                ),
            },
            (None, Some(file)) => {
                let path = match file.at {
                    At::Span(_) => base.join(&file.value),
                    At::Env(_) => PathBuf::from(&file.value),
                };
                match vigil_cluster::load_key_file(&path) {
                    Ok(keyring) => c.keyring = Some(keyring),
                    Err(e) => o.report.at(&file.at, format!("key_file: {e}")),
                }
                c.key_file = Some(path);
            }
            (None, None) => {}
        }
        self.raft_into(o, base, &mut c);
        self.protocol_into(o, &mut c.protocol);
        c
    }

    /// The Raft settings of a voter: data directory, Raft port, election timeout.
    fn raft_into(&self, o: &mut Overrides<'_, '_, '_>, base: &Path, c: &mut ClusterSettings) {
        if let Some(dir) = o.string(self.data_dir.clone(), "cluster", "data_dir") {
            if dir.value.trim().is_empty() {
                o.report.at(&dir.at, "data_dir is empty");
            } else {
                c.data_dir = Some(match dir.at {
                    At::Span(_) => base.join(&dir.value),
                    At::Env(_) => PathBuf::from(&dir.value),
                });
            }
        }
        let raft_bind = o.string(self.raft_bind.clone(), "cluster", "raft_bind");
        c.raft_bind = address(o, raft_bind);
        if let Some(d) = o.duration(
            self.election_timeout.clone(),
            "cluster",
            limits::ELECTION_TIMEOUT,
        ) {
            c.election_timeout = d.value;
        }
    }

    fn seeds_from(&self, o: &mut Overrides<'_, '_, '_>) -> Vec<SocketAddr> {
        let (name, env) = o.var("cluster", "seeds");
        let written: Vec<Setting<String>> = match env {
            Some(list) => list
                .split(',')
                .map(|s| Setting {
                    value: s.trim().to_owned(),
                    at: At::Env(name.clone()),
                })
                .filter(|s| !s.value.is_empty())
                .collect(),
            None => self
                .seeds
                .as_ref()
                .map(|seeds| {
                    seeds
                        .get_ref()
                        .iter()
                        .cloned()
                        .map(Setting::from_file)
                        .collect()
                })
                .unwrap_or_default(),
        };
        written
            .into_iter()
            .filter_map(|seed| match seed.value.parse::<SocketAddr>() {
                Ok(addr) => Some(addr),
                Err(_) => {
                    o.report.at(
                        &seed.at,
                        format!("seeds: invalid seed \"{}\": write the gossip address as IP:PORT, e.g. \"10.0.0.1:7946\"", seed.value),
                    );
                    None
                }
            })
            .collect()
    }

    fn protocol_into(self, o: &mut Overrides<'_, '_, '_>, p: &mut vigil_gossip::Config) {
        let suspicion_max_at = self.suspicion_max.as_ref().map(|s| At::Span(s.span()));
        let durations = [
            (
                self.heartbeat_interval,
                limits::HEARTBEAT_INTERVAL,
                &mut p.heartbeat_interval,
            ),
            (
                self.phi_min_std_dev,
                limits::PHI_MIN_STD_DEV,
                &mut p.phi_min_std_dev,
            ),
            (
                self.phi_acceptable_pause,
                limits::PHI_ACCEPTABLE_PAUSE,
                &mut p.phi_acceptable_pause,
            ),
            (
                self.probe_timeout,
                limits::GOSSIP_PROBE_TIMEOUT,
                &mut p.probe_timeout,
            ),
            (
                self.suspicion_min,
                limits::SUSPICION_MIN,
                &mut p.suspicion_min,
            ),
            (
                self.suspicion_max,
                limits::SUSPICION_MAX,
                &mut p.suspicion_max,
            ),
            (
                self.gossip_interval,
                limits::GOSSIP_INTERVAL,
                &mut p.gossip_interval,
            ),
            (
                self.push_pull_interval,
                limits::PUSH_PULL_INTERVAL,
                &mut p.push_pull_interval,
            ),
            (self.reap_after, limits::REAP_AFTER, &mut p.reap_after),
        ];
        for (written, limit, target) in durations {
            if let Some(d) = o.duration(written, "cluster", limit) {
                *target = d.value;
            }
        }
        let counts = [
            (self.observers, "observers", &mut p.observers),
            (self.phi_window, "phi_window", &mut p.phi_window),
            (
                self.indirect_probes,
                "indirect_probes",
                &mut p.indirect_probes,
            ),
            (self.fanout, "fanout", &mut p.fanout),
        ];
        if let Some(pin) = o.count(self.protocol_version, "cluster", "protocol_version") {
            let version = u8::try_from(pin.value).unwrap_or(u8::MAX);
            match vigil_gossip::version::Versions::pinned(version) {
                Ok(versions) => p.versions = versions,
                Err(error) => o.report.at(
                    &pin.at,
                    format!("protocol_version: {error}; leave it out to speak this build's newest"),
                ),
            }
        }
        for (written, key, target) in counts {
            if let Some(n) = o.count(written, "cluster", key) {
                if n.value == 0 {
                    o.report.at(&n.at, format!("{key} must be at least 1"));
                } else {
                    *target = n.value;
                }
            }
        }
        if let Some(phi) = o.pick(self.phi_threshold, "cluster", "phi_threshold", |t| {
            t.parse()
                .map_err(|_| format!("invalid number \"{t}\": expected e.g. 8.0"))
        }) {
            if phi.value > 0.0 && phi.value.is_finite() {
                p.phi_threshold = phi.value;
            } else {
                o.report
                    .at(&phi.at, "phi_threshold must be a positive number, e.g. 8.0");
            }
        }
        if let (true, Some(at)) = (p.suspicion_max < p.suspicion_min, suspicion_max_at) {
            o.report
                .at(&at, "suspicion_max must not be below suspicion_min");
        }
    }
}

/// A written address, parsed; a bad one is reported where it was written.
fn address(o: &mut Overrides<'_, '_, '_>, setting: Option<Setting<String>>) -> Option<SocketAddr> {
    let setting = setting?;
    match parse_bind(&setting.value) {
        Ok(addr) => Some(addr),
        Err(message) => {
            o.report
                .at(&setting.at, message.replacen("bind address", "address", 1));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::parse;

    #[test]
    fn raft_settings_are_read_relative_to_the_config() {
        let config = parse(
            "[cluster]\nrole = \"voter\"\nvoters = [\"a\"]\ndata_dir = \"store\"\nraft_bind = \"127.0.0.1:7400\"\nelection_timeout = \"800ms\"\n",
            "conf/vigil.toml",
        )
        .expect("valid");
        let cluster = config.cluster.expect("cluster");
        assert_eq!(
            cluster.data_dir.as_deref(),
            Some(std::path::Path::new("conf/store"))
        );
        assert_eq!(cluster.raft_bind, Some("127.0.0.1:7400".parse().unwrap()));
        assert_eq!(cluster.election_timeout, Duration::from_millis(800));
        let defaults = parse("[cluster]\n", "vigil.toml").expect("valid");
        let defaults = defaults.cluster.expect("cluster");
        assert_eq!(defaults.election_timeout, Duration::from_millis(500));
        assert_eq!((defaults.data_dir, defaults.raft_bind), (None, None));
    }

    #[test]
    fn raft_setting_errors_point_at_their_key() {
        let errors = parse(
            "[cluster]\nraft_bind = \"nowhere\"\nelection_timeout = \"10ms\"\ndata_dir = \"\"\n",
            "vigil.toml",
        )
        .expect_err("invalid")
        .to_string();
        assert!(errors.contains("vigil.toml:2:13: "), "{errors}");
        assert!(
            errors
                .contains("vigil.toml:3:20: election_timeout must be from 60ms to 1m, found 10ms"),
            "{errors}"
        );
        assert!(
            errors.contains("vigil.toml:4:12: data_dir is empty"),
            "{errors}"
        );
    }
}
