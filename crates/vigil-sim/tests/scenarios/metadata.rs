//! A metadata change reaches every node.

use vigil_gossip::{Health, Metadata};
use vigil_sim::{id_of, Kind};

use crate::common::{cluster, secs};

#[test]
fn a_metadata_change_reaches_every_node() {
    let mut sim = cluster(11, 100);
    let x = 5;
    let mut meta = Metadata::default();
    meta.tags.insert("zone".into(), "b".into());
    meta.health = Health::Degraded;
    meta.score = 61;
    let since = sim.now();
    sim.set_metadata(x, meta.clone());
    sim.run_for(secs(10));
    let took = sim
        .time_until_all(x, since, |r| r.kind == Kind::Updated)
        .expect("everyone saw the update");
    eprintln!("metadata reached every node after {took:?}");
    assert!(took <= secs(3), "{took:?}");
    for i in sim.live().into_iter().filter(|&i| i != x) {
        let seen = sim
            .node(i)
            .and_then(|n| n.member(&id_of(x)))
            .map(|m| m.meta.clone());
        // As set, with the protocol versions the node advertises beside the tags it was given.
        let mut advertised = meta.clone();
        advertised.tags.insert(
            vigil_gossip::version::PROTOCOL_TAG.to_owned(),
            vigil_gossip::version::Versions::default().tag(),
        );
        assert_eq!(seen.as_ref(), Some(&advertised), "node {i}");
    }
}
