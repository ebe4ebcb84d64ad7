//! Protocol versions, and how a cluster keeps speaking one while its members are upgraded one at
//! a time (as memberlist's protocol min/max does).
//!
//! Every frame names, in its first byte inside the seal, the protocol version it is written in.
//! A build speaks [`PROTOCOL_MIN`]..=[`PROTOCOL_MAX`] — its own version and the previous one — and
//! reads frames of any version it speaks. It writes the version the whole cluster speaks: the
//! lowest of the highest versions of every active member, as each advertises its range in its
//! metadata under [`PROTOCOL_TAG`]. A member without the tag is taken to speak [`PROTOCOL_MIN`]
//! alone (builds from before versions were advertised spoke 2, two versions back from this one,
//! which no build mixes with). A node that knows no other member yet (it is
//! joining) writes [`PROTOCOL_MIN`]'s frames, which every member reads. So a cluster moves to a new
//! version only once its last member speaks it, and a member that still speaks only the old one
//! never receives a frame it cannot read.
//!
//! A node can be pinned to a lower highest version ([`Versions::pinned`], `[cluster]
//! protocol_version`): it then reads and writes as the previous build does, which is how an
//! upgrade is rehearsed, and how a cluster is held on the old version while a new build is
//! trialled on some of its members.

use std::collections::BTreeMap;

/// The oldest protocol version this build speaks: the previous build's.
pub const PROTOCOL_MIN: u8 = 3;
/// The protocol version of this build.
pub const PROTOCOL_MAX: u8 = 4;
/// The first version whose heartbeats carry the sender's membership digest.
pub const DIGEST_SINCE: u8 = 4;
/// The metadata tag under which a member advertises the versions it speaks, as `MIN-MAX`.
pub const PROTOCOL_TAG: &str = "vigil-protocol";

/// The protocol versions a node speaks: `min..=max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Versions {
    /// The oldest it reads and writes.
    pub min: u8,
    /// The newest it reads and writes.
    pub max: u8,
}

impl Default for Versions {
    fn default() -> Self {
        Versions {
            min: PROTOCOL_MIN,
            max: PROTOCOL_MAX,
        }
    }
}

/// A pin outside the versions this build speaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("protocol version {0} is not one this build speaks ({PROTOCOL_MIN} to {PROTOCOL_MAX})")]
pub struct UnknownVersion(pub u8);

impl Versions {
    /// This build's versions, the newest being `max` (a pin to an older one).
    pub fn pinned(max: u8) -> Result<Versions, UnknownVersion> {
        if (PROTOCOL_MIN..=PROTOCOL_MAX).contains(&max) {
            Ok(Versions {
                min: PROTOCOL_MIN,
                max,
            })
        } else {
            Err(UnknownVersion(max))
        }
    }

    /// Whether frames of `version` are read.
    pub fn speaks(self, version: u8) -> bool {
        (self.min..=self.max).contains(&version)
    }

    /// The value of [`PROTOCOL_TAG`].
    pub fn tag(self) -> String {
        format!("{}-{}", self.min, self.max)
    }

    /// The versions a member advertises in its tags; [`PROTOCOL_MIN`] alone without the tag (or
    /// with one that does not read as `MIN-MAX`).
    pub fn advertised(tags: &BTreeMap<String, String>) -> Versions {
        let parsed = tags.get(PROTOCOL_TAG).and_then(|tag| {
            let (min, max) = tag.split_once('-')?;
            let (min, max) = (min.parse().ok()?, max.parse().ok()?);
            (min <= max).then_some(Versions { min, max })
        });
        parsed.unwrap_or(Versions {
            min: PROTOCOL_MIN,
            max: PROTOCOL_MIN,
        })
    }
}

/// The version a node that speaks `own` writes, given the highest versions of the other active
/// members: the lowest of theirs and its own, never below its own lowest; its own lowest while it
/// knows no other member.
pub fn cluster_version(own: Versions, others_highest: impl IntoIterator<Item = u8>) -> u8 {
    others_highest
        .into_iter()
        .min()
        .map_or(own.min, |lowest| lowest.min(own.max).max(own.min))
}

