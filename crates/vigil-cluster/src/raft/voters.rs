//! Changing who votes while the cluster runs.
//!
//! `[cluster] voters` is only the set a new cluster starts with; after that the voters are Raft's
//! membership, changed through the leader. A new voter joins as a learner — Raft replicates to it
//! but does not count it — and is promoted once it holds the log up to where it was when it was
//! added, so a slow newcomer never weakens the quorum that writes wait for. A voter is removed by
//! a change the remaining majority commits, so a dead voter can be removed. openraft commits
//! every change as a joint configuration first (both the old and the new majority must agree
//! until the new one alone is in force), so no two majorities ever decide at once.
//!
//! The gossip view counts its quorum over the same voters: every voter tells its [`Cluster`] of
//! each membership it learns.
//!
//! [`Cluster`]: crate::Cluster

use std::collections::BTreeSet;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::ChangeMembers;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};
use vigil_gossip::MemberState;

use super::types::{raft_id, TypeConfig, Voter};
use super::{Leadership, WriteError, RAFT_TAG};

/// Whether a member of the Raft group votes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum GroupRole {
    /// Counts in every majority.
    Voter,
    /// Receives the log, counts in no majority: a voter being added, catching up.
    Learner,
}

/// One member of the Raft group, as a voter sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupMember {
    /// Its node id.
    pub name: String,
    /// Whether it votes.
    pub role: GroupRole,
    /// Whether it leads.
    pub leader: bool,
    /// The last log index the leader knows it holds; `None` on a node that does not lead, or for
    /// a member that has acknowledged nothing yet.
    pub matched_index: Option<u64>,
}

/// The Raft group as one voter sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VoterSet {
    /// Every member, voters first, each group by name.
    pub members: Vec<GroupMember>,
    /// Whether a change is under way: a joint configuration (old and new voters) is in force.
    pub changing: bool,
    /// The log index of the membership in force.
    pub membership_index: Option<u64>,
    /// The last index of this node's log.
    pub last_log_index: Option<u64>,
}

/// Why the voters did not change.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    /// Not the leader, no quorum, or Raft stopped.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The node is not an active member that publishes a Raft address.
    #[error("{0:?} is not a live member running Raft: start it with role = \"voter\" (and the same seeds), then add it")]
    NotRunningRaft(String),
    /// Two node ids share a Raft id.
    #[error("{name:?} has the same Raft id as member {other:?}: rename one")]
    IdClash {
        /// The node asked for.
        name: String,
        /// The member already in the group.
        other: String,
    },
    /// Removal of a node that is not in the group.
    #[error("{0:?} is not a voter")]
    NotAVoter(String),
    /// Removal of the only voter.
    #[error("{0:?} is the only voter: add another before removing it")]
    LastVoter(String),
    /// The learner did not hold the log in time; it was taken out of the group again.
    #[error("{name:?} did not catch up within {within:?} ({behind} log entries behind); it was not made a voter")]
    CatchUp {
        /// The node.
        name: String,
        /// How long it was given.
        within: Duration,
        /// How far behind it still was.
        behind: u64,
    },
    /// openraft refused the change (another change under way, say).
    #[error("the change was refused: {0}")]
    Refused(String),
}

impl Leadership {
    /// The voters of the membership in force (old and new during a change), by Raft id.
    pub(super) fn voter_names(&self) -> Vec<(u64, String)> {
        let metrics = self.inner.raft.metrics();
        let metrics = metrics.borrow();
        let membership = metrics.membership_config.membership();
        membership
            .voter_ids()
            .filter_map(|id| Some((id, membership.get_node(&id)?.name.clone())))
            .collect()
    }

    /// The Raft group as this voter sees it.
    pub fn voters(&self) -> VoterSet {
        let metrics = self.inner.raft.metrics().borrow().clone();
        let stored = &metrics.membership_config;
        let membership = stored.membership();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let matched = |id: &u64| {
            metrics
                .replication
                .as_ref()
                .and_then(|r| r.get(id).cloned().flatten())
                .map(|log_id| log_id.index)
        };
        let mut members: Vec<GroupMember> = membership
            .nodes()
            .map(|(id, node)| GroupMember {
                name: node.name.clone(),
                role: if voters.contains(id) {
                    GroupRole::Voter
                } else {
                    GroupRole::Learner
                },
                leader: metrics.current_leader == Some(*id),
                matched_index: matched(id),
            })
            .collect();
        members.sort_by(|a, b| {
            (a.role == GroupRole::Learner, &a.name).cmp(&(b.role == GroupRole::Learner, &b.name))
        });
        VoterSet {
            members,
            changing: membership.get_joint_config().len() > 1,
            membership_index: stored.log_id().map(|log_id| log_id.index),
            last_log_index: metrics.last_log_index,
        }
    }

