//! The backup file of a registry (`vigil snapshot save|restore|inspect`): a point-in-time copy
//! of everything the Raft log built — instances and their health, node reports, maintenance,
//! sessions, elections and locks — with the log index it was read at and a SHA-256 of its
//! content, so that a file cut short or changed is refused before anything is restored.
//!
//! Layout: one line of JSON (the [`Header`]), a newline, then exactly `length` bytes of the
//! registry's JSON, whose SHA-256 is `sha256`. Nothing follows.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::state::Registry;

/// What the header's `format` says.
const FORMAT: &str = "vigil-snapshot";
/// The layout this build writes and reads.
const VERSION: u32 = 1;
/// Most bytes of a header line read before giving up on a file that has none.
const MAX_HEADER: usize = 4096;

/// The first line of a backup file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Always `vigil-snapshot`.
    pub format: String,
    /// The layout's version.
    pub version: u32,
    /// The Raft log index the registry was read at.
    pub index: u64,
    /// When it was read, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// Bytes of the registry's JSON after the header line.
    pub length: usize,
    /// SHA-256 of those bytes, hex.
    pub sha256: String,
}

/// A registry read at a log index, as a backup file holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backup {
    /// The Raft log index the registry was read at.
    pub index: u64,
    /// When it was read, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// The registry.
    pub registry: Registry,
}

/// Why bytes are not a backup that can be restored.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// No header line, or one that is not a vigil snapshot's.
    #[error("not a vigil snapshot: {0}")]
    NotASnapshot(String),
    /// A layout this build does not read.
    #[error("snapshot format version {0}; this vigil reads version {VERSION}")]
    Version(u32),
    /// Fewer or more bytes than the header announces.
    #[error("the snapshot is {got} bytes after its header, its header says {expected}: the file was cut short or added to")]
    Length {
        /// What the header says.
        expected: usize,
        /// What is there.
        got: usize,
    },
    /// The content is not what was saved.
    #[error("the snapshot's SHA-256 is {got}, its header says {expected}: the file was changed or damaged")]
    Checksum {
        /// What the header says.
        expected: String,
        /// What the content hashes to.
        got: String,
    },
    /// The content hashes right but does not read as a registry (written by another build?).
    #[error("the snapshot's registry does not read: {0}")]
    Registry(String),
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Backup {
    /// The file's bytes.
    pub fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        let body = serde_json::to_vec(&self.registry)?;
        let header = Header {
            format: FORMAT.to_owned(),
            version: VERSION,
            index: self.index,
            created_ms: self.created_ms,
            length: body.len(),
            sha256: hex(&Sha256::digest(&body)),
        };
        let mut out = serde_json::to_vec(&header)?;
        out.push(b'\n');
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Reads a file's bytes, checking its header, length and checksum before its content.
    pub fn decode(bytes: &[u8]) -> Result<(Header, Backup), BackupError> {
        let line_end = bytes
            .iter()
            .take(MAX_HEADER)
            .position(|b| *b == b'\n')
            .ok_or_else(|| BackupError::NotASnapshot("no header line".to_owned()))?;
        let header: Header = serde_json::from_slice(&bytes[..line_end])
            .map_err(|e| BackupError::NotASnapshot(format!("its header does not read: {e}")))?;
        if header.format != FORMAT {
            return Err(BackupError::NotASnapshot(format!(
                "its format is {:?}",
                header.format
            )));
        }
        if header.version != VERSION {
            return Err(BackupError::Version(header.version));
        }
        let body = &bytes[line_end + 1..];
        if body.len() != header.length {
            return Err(BackupError::Length {
                expected: header.length,
                got: body.len(),
            });
        }
        let sha256 = hex(&Sha256::digest(body));
        if sha256 != header.sha256 {
            return Err(BackupError::Checksum {
                expected: header.sha256,
                got: sha256,
            });
        }
        let registry: Registry =
            serde_json::from_slice(body).map_err(|e| BackupError::Registry(e.to_string()))?;
        let backup = Backup {
            index: header.index,
            created_ms: header.created_ms,
            registry,
        };
        Ok((header, backup))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::{Command, ServiceInstance};

    fn backup() -> Backup {
        let mut registry = Registry::default();
        registry.apply(
            1,
            &Command::Register(ServiceInstance {
                name: "api".into(),
                id: "a1".into(),
                address: "10.0.0.1".into(),
                port: 80,
                tags: vec![],
                node: "n1".into(),
                ephemeral: false,
                checks: Default::default(),
                deregister_critical_after_ms: None,
            }),
        );
        Backup {
            index: 7,
            created_ms: 1_700_000_000_000,
            registry,
        }
    }

    #[test]
    fn a_backup_reads_back_as_written() {
        let written = backup();
        let bytes = written.encode().unwrap();
        let (header, read) = Backup::decode(&bytes).unwrap();
        assert_eq!(read, written);
        assert_eq!(header.index, 7);
    }

    #[test]
    fn a_cut_changed_or_foreign_file_is_refused_saying_why() {
        let bytes = backup().encode().unwrap();
        let cut = &bytes[..bytes.len() - 10];
        assert!(matches!(
            Backup::decode(cut),
            Err(BackupError::Length { .. })
        ));
        let mut changed = bytes.clone();
        let last = changed.len() - 3;
        changed[last] ^= 0x01;
        let error = Backup::decode(&changed).unwrap_err();
        assert!(matches!(error, BackupError::Checksum { .. }), "{error}");
        assert!(error.to_string().contains("changed or damaged"));
        assert!(matches!(
            Backup::decode(b"{\"kind\": \"something else\"}\n{}"),
            Err(BackupError::NotASnapshot(_))
        ));
        assert!(matches!(
            Backup::decode(&[0u8; 100]),
            Err(BackupError::NotASnapshot(_))
        ));
        let newer =
            String::from_utf8(bytes.clone())
                .unwrap()
                .replacen("\"version\":1", "\"version\":9", 1);
        assert!(matches!(
            Backup::decode(newer.as_bytes()),
            Err(BackupError::Version(9))
        ));
    }
}
