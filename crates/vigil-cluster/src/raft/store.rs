//! Durable Raft storage in one redb database per voter: the log, the vote, the committed log
//! id, and which file of the data directory holds the latest state-machine snapshot. Every
//! write is a redb transaction committed with immediate durability (fsync) before openraft is
//! told it happened, so an acknowledged entry or vote survives kill -9. The state machine
//! itself lives in memory: on start it is rebuilt from the stored snapshot, and openraft
//! re-applies the committed entries after it.

use std::fmt::Debug;
use std::io::{BufReader, BufWriter, SeekFrom};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    AnyError, Entry, EntryPayload, LogId, OptionalSend, RaftLogReader, RaftSnapshotBuilder,
    SnapshotMeta, StorageError, StorageIOError, StoredMembership, Vote,
};
use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio::sync::watch;

use super::state::{Applied, Registry};
use super::types::{TypeConfig, Voter};

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const PURGED: &str = "purged";
/// Where the latest snapshot's metadata and file name are kept. The registry's JSON lives in a
/// file beside the database: it is serialized once and its bytes go to disk and to followers as
/// they are, and a blob of megabytes would churn redb's pages and cache on every snapshot.
const SNAPSHOT_RECORD: &str = "snapshot-record";
/// Where earlier builds kept the snapshot, metadata and registry in one JSON document.
const LEGACY_SNAPSHOT: &str = "snapshot";
/// How snapshot files are named: `snapshot-TERM-INDEX.json`.
const SNAPSHOT_PREFIX: &str = "snapshot-";
/// The file a snapshot is written to while this voter builds it (named apart from
/// [`SNAPSHOT_PREFIX`], so that making another snapshot the stored one never removes it).
const BUILDING: &str = "building.snapshot.partial";
/// The file a snapshot is written to while it arrives from the leader.
const RECEIVING: &str = "receiving.snapshot.partial";
/// Bytes of redb's page cache. Its default (1 GiB) lets the cache grow with the log, which is
/// read back only by replication, and then mostly the entries just written.
const CACHE_BYTES: usize = 4 << 20;

type NodeId = u64;
type StoreResult<T> = Result<T, StorageError<NodeId>>;
type Meta = SnapshotMeta<NodeId, Voter>;

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
    let db = Database::builder()
        .set_cache_size(CACHE_BYTES)
        .create(&path)
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

/// A snapshot as earlier builds stored it: its metadata and the registry in one document.
#[derive(Deserialize)]
struct LegacySnapshot {
    meta: Meta,
    registry: Registry,
}

/// What the database says of the latest snapshot.
#[derive(Serialize, Deserialize)]
struct SnapshotRecord {
    meta: Meta,
    /// The file in the data directory that holds the registry.
    file: String,
}

/// Snapshots on disk: each one's registry in a file of the data directory, and which file is
/// the latest in the database. A new file is complete and synced before the database names it,
/// and older files go only after, so a crash at any point leaves the last committed snapshot.
///
/// A snapshot's JSON is streamed between the registry and its file, never held whole in memory:
/// at ten thousand instances it is megabytes, and every multi-megabyte buffer freed raises
/// glibc's threshold for serving allocations from fresh mappings, after which such buffers are
/// carved out of the heap and leave it fragmented for good.
#[derive(Clone)]
pub struct SnapshotStore {
    db: Arc<Database>,
    dir: PathBuf,
}

impl SnapshotStore {
    /// Snapshots in `db` and the data directory `dir`.
    pub fn new(db: Arc<Database>, dir: &Path) -> SnapshotStore {
        SnapshotStore {
            db,
            dir: dir.to_owned(),
        }
    }

    /// The latest snapshot's metadata and file, if there is one. A snapshot an earlier build
    /// kept inside the database is moved to a file first.
    fn latest(&self) -> Result<Option<(Meta, PathBuf)>, AnyError> {
        if let Some(record) = read_meta::<SnapshotRecord>(&self.db, SNAPSHOT_RECORD)? {
            let path = self.dir.join(&record.file);
            return Ok(Some((record.meta, path)));
        }
        let Some(legacy) = read_meta::<LegacySnapshot>(&self.db, LEGACY_SNAPSHOT)? else {
            return Ok(None);
        };
        let path = self.write(&legacy.meta, &legacy.registry)?;
        Ok(Some((legacy.meta, path)))
    }

    /// Reads the registry of the snapshot in `path`.
    fn read_registry(path: &Path) -> Result<Registry, AnyError> {
        let file = std::fs::File::open(path).map_err(|e| {
            AnyError::error(format!("cannot read snapshot {}: {e}", path.display()))
        })?;
        serde_json::from_reader(BufReader::new(file))
            .map_err(|e| AnyError::error(format!("cannot read snapshot {}: {e}", path.display())))
    }

    /// Writes `registry` as the snapshot `meta` names and makes it the stored one; returns its
    /// file.
    fn write(&self, meta: &Meta, registry: &Registry) -> Result<PathBuf, AnyError> {
        let partial = self.dir.join(BUILDING);
        let write_file = || -> std::io::Result<()> {
            let mut out = BufWriter::new(std::fs::File::create(&partial)?);
            serde_json::to_writer(&mut out, registry)?;
            out.into_inner().map_err(|e| e.into_error())?.sync_all()
        };
        write_file().map_err(|e| {
            AnyError::error(format!("cannot write snapshot {}: {e}", partial.display()))
        })?;
        self.adopt(meta, &partial)
    }

