//! Durable Raft storage in one redb database per voter: the log, the vote, the committed log
//! id, and the latest state-machine snapshot. Every write is a redb transaction committed with
//! immediate durability (fsync) before openraft is told it happened, so an acknowledged entry
//! or vote survives kill -9. The state machine itself lives in memory: on start it is rebuilt
//! from the stored snapshot, and openraft re-applies the committed entries after it.

use std::fmt::Debug;
use std::io::Cursor;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    AnyError, Entry, EntryPayload, LogId, OptionalSend, RaftLogReader, RaftSnapshotBuilder,
    SnapshotMeta, StorageError, StorageIOError, StoredMembership, Vote,
};
use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::state::{Applied, Registry};
use super::types::{TypeConfig, Voter};

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const PURGED: &str = "purged";
const SNAPSHOT: &str = "snapshot";

type NodeId = u64;
type StoreResult<T> = Result<T, StorageError<NodeId>>;

/// The registry as the state machine last applied it, for readers outside Raft.
#[derive(Clone, Debug, Default)]
pub struct Published {
    /// The registry.
    pub registry: Registry,
    /// Index of the last applied log entry.
    pub applied_index: Option<u64>,
}

fn any<E: std::error::Error + 'static>(e: E) -> AnyError {
    AnyError::new(&e)
}

/// Opens (or creates) the database under `dir` and makes sure both tables exist.
pub fn open(dir: &Path) -> Result<Arc<Database>, String> {
    std::fs::create_dir_all(dir).map_err(|e| {
        format!(
            "cannot create the Raft data directory {}: {e}",
            dir.display()
        )
    })?;
    let path = dir.join("raft.redb");
    let db = Database::create(&path)
        .map_err(|e| format!("cannot open the Raft store {}: {e}", path.display()))?;
    let init = || -> Result<(), AnyError> {
        let tx = db.begin_write().map_err(any)?;
        tx.open_table(LOG).map_err(any)?;
        tx.open_table(META).map_err(any)?;
        tx.commit().map_err(any)
    };
    init().map_err(|e| format!("cannot initialise the Raft store {}: {e}", path.display()))?;
    Ok(Arc::new(db))
}

fn read_meta<T: for<'de> Deserialize<'de>>(
    db: &Database,
    key: &str,
) -> Result<Option<T>, AnyError> {
    let tx = db.begin_read().map_err(any)?;
    let table = tx.open_table(META).map_err(any)?;
    let Some(value) = table.get(key).map_err(any)? else {
        return Ok(None);
    };
    serde_json::from_slice(value.value()).map(Some).map_err(any)
}

fn write_meta<T: Serialize>(db: &Database, key: &str, value: &T) -> Result<(), AnyError> {
    let bytes = serde_json::to_vec(value).map_err(any)?;
    let tx = db.begin_write().map_err(any)?;
    {
        let mut table = tx.open_table(META).map_err(any)?;
        table.insert(key, bytes.as_slice()).map_err(any)?;
    }
    tx.commit().map_err(any)
}

/// Runs blocking redb work off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, AnyError> + Send + 'static,
) -> Result<T, AnyError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| AnyError::error(e.to_string()))?
}

/// The log store: log entries, vote and committed id.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
}

