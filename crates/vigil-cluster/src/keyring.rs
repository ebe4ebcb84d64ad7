//! Key rotation on a running node, and the key file that makes the keyring survive restarts.
//!
//! The key file holds one standard-base64 key per line, primary first; blank lines and lines
//! starting with `#` are ignored. It is replaced atomically (written to a temporary file beside
//! it, synced, then renamed over it) with mode 0600, so a crash never leaves a half-written
//! keyring and other local users cannot read the keys.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use vigil_gossip::crypto::{Key, Keyring, KeyringError};

use crate::error::ClusterError;

/// A keyring operation on the running node, the steps of a rotation without downtime:
/// `Install` the new key on every node, `Use` it on every node, then `Remove` the old one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyringOp {
    /// Lists the installed keys.
    List,
    /// Installs a key: it is accepted for decryption from now on. Installing a key twice is not
    /// an error.
    Install(Key),
    /// Makes an installed key the primary: outgoing frames are encrypted with it. The old primary
    /// stays installed.
    Use(Key),
    /// Removes an installed key that is not the primary.
    Remove(Key),
}

/// One installed key, as `vigil keyring list` shows it: never the key itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    /// The key's fingerprint ([`Key::fingerprint`]).
    pub fingerprint: String,
    /// Whether this key encrypts outgoing frames.
    pub primary: bool,
}

/// Applies `op` to `ring`; whether the keyring changed.
pub(crate) fn apply(ring: &mut Keyring, op: KeyringOp) -> Result<bool, KeyringError> {
    match op {
        KeyringOp::List => Ok(false),
        KeyringOp::Install(key) => Ok(ring.install(key)),
        KeyringOp::Use(key) => {
            let changed = *ring.primary() != key;
            ring.use_key(&key)?;
            Ok(changed)
        }
        KeyringOp::Remove(key) => ring.remove(&key).map(|()| true),
    }
}

/// The installed keys, primary first.
pub(crate) fn infos(ring: &Keyring) -> Vec<KeyInfo> {
    ring.keys()
        .enumerate()
        .map(|(i, key)| KeyInfo {
            fingerprint: key.fingerprint(),
            primary: i == 0,
        })
        .collect()
}

/// Reads a key file: one base64 key per line, primary first (blank lines and `#` comments
/// ignored). Errors name the file and the line.
pub fn load_key_file(path: &Path) -> Result<Keyring, ClusterError> {
    let file_error = |source: io::Error| ClusterError::KeyFile {
        path: path.to_owned(),
        source,
    };
    let text = fs::read_to_string(path).map_err(file_error)?;
    let mut ring: Option<Keyring> = None;
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = Key::parse(line).map_err(|e| {
            file_error(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("line {}: {e}", number + 1),
            ))
        })?;
        match ring.as_mut() {
            None => ring = Some(Keyring::new(key)),
            Some(ring) => {
                ring.install(key);
            }
        }
    }
    ring.ok_or_else(|| {
        file_error(io::Error::new(
            io::ErrorKind::InvalidData,
            "no key in the file (expected one base64 key per line, primary first)",
        ))
    })
}

/// Writes `ring` to `path` atomically with mode 0600: one base64 key per line, primary first.
pub fn write_key_file(path: &Path, ring: &Keyring) -> Result<(), ClusterError> {
    write_atomically(path, ring).map_err(|source| ClusterError::KeyFile {
        path: path.to_owned(),
        source,
    })
}

fn write_atomically(path: &Path, ring: &Keyring) -> io::Result<()> {
    let mut text = String::new();
    for key in ring.keys() {
        text.push_str(&key.to_base64());
        text.push('\n');
    }
    let temp = temp_path(path)?;
    // A leftover from a crashed write may have other permissions; start afresh.
    match fs::remove_file(&temp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = (|| {
        let mut file = options.open(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written?;
    // Make the rename itself durable; best effort, as some file systems refuse to sync a
    // directory.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(dir) = fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

/// `.<name>.tmp` beside `path`, on the same file system so the rename is atomic.
fn temp_path(path: &Path) -> io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the key file path names no file",
        )
    })?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(".tmp");
    Ok(path.with_file_name(temp_name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> Key {
        Key::from_bytes([byte; 32])
    }

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vigil-cluster-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create scratch dir");
        dir
    }

    #[test]
    fn operations_follow_a_rotation() {
        let mut ring = Keyring::new(key(1));
        assert_eq!(apply(&mut ring, KeyringOp::Install(key(2))), Ok(true));
        assert_eq!(apply(&mut ring, KeyringOp::Install(key(2))), Ok(false));
        assert_eq!(apply(&mut ring, KeyringOp::Remove(key(2))), Ok(true));
        assert_eq!(
            apply(&mut ring, KeyringOp::Use(key(2))),
            Err(KeyringError::NotInstalled)
        );
        assert_eq!(apply(&mut ring, KeyringOp::Install(key(2))), Ok(true));
        assert_eq!(apply(&mut ring, KeyringOp::Use(key(2))), Ok(true));
        assert_eq!(apply(&mut ring, KeyringOp::Use(key(2))), Ok(false));
        assert_eq!(
            apply(&mut ring, KeyringOp::Remove(key(2))),
            Err(KeyringError::IsPrimary)
        );
        let listed = infos(&ring);
        assert_eq!(listed.len(), 2);
        assert_eq!(
            listed[0],
            KeyInfo {
                fingerprint: key(2).fingerprint(),
                primary: true
            }
        );
        assert_eq!(
            listed[1],
            KeyInfo {
                fingerprint: key(1).fingerprint(),
                primary: false
            }
        );
        assert_eq!(apply(&mut ring, KeyringOp::Remove(key(1))), Ok(true));
        assert_eq!(infos(&ring).len(), 1);
    }

    #[test]
    fn key_file_round_trips_primary_first_with_private_mode() {
        let dir = scratch_dir("keyfile");
        let path = dir.join("keyring");
        let mut ring = Keyring::new(key(7));
        ring.install(key(8));
        write_key_file(&path, &ring).expect("write");
        let text = fs::read_to_string(&path).expect("read");
        assert_eq!(
            text,
            format!("{}\n{}\n", key(7).to_base64(), key(8).to_base64())
        );
        assert_eq!(load_key_file(&path).expect("load"), ring);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).expect("metadata").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Overwriting replaces the whole file and leaves no temporary file behind.
        write_key_file(&path, &Keyring::new(key(8))).expect("rewrite");
        assert_eq!(load_key_file(&path).expect("load"), Keyring::new(key(8)));
        assert_eq!(fs::read_dir(&dir).expect("list").count(), 1);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn key_file_errors_name_file_and_line() {
        let dir = scratch_dir("badkeyfile");
        let path = dir.join("keyring");
        fs::write(
            &path,
            format!("# rotated 2026-11\n{}\nnot-a-key\n", key(1).to_base64()),
        )
        .expect("write");
        let err = load_key_file(&path).expect_err("bad line").to_string();
        assert!(err.contains("keyring") && err.contains("line 3"), "{err}");
        fs::write(&path, "\n# nothing\n").expect("write");
        let err = load_key_file(&path).expect_err("empty").to_string();
        assert!(err.contains("no key"), "{err}");
        let _ = fs::remove_dir_all(&dir);
    }
}