    /// Makes the complete, synced snapshot file `partial` the stored snapshot `meta` names;
    /// returns its new path.
    fn adopt(&self, meta: &Meta, partial: &Path) -> Result<PathBuf, AnyError> {
        // Named from numbers only: a snapshot id can come from another voter.
        let (term, index) = meta
            .last_log_id
            .map_or((0, 0), |id| (id.leader_id.term, id.index));
        let file = format!("{SNAPSHOT_PREFIX}{term}-{index}.json");
        let path = self.dir.join(&file);
        let move_file = || -> std::io::Result<()> {
            std::fs::rename(partial, &path)?;
            std::fs::File::open(&self.dir)?.sync_all()
        };
        move_file().map_err(|e| {
            AnyError::error(format!("cannot write snapshot {}: {e}", path.display()))
        })?;
        let record = serde_json::to_vec(&SnapshotRecord {
            meta: meta.clone(),
            file: file.clone(),
        })
        .map_err(any)?;
        let tx = self.db.begin_write().map_err(any)?;
        {
            let mut table = tx.open_table(META).map_err(any)?;
            table
                .insert(SNAPSHOT_RECORD, record.as_slice())
                .map_err(any)?;
            table.remove(LEGACY_SNAPSHOT).map_err(any)?;
        }
        tx.commit().map_err(any)?;
        self.remove_all_but(&file);
        Ok(path)
    }

    /// Removes snapshot files other than `keep`; one left behind is only disk space.
    fn remove_all_but(&self, keep: &str) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                continue;
            };
            if name.starts_with(SNAPSHOT_PREFIX) && name != keep {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Opens `path` for openraft to read a snapshot from.
async fn open_snapshot(path: &Path) -> Result<tokio::fs::File, AnyError> {
    tokio::fs::File::open(path)
        .await
        .map_err(|e| AnyError::error(format!("cannot read snapshot {}: {e}", path.display())))
}

/// The state machine: the registry in memory, its snapshot on disk.
pub struct StateMachine {
    snapshots: SnapshotStore,
    registry: Registry,
    last_applied: Option<LogId<NodeId>>,
    last_membership: StoredMembership<NodeId, Voter>,
    published: Arc<watch::Sender<Arc<Published>>>,
}

impl StateMachine {
    /// The state machine over `db`, starting from the stored snapshot if there is one.
    pub fn load(
        snapshots: SnapshotStore,
        published: Arc<watch::Sender<Arc<Published>>>,
    ) -> Result<StateMachine, String> {
        let latest = snapshots
            .latest()
            .map_err(|e| format!("cannot read the stored Raft snapshot: {e}"))?;
        let mut machine = StateMachine {
            snapshots,
            registry: Registry::default(),
            last_applied: None,
            last_membership: StoredMembership::default(),
            published,
        };
        if let Some((meta, path)) = latest {
            machine.registry = SnapshotStore::read_registry(&path)
                .map_err(|e| format!("cannot read the stored Raft snapshot: {e}"))?;
            machine.last_applied = meta.last_log_id;
            machine.last_membership = meta.last_membership;
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

    fn meta(&self) -> Meta {
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
    snapshots: SnapshotStore,
    meta: Meta,
    registry: Registry,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> StoreResult<Snapshot<TypeConfig>> {
        let snapshots = self.snapshots.clone();
        let meta = self.meta.clone();
        let registry = self.registry.clone();
        let path = blocking(move || snapshots.write(&meta, &registry))
            .await
            .map_err(|e| StorageIOError::write_snapshot(None, e))?;
        let file = open_snapshot(&path)
            .await
            .map_err(|e| StorageIOError::read_snapshot(None, e))?;
        Ok(Snapshot {
            meta: self.meta.clone(),
            snapshot: Box::new(file),
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
            snapshots: self.snapshots.clone(),
            meta,
            registry: self.registry.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> StoreResult<Box<tokio::fs::File>> {
        let path = self.snapshots.dir.join(RECEIVING);
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .await
            .map_err(|e| {
                StorageIOError::write_snapshot(
                    None,
                    AnyError::error(format!("cannot write snapshot {}: {e}", path.display())),
                )
            })?;
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        mut snapshot: Box<tokio::fs::File>,
    ) -> StoreResult<()> {
        let failed = |e: std::io::Error| {
            StorageIOError::write_snapshot(Some(meta.signature()), AnyError::new(&e))
        };
        snapshot.flush().await.map_err(failed)?;
        snapshot.seek(SeekFrom::Start(0)).await.map_err(failed)?;
        let file = snapshot.into_std().await;
        let snapshots = self.snapshots.clone();
        let stored_meta = meta.clone();
        let registry = blocking(move || {
            let registry: Registry = serde_json::from_reader(BufReader::new(&file)).map_err(any)?;
            file.sync_all().map_err(any)?;
            snapshots.adopt(&stored_meta, &snapshots.dir.join(RECEIVING))?;
            Ok(registry)
        })
        .await
        .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), e))?;
        self.registry = registry;
        self.last_applied = meta.last_log_id;
        self.last_membership = meta.last_membership.clone();
        self.publish();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StoreResult<Option<Snapshot<TypeConfig>>> {
        let snapshots = self.snapshots.clone();
        let latest = blocking(move || snapshots.latest())
            .await
            .map_err(|e| StorageIOError::read_snapshot(None, e))?;
        let Some((meta, path)) = latest else {
            return Ok(None);
        };
        let file = open_snapshot(&path)
            .await
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), e))?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(file),
        }))
    }
}
