//! Large shared bodies kept a second time in a sealed in-memory file, so that the direct lane
//! sends them with `sendfile` instead of copying them into the socket for every request.
//!
//! `/metrics` of a node with many checks is tens of kilobytes to megabytes, the same bytes for
//! every scrape of one snapshot. Written with `writev`, the kernel copies all of them into socket
//! buffers per request; nginx serves a static file with `sendfile`, which hands the socket
//! references to the file's pages instead. A [`Mirror`] gives vigil the same: the body is written
//! once per snapshot into a `memfd` sealed against any change (so no request can ever see it
//! half-written or altered), and a response carries the mirror as an extension naming the body
//! chunk it holds. Only the lane looks at it; hyper's path sends the chunk as usual.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use rustix::fs::{MemfdFlags, SealFlags};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Bodies below this are copied: two system calls cost more than the copy they save.
pub(crate) const MIN_MIRRORED: usize = 32 * 1024;
/// Bodies above this are copied: the file doubles the memory a body takes, and a text this large
/// (`/metrics` of thousands of checks) is scraped too rarely for the copy to matter.
const MAX_MIRRORED: usize = 1024 * 1024;

/// A body's bytes in a sealed in-memory file.
pub(crate) struct SealedFile {
    fd: OwnedFd,
    /// The bytes it holds: what it mirrors is told by their address and length.
    bytes: Bytes,
}

impl SealedFile {
    fn new(bytes: &Bytes) -> io::Result<Self> {
        let fd = rustix::fs::memfd_create(
            "vigil-body",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )?;
        let mut written = 0;
        while written < bytes.len() {
            let n = rustix::io::write(&fd, &bytes[written..])?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            written += n;
        }
        rustix::fs::fcntl_add_seals(
            &fd,
            SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE | SealFlags::SEAL,
        )?;
        Ok(SealedFile {
            fd,
            bytes: bytes.clone(),
        })
    }

    fn mirrors(&self, bytes: &Bytes) -> bool {
        self.bytes.as_ptr() == bytes.as_ptr() && self.bytes.len() == bytes.len()
    }
}

/// A response extension: chunk `chunk` of the body is also in `file`.
#[derive(Clone)]
pub(crate) struct Mirror {
    pub(crate) chunk: usize,
    pub(crate) file: Arc<SealedFile>,
}

impl Mirror {
    /// Whether this mirror holds exactly `chunk`.
    pub(super) fn holds(&self, chunk: &Bytes) -> bool {
        self.file.bytes.len() == chunk.len()
    }
}

/// The file of the body last mirrored, made again when the body changes.
#[derive(Default)]
pub(crate) struct Mirrors {
    last: ArcSwapOption<SealedFile>,
}

impl Mirrors {
    /// A file holding `bytes`: the one made before if it holds the same allocation, else a new
    /// one; `None` for a body outside the sizes worth mirroring, or when the file cannot be made
    /// (the body is then copied as any other).
    pub(crate) fn of(&self, bytes: &Bytes) -> Option<Arc<SealedFile>> {
        if !(MIN_MIRRORED..=MAX_MIRRORED).contains(&bytes.len()) {
            return None;
        }
        if let Some(file) = self.last.load_full().filter(|file| file.mirrors(bytes)) {
            return Some(file);
        }
        let file = Arc::new(SealedFile::new(bytes).ok()?);
        self.last.store(Some(file.clone()));
        Some(file)
    }
}

/// Sends `slices` with `MSG_MORE`, so that the kernel holds them for what follows.
pub(super) async fn send_more(
    stream: &TcpStream,
    mut slices: &mut [io::IoSlice<'_>],
) -> io::Result<()> {
    while !slices.is_empty() {
        let sent = io_when_writable(stream, || {
            rustix::net::sendmsg(
                stream,
                slices,
                &mut rustix::net::SendAncillaryBuffer::default(),
                rustix::net::SendFlags::MORE | rustix::net::SendFlags::NOSIGNAL,
            )
        })
        .await?;
        if sent == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        io::IoSlice::advance_slices(&mut slices, sent);
    }
    Ok(())
}

/// Sends the whole of `file` with `sendfile`.
pub(super) async fn send_file(stream: &TcpStream, file: &SealedFile) -> io::Result<()> {
    let total = u64::try_from(file.bytes.len()).unwrap_or(u64::MAX);
    let mut offset = 0u64;
    while offset < total {
        let left = usize::try_from(total - offset).unwrap_or(usize::MAX);
        let sent = io_when_writable(stream, || {
            rustix::fs::sendfile(stream, &file.fd, Some(&mut offset), left)
        })
        .await?;
        if sent == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
    }
    Ok(())
}

/// Runs `op` on the socket once it is writable, again while it would block.
async fn io_when_writable(
    stream: &TcpStream,
    mut op: impl FnMut() -> rustix::io::Result<usize>,
) -> io::Result<usize> {
    loop {
        stream.writable().await?;
        match stream.try_io(Interest::WRITABLE, || op().map_err(io::Error::from)) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            done => return done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_mirrored_once_and_sealed() {
        let mirrors = Mirrors::default();
        let body = Bytes::from(vec![b'x'; MIN_MIRRORED]);
        let first = mirrors.of(&body).expect("mirrored");
        let again = mirrors.of(&body.clone()).expect("mirrored");
        assert!(Arc::ptr_eq(&first, &again), "the same body, the same file");
        assert!(rustix::io::write(&first.fd, b"y").is_err(), "sealed");
        let other = Bytes::from(vec![b'z'; MIN_MIRRORED]);
        assert!(!Arc::ptr_eq(&mirrors.of(&other).expect("mirrored"), &first));
        assert!(mirrors.of(&Bytes::from_static(b"small")).is_none());
    }
}