impl LogStore {
    /// A log store over `db`.
    pub fn new(db: Arc<Database>) -> LogStore {
        LogStore { db }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StoreResult<Vec<Entry<TypeConfig>>> {
        let db = self.db.clone();
        let start = range.start_bound().cloned();
        let end = range.end_bound().cloned();
        blocking(move || {
            let tx = db.begin_read().map_err(any)?;
            let table = tx.open_table(LOG).map_err(any)?;
            let mut entries = Vec::new();
            for item in table.range::<u64>((start, end)).map_err(any)? {
                let (_, value) = item.map_err(any)?;
                entries.push(serde_json::from_slice(value.value()).map_err(any)?);
            }
            Ok(entries)
        })
        .await
        .map_err(|e| StorageIOError::read_logs(e).into())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> StoreResult<LogState<TypeConfig>> {
        let db = self.db.clone();
        blocking(move || {
            let purged: Option<LogId<NodeId>> = read_meta(&db, PURGED)?;
            let tx = db.begin_read().map_err(any)?;
            let table = tx.open_table(LOG).map_err(any)?;
            let last = match table.last().map_err(any)? {
                Some((_, value)) => {
                    let entry: Entry<TypeConfig> =
                        serde_json::from_slice(value.value()).map_err(any)?;
                    Some(entry.log_id)
                }
                None => purged,
            };
            Ok(LogState {
                last_purged_log_id: purged,
                last_log_id: last,
            })
        })
        .await
        .map_err(|e| StorageIOError::read_logs(e).into())
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StoreResult<()> {
        let db = self.db.clone();
        let vote = *vote;
        blocking(move || write_meta(&db, VOTE, &vote))
            .await
            .map_err(|e| StorageIOError::write_vote(e).into())
    }

    async fn read_vote(&mut self) -> StoreResult<Option<Vote<NodeId>>> {
        let db = self.db.clone();
        blocking(move || read_meta(&db, VOTE))
            .await
            .map_err(|e| StorageIOError::read_vote(e).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> StoreResult<()> {
        let db = self.db.clone();
        blocking(move || write_meta(&db, COMMITTED, &committed))
            .await
            .map_err(|e| StorageIOError::write(e).into())
    }

    async fn read_committed(&mut self) -> StoreResult<Option<LogId<NodeId>>> {
        let db = self.db.clone();
        blocking(move || Ok(read_meta::<Option<LogId<NodeId>>>(&db, COMMITTED)?.flatten()))
            .await
            .map_err(|e| StorageIOError::read(e).into())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StoreResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut rows = Vec::new();
        for entry in entries {
            let bytes =
                serde_json::to_vec(&entry).map_err(|e| StorageIOError::write_logs(any(e)))?;
            rows.push((entry.log_id.index, bytes));
        }
        let db = self.db.clone();
        let written = blocking(move || {
            let tx = db.begin_write().map_err(any)?;
            {
                let mut table = tx.open_table(LOG).map_err(any)?;
                for (index, bytes) in &rows {
                    table.insert(*index, bytes.as_slice()).map_err(any)?;
                }
            }
            tx.commit().map_err(any)
        })
        .await;
        match written {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(StorageIOError::write_logs(e).into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> StoreResult<()> {
        let db = self.db.clone();
        blocking(move || remove_logs(&db, log_id.index.., None))
            .await
            .map_err(|e| StorageIOError::write_logs(e).into())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> StoreResult<()> {
        let db = self.db.clone();
        blocking(move || remove_logs(&db, ..=log_id.index, Some(log_id)))
            .await
            .map_err(|e| StorageIOError::write_logs(e).into())
    }
}

/// Removes the entries in `range`, recording `purged` in the same transaction when given.
fn remove_logs(
    db: &Database,
    range: impl RangeBounds<u64>,
    purged: Option<LogId<NodeId>>,
) -> Result<(), AnyError> {
    let tx = db.begin_write().map_err(any)?;
    {
        let mut table = tx.open_table(LOG).map_err(any)?;
        table.retain_in(range, |_, _| false).map_err(any)?;
        if let Some(purged) = purged {
            let bytes = serde_json::to_vec(&purged).map_err(any)?;
            let mut meta = tx.open_table(META).map_err(any)?;
            meta.insert(PURGED, bytes.as_slice()).map_err(any)?;
        }
    }
    tx.commit().map_err(any)
}

/// A snapshot as stored and shipped: its metadata and the registry.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, Voter>,
    registry: Registry,
}

/// The state machine: the registry in memory, its snapshot on disk.
pub struct StateMachine {
    db: Arc<Database>,
    registry: Registry,
    last_applied: Option<LogId<NodeId>>,
    last_membership: StoredMembership<NodeId, Voter>,
    published: Arc<watch::Sender<Arc<Published>>>,
}

impl StateMachine {
    /// The state machine over `db`, starting from the stored snapshot if there is one.
    pub fn load(
        db: Arc<Database>,
        published: Arc<watch::Sender<Arc<Published>>>,
    ) -> Result<StateMachine, String> {
        let stored: Option<StoredSnapshot> = read_meta(&db, SNAPSHOT)
            .map_err(|e| format!("cannot read the stored Raft snapshot: {e}"))?;
        let mut machine = StateMachine {
            db,
            registry: Registry::default(),
            last_applied: None,
            last_membership: StoredMembership::default(),
            published,
        };
        if let Some(stored) = stored {
            machine.registry = stored.registry;
            machine.last_applied = stored.meta.last_log_id;
            machine.last_membership = stored.meta.last_membership;
        }
        machine.publish();
        Ok(machine)
    }

    fn publish(&self) {
        self.published.send_replace(Arc::new(Published {
            registry: self.registry.clone(),
            applied_index: self.last_applied.map(|id| id.index),
        }));
    }

    fn meta(&self) -> SnapshotMeta<NodeId, Voter> {
        SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.last_membership.clone(),
            snapshot_id: format!(
                "{}-{}",
                self.last_applied.map(|id| id.leader_id.term).unwrap_or(0),
                self.last_applied.map(|id| id.index).unwrap_or(0)
            ),
        }
    }
}

/// Builds snapshots from a copy of the registry taken when asked.
pub struct SnapshotBuilder {
    db: Arc<Database>,
    meta: SnapshotMeta<NodeId, Voter>,
    registry: Registry,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> StoreResult<Snapshot<TypeConfig>> {
        let stored = StoredSnapshot {
            meta: self.meta.clone(),
            registry: self.registry.clone(),
        };
        let data = serde_json::to_vec(&stored.registry)
            .map_err(|e| StorageIOError::write_snapshot(None, any(e)))?;
        let db = self.db.clone();
        blocking(move || write_meta(&db, SNAPSHOT, &stored))
            .await
            .map_err(|e| StorageIOError::write_snapshot(None, e))?;
        Ok(Snapshot {
            meta: self.meta.clone(),
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> StoreResult<(Option<LogId<NodeId>>, StoredMembership<NodeId, Voter>)> {
        Ok((self.last_applied, self.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> StoreResult<Vec<Applied>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut out = Vec::new();
        for entry in entries {
            self.last_applied = Some(entry.log_id);
            out.push(match entry.payload {
                EntryPayload::Blank => Applied::default(),
                EntryPayload::Normal(command) => self.registry.apply(entry.log_id.index, &command),
                EntryPayload::Membership(membership) => {
                    self.last_membership = StoredMembership::new(Some(entry.log_id), membership);
                    Applied::default()
                }
            });
        }
        self.publish();
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        let meta = self.meta();
        SnapshotBuilder {
            db: self.db.clone(),
            meta,
            registry: self.registry.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> StoreResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Voter>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StoreResult<()> {
        let registry: Registry = serde_json::from_slice(snapshot.get_ref())
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), any(e)))?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            registry: registry.clone(),
        };
        let db = self.db.clone();
        blocking(move || write_meta(&db, SNAPSHOT, &stored))
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), e))?;
        self.registry = registry;
        self.last_applied = meta.last_log_id;
        self.last_membership = meta.last_membership.clone();
        self.publish();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StoreResult<Option<Snapshot<TypeConfig>>> {
        let db = self.db.clone();
        let stored: Option<StoredSnapshot> = blocking(move || read_meta(&db, SNAPSHOT))
            .await
            .map_err(|e| StorageIOError::read_snapshot(None, e))?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        let data = serde_json::to_vec(&stored.registry)
            .map_err(|e| StorageIOError::read_snapshot(None, any(e)))?;
        Ok(Some(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}