    /// Makes `name` a voter: adds it as a learner, waits at most `within` for it to hold the log
    /// as it was then, and promotes it. A node that is already a voter is left as it is. On this
    /// group's leader only ([`WriteError::NotLeader`] elsewhere). A learner that does not catch
    /// up in time is taken out again, so a failed addition leaves the group as it was.
    pub async fn add_voter(
        &self,
        name: &str,
        within: Duration,
    ) -> Result<VoterSet, MembershipError> {
        self.ready_to_lead()?;
        let id = raft_id(name);
        if let Some(known) = self.name_of(id) {
            if known != name {
                return Err(MembershipError::IdClash {
                    name: name.to_owned(),
                    other: known,
                });
            }
            if self.voter_names().iter().any(|(voter, _)| *voter == id) {
                return Ok(self.voters());
            }
        }
        let runs_raft = self
            .inner
            .cluster
            .view()
            .member(name)
            .is_some_and(|m| m.state == MemberState::Alive && m.tags.contains_key(RAFT_TAG));
        if !runs_raft {
            return Err(MembershipError::NotRunningRaft(name.to_owned()));
        }
        let added = self
            .change(self.inner.raft.add_learner(
                id,
                Voter {
                    name: name.to_owned(),
                },
                false,
            ))
            .await?;
        let target = self
            .inner
            .raft
            .metrics()
            .borrow()
            .last_log_index
            .unwrap_or(added);
        info!(voter = %name, target, "learner added: waiting for it to catch up");
        if let Err(behind) = self.caught_up(id, target, within).await {
            warn!(voter = %name, behind, "learner did not catch up: taking it out again");
            let removal = self
                .inner
                .raft
                .change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false);
            if let Err(e) = self.change(removal).await {
                warn!(voter = %name, error = %e, "could not take the learner out again");
            }
            return Err(MembershipError::CatchUp {
                name: name.to_owned(),
                within,
                behind,
            });
        }
        let promotion = self
            .inner
            .raft
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false);
        self.change(promotion).await?;
        info!(voter = %name, "promoted to voter");
        Ok(self.voters())
    }

    /// Takes `name` out of the group (a learner, or a voter, dead or alive, as long as the
    /// others keep a majority). On this group's leader only; a leader that removes itself
    /// leads until the change is committed, then the others elect one of themselves.
    pub async fn remove_voter(&self, name: &str) -> Result<VoterSet, MembershipError> {
        self.ready_to_lead()?;
        let id = raft_id(name);
        if self.name_of(id).as_deref() != Some(name) {
            return Err(MembershipError::NotAVoter(name.to_owned()));
        }
        let voters = self.voter_names();
        let change = if voters.iter().any(|(voter, _)| *voter == id) {
            if voters.len() == 1 {
                return Err(MembershipError::LastVoter(name.to_owned()));
            }
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        };
        self.change(self.inner.raft.change_membership(change, false))
            .await?;
        info!(voter = %name, "removed from the Raft group");
        Ok(self.voters())
    }

    /// Waits until member `id` holds the log up to `target`; `Err` with how far behind it still
    /// is after `within`.
    async fn caught_up(&self, id: u64, target: u64, within: Duration) -> Result<(), u64> {
        let mut metrics = self.inner.raft.metrics();
        let matched = |metrics: &openraft::RaftMetrics<u64, Voter>| {
            metrics
                .replication
                .as_ref()
                .and_then(|r| r.get(&id).cloned().flatten())
                .map(|log_id| log_id.index)
        };
        let waited = tokio::time::timeout(within, async {
            loop {
                if matched(&metrics.borrow_and_update()).is_some_and(|m| m >= target) {
                    return true;
                }
                if metrics.changed().await.is_err() {
                    return false;
                }
            }
        })
        .await;
        match waited {
            Ok(true) => Ok(()),
            _ => Err(target.saturating_sub(matched(&metrics.borrow()).unwrap_or(0))),
        }
    }

    /// Awaits a membership change within four election timeouts; its log index once committed.
    async fn change(
        &self,
        change: impl std::future::Future<
            Output = Result<
                openraft::raft::ClientWriteResponse<TypeConfig>,
                RaftError<u64, ClientWriteError<u64, Voter>>,
            >,
        >,
    ) -> Result<u64, MembershipError> {
        let limit = self.inner.election_timeout * 4;
        match tokio::time::timeout(limit, change).await {
            Ok(Ok(response)) => Ok(response.log_id.index),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                Err(self.not_leader(f.leader_id).into())
            }
            Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e)))) => {
                Err(MembershipError::Refused(e.to_string()))
            }
            Ok(Err(RaftError::Fatal(e))) => Err(WriteError::Stopped(e.to_string()).into()),
            Err(_) => Err(WriteError::NoQuorum(format!(
                "the membership change was not committed by a majority within {limit:?}"
            ))
            .into()),
        }
    }

    /// Tells the gossip view of every change of the voters, so that its quorum counts them.
    pub(super) async fn follow_membership(self) {
        let mut metrics = self.inner.raft.metrics();
        let mut told: Option<Vec<String>> = None;
        loop {
            let mut names: Vec<String> = self
                .voter_names()
                .into_iter()
                .map(|(_, name)| name)
                .collect();
            names.sort();
            if !names.is_empty() && told.as_ref() != Some(&names) {
                self.inner.cluster.set_voters(names.clone()).await;
                told = Some(names);
            }
            if metrics.changed().await.is_err() {
                return;
            }
        }
    }
}