/// The highest version each active member advertises, kept as members change, with how many
/// members advertise each: the lowest of them is read off at once instead of scanning every
/// member's tags after each change (which made a cluster's forming quadratic in its size).
#[derive(Debug)]
pub(crate) struct Advertised<K> {
    highest_of: std::collections::HashMap<K, u8>,
    members_at: BTreeMap<u8, usize>,
}

impl<K> Default for Advertised<K> {
    fn default() -> Self {
        Advertised {
            highest_of: std::collections::HashMap::new(),
            members_at: BTreeMap::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq + Clone> Advertised<K> {
    /// Records that `member` now advertises `highest` (`None`: it is not active).
    pub(crate) fn set(&mut self, member: &K, highest: Option<u8>) {
        let before = match highest {
            Some(version) => self.highest_of.insert(member.clone(), version),
            None => self.highest_of.remove(member),
        };
        if before == highest {
            return;
        }
        if let Some(version) = before {
            if let Some(count) = self.members_at.get_mut(&version) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    self.members_at.remove(&version);
                }
            }
        }
        if let Some(version) = highest {
            *self.members_at.entry(version).or_default() += 1;
        }
    }

    /// The lowest highest version an active member advertises; `None` while none is known.
    pub(crate) fn lowest(&self) -> Option<u8> {
        self.members_at.keys().next().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(value: Option<&str>) -> BTreeMap<String, String> {
        value
            .map(|v| BTreeMap::from([(PROTOCOL_TAG.to_owned(), v.to_owned())]))
            .unwrap_or_default()
    }

    #[test]
    fn a_member_without_the_tag_speaks_the_oldest_version_alone() {
        let old = Versions::advertised(&tags(None));
        assert_eq!((old.min, old.max), (PROTOCOL_MIN, PROTOCOL_MIN));
        assert_eq!(Versions::advertised(&tags(Some("x-y"))), old);
        assert_eq!(Versions::advertised(&tags(Some("3-2"))), old);
        assert_eq!(
            Versions::advertised(&tags(Some(&Versions::default().tag()))),
            Versions::default()
        );
    }

    #[test]
    fn the_cluster_speaks_the_lowest_highest_version() {
        let new = Versions::default();
        let pinned = Versions::pinned(PROTOCOL_MIN).expect("a version this build speaks");
        assert_eq!(
            cluster_version(new, []),
            PROTOCOL_MIN,
            "joining: the oldest"
        );
        assert_eq!(cluster_version(new, [new.max, new.max]), PROTOCOL_MAX);
        assert_eq!(cluster_version(new, [new.max, pinned.max]), PROTOCOL_MIN);
        assert_eq!(cluster_version(pinned, [new.max, new.max]), PROTOCOL_MIN);
        assert!(Versions::pinned(PROTOCOL_MAX + 1).is_err());
        assert!(Versions::pinned(PROTOCOL_MIN - 1).is_err());
        assert!(pinned.speaks(PROTOCOL_MIN) && !pinned.speaks(PROTOCOL_MAX));
    }

    #[test]
    fn the_lowest_advertised_version_follows_members_as_they_change() {
        let mut advertised = Advertised::default();
        assert_eq!(advertised.lowest(), None);
        advertised.set(&"a", Some(4));
        advertised.set(&"b", Some(3));
        advertised.set(&"b", Some(3));
        assert_eq!(advertised.lowest(), Some(3));
        advertised.set(&"c", Some(3));
        advertised.set(&"b", Some(4));
        assert_eq!(advertised.lowest(), Some(3), "c still speaks 3 alone");
        advertised.set(&"c", None);
        assert_eq!(advertised.lowest(), Some(4));
        advertised.set(&"c", None);
        advertised.set(&"a", None);
        advertised.set(&"b", None);
        assert_eq!(advertised.lowest(), None);
    }
}
