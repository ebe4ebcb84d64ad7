//! What a cluster node needs to start: identity, addresses, seeds, metadata, keys and the
//! protocol's tunables, and the checks that catch a configuration that cannot work.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use vigil_gossip::crypto::Keyring;
use vigil_gossip::Role;

use crate::error::ClusterError;

/// Everything [`Cluster::start`](crate::Cluster::start) needs.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// This node's unique, stable name.
    pub node_id: String,
    /// Where to listen: UDP for gossip and TCP for push-pull exchanges, on the same port. Port 0
    /// picks a free port (see [`Cluster::local_addr`](crate::Cluster::local_addr)).
    pub bind: SocketAddr,
    /// The address other members reach this node at. Default: `bind` (with the port actually
    /// bound). Required when `bind` is a wildcard such as `0.0.0.0`, which no peer can dial; a
    /// port of 0 here means the bound port.
    pub advertise: Option<SocketAddr>,
    /// Gossip addresses of members to join through. Empty: start a new cluster and wait to be
    /// joined.
    pub seeds: Vec<SocketAddr>,
    /// Whether this node votes in leader elections.
    pub role: Role,
    /// Free-form labels spread with this node's metadata.
    pub tags: BTreeMap<String, String>,
    /// This node's HTTP API address, spread with its metadata.
    pub api_addr: Option<SocketAddr>,
    /// Ids of the initial voters. When set, quorum is a strict majority of this list; when empty,
    /// of the voter-role members known. See [`ClusterView::has_quorum`](crate::ClusterView).
    pub voters: Vec<String>,
    /// Encryption keys. `None` runs unencrypted, and such a node can talk only to other
    /// unencrypted nodes.
    pub keyring: Option<Keyring>,
    /// If set, every keyring change made through [`Cluster::keyring`](crate::Cluster::keyring)
    /// is written back here: base64 keys one per line, primary first, replaced atomically, mode
    /// 0600. [`load_key_file`](crate::load_key_file) reads it.
    pub key_file: Option<PathBuf>,
    /// Protocol tunables (timeouts, fanout, observers…).
    pub protocol: vigil_gossip::Config,
}

impl ClusterConfig {
    /// A configuration with defaults for everything but the id and the bind address: no seeds,
    /// plain member role, no tags, no API address, no voters, no encryption, LAN protocol
    /// defaults.
    pub fn new(node_id: impl Into<String>, bind: SocketAddr) -> ClusterConfig {
        ClusterConfig {
            node_id: node_id.into(),
            bind,
            advertise: None,
            seeds: Vec::new(),
            role: Role::Member,
            tags: BTreeMap::new(),
            api_addr: None,
            voters: Vec::new(),
            keyring: None,
            key_file: None,
            protocol: vigil_gossip::Config::default(),
        }
    }

    /// Checks what can be checked before binding.
    pub(crate) fn validate(&self) -> Result<(), ClusterError> {
        if self.node_id.trim().is_empty() {
            return Err(ClusterError::Config("node id is empty".to_owned()));
        }
        if self.node_id.trim() != self.node_id {
            return Err(ClusterError::Config(format!(
                "node id {:?} has leading or trailing whitespace",
                self.node_id
            )));
        }
        match self.advertise {
            None if self.bind.ip().is_unspecified() => Err(ClusterError::Config(format!(
                "bind address {} is a wildcard that other members cannot reach; \
                 set an advertise address (this host's address on the cluster network)",
                self.bind
            ))),
            Some(advertise) if advertise.ip().is_unspecified() => {
                Err(ClusterError::Config(format!(
                    "advertise address {advertise} is a wildcard that other members cannot reach; \
                 give this host's address on the cluster network"
                )))
            }
            _ => Ok(()),
        }
    }

    /// The address to advertise once the sockets are bound at `bound`.
    pub(crate) fn advertise_addr(&self, bound: SocketAddr) -> SocketAddr {
        match self.advertise {
            Some(addr) if addr.port() == 0 => SocketAddr::new(addr.ip(), bound.port()),
            Some(addr) => addr,
            None => bound,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn wildcard_bind_needs_an_advertise_address() {
        let mut config = ClusterConfig::new("n1", addr("0.0.0.0:7946"));
        let err = config.validate().expect_err("wildcard without advertise");
        assert!(err.to_string().contains("0.0.0.0:7946"), "{err}");
        assert!(err.to_string().contains("advertise"), "{err}");
        config.advertise = Some(addr("10.0.0.5:7946"));
        assert!(config.validate().is_ok());
        config.advertise = Some(addr("0.0.0.0:7946"));
        assert!(config.validate().is_err());
    }

    #[test]
    fn node_id_must_be_a_name() {
        assert!(ClusterConfig::new("", addr("127.0.0.1:0"))
            .validate()
            .is_err());
        assert!(ClusterConfig::new(" n1", addr("127.0.0.1:0"))
            .validate()
            .is_err());
    }

    #[test]
    fn advertise_defaults_to_the_bound_address_and_port() {
        let mut config = ClusterConfig::new("n1", addr("127.0.0.1:0"));
        assert_eq!(
            config.advertise_addr(addr("127.0.0.1:4000")),
            addr("127.0.0.1:4000")
        );
        config.advertise = Some(addr("10.0.0.5:0"));
        assert_eq!(
            config.advertise_addr(addr("127.0.0.1:4000")),
            addr("10.0.0.5:4000")
        );
        config.advertise = Some(addr("10.0.0.5:9000"));
        assert_eq!(
            config.advertise_addr(addr("127.0.0.1:4000")),
            addr("10.0.0.5:9000")
        );
    }
}
