//! Handing back the pages of the binary the agent used only while it started.
//!
//! Starting parses the command line and the config, sets up the runtime, TLS, the database and
//! every listener: megabytes of code and read-only data spread through the binary that an idle
//! agent does not touch again. The kernel keeps a running executable's pages mapped, and shields
//! mapped executable pages from reclaim ahead of other file pages, so without help they stay in
//! the agent's resident memory for as long as it runs (bench/README.md, "Footprint").
//!
//! Once the agent has settled, [`hand_back_when_settled`] asks the kernel to reclaim the binary's
//! own never-written pages (`MADV_PAGEOUT`) and unmaps those it keeps because another process
//! maps them too (`MADV_DONTNEED`: a second agent on the host). They leave the agent's resident
//! memory; the page cache may keep them, but unmapped they are among the first pages to go when
//! the host needs memory. What the agent runs again is mapped back at its next use (a minor fault
//! while the page is cached). Pages the agent wrote (relocated data) are not asked for at all.

#![allow(unsafe_code)]

use std::io;
use std::ops::Range;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

/// How long after start the agent hands its start-up pages back: its listeners, first check runs
/// and first gossip exchanges are done well within it.
const SETTLE: Duration = Duration::from_secs(10);

/// Hands the start-up pages back once the agent has run for [`SETTLE`].
pub fn hand_back_when_settled() {
    tokio::spawn(async {
        tokio::time::sleep(SETTLE).await;
        let handed_back = tokio::task::spawn_blocking(hand_back)
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e)));
        match handed_back {
            Ok(bytes) => tracing::debug!(bytes, "start-up pages of the binary handed back"),
            Err(e) => tracing::debug!(error = %e, "start-up pages of the binary kept"),
        }
    });
}

/// Asks the kernel to reclaim every never-written page the executable maps, and unmaps what it
/// keeps; returns the bytes of the ranges it asked for.
fn hand_back() -> io::Result<usize> {
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    let exe = std::fs::read_link("/proc/self/exe")?;
    let inode = std::fs::metadata("/proc/self/exe")?.ino();
    let mut bytes = 0usize;
    for range in unwritten_ranges_of(&smaps, &exe.to_string_lossy(), inode) {
        let len = range.end - range.start;
        // Reclaim frees what only this process maps; it skips pages another agent on the host
        // maps too, and those are unmapped from this one, so they stop counting here and are
        // no longer held by this agent when the kernel looks for memory to reclaim.
        for advice in [libc::MADV_PAGEOUT, libc::MADV_DONTNEED] {
            // SAFETY: every range is a private, non-writable mapping of our own executable with
            // no page ever written to it (no anonymous page, and none can appear: nothing may
            // write to it), so both advices only drop mappings of pages that the next access
            // reads again from the file, byte for byte what was there (the kernel refuses writes
            // to an executable while it runs, ETXTBSY). Neither reads or writes memory itself.
            let done = unsafe { libc::madvise(range.start as *mut libc::c_void, len, advice) };
            if done != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        bytes = bytes.saturating_add(len);
    }
    Ok(bytes)
}

/// The address ranges in `smaps` (the text of `/proc/self/smaps`) that map the file `path` with
/// inode `inode`, are not writable and hold no written (anonymous) page.
fn unwritten_ranges_of(smaps: &str, path: &str, inode: u64) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut current: Option<Range<usize>> = None;
    for line in smaps.lines() {
        if let Some(mapping) = Mapping::parse(line) {
            current = (mapping.inode == inode && mapping.path == path && !mapping.writable)
                .then_some(mapping.range);
        } else if let Some(anonymous) = line.strip_prefix("Anonymous:") {
            if let Some(range) = current.take() {
                if anonymous.trim() == "0 kB" {
                    ranges.push(range);
                }
            }
        }
    }
    ranges
}

/// The head line of one mapping in `/proc/self/smaps`:
/// `start-end perms offset major:minor inode path`.
struct Mapping<'a> {
    range: Range<usize>,
    writable: bool,
    inode: u64,
    path: &'a str,
}

impl<'a> Mapping<'a> {
    fn parse(line: &'a str) -> Option<Self> {
        let mut fields = line.splitn(6, ' ');
        let (start, end) = fields.next()?.split_once('-')?;
        let start = usize::from_str_radix(start, 16).ok()?;
        let end = usize::from_str_radix(end, 16).ok()?;
        let perms = fields.next()?;
        let _offset = fields.next()?;
        let _device = fields.next()?;
        let inode = fields.next()?.parse().ok()?;
        let path = fields.next().unwrap_or_default().trim_start();
        (start < end && perms.len() == 4).then_some(Mapping {
            range: start..end,
            writable: perms.as_bytes()[1] == b'w',
            inode,
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
5597fb5f2000-5597fb972000 r--p 00000000 fe:00 10010689                   /usr/bin/vigil
Size:               3584 kB
Rss:                1472 kB
Anonymous:             0 kB
VmFlags: rd mr mw me
5597fb972000-5597fc412000 r-xp 0037f000 fe:00 10010689                   /usr/bin/vigil
Size:              10880 kB
Anonymous:             0 kB
5597fc412000-5597fc472000 r--p 00e1e000 fe:00 10010689                   /usr/bin/vigil
Anonymous:           384 kB
5597fc472000-5597fc47a000 rw-p 00e7d000 fe:00 10010689                   /usr/bin/vigil
Anonymous:            32 kB
5597fc47a000-5597fc47b000 rw-p 00000000 00:00 0
Anonymous:             4 kB
7f0000000000-7f0000100000 r-xp 00000000 fe:00 10010690                   /usr/lib/libc.so.6
Anonymous:             0 kB
7f0000200000-7f0000300000 r-xp 00000000 fe:00 10010689                   /usr/bin/other
Anonymous:             0 kB
";

    #[test]
    fn only_the_executables_unwritten_read_only_mappings_are_handed_back() {
        let ranges = unwritten_ranges_of(SMAPS, "/usr/bin/vigil", 10010689);
        assert_eq!(
            ranges,
            [
                0x5597fb5f2000..0x5597fb972000,
                0x5597fb972000..0x5597fc412000
            ]
        );
    }

    #[test]
    fn a_deleted_executable_is_still_recognised() {
        let smaps = "\
5597fb972000-5597fc412000 r-xp 0037f000 fe:00 77 /usr/bin/vigil (deleted)
Anonymous:             0 kB
";
        let ranges = unwritten_ranges_of(smaps, "/usr/bin/vigil (deleted)", 77);
        assert_eq!(ranges.len(), 1);
        assert_eq!(ranges[0], 0x5597fb972000..0x5597fc412000);
    }

    #[test]
    fn lines_that_are_no_mapping_are_skipped() {
        assert!(Mapping::parse("Rss:   4 kB").is_none());
        assert!(Mapping::parse("zz-10 r-xp 0 fe:00 1 /x").is_none());
        assert!(Mapping::parse("10-0 r-xp 0 fe:00 1 /x").is_none());
        assert!(unwritten_ranges_of("garbage\nAnonymous: 0 kB\n", "/x", 1).is_empty());
    }

    #[test]
    fn the_pages_handed_back_leave_the_resident_set() {
        let resident_file_kb = || {
            std::fs::read_to_string("/proc/self/status")
                .expect("status")
                .lines()
                .find_map(|line| line.strip_prefix("RssFile:"))
                .and_then(|kb| kb.trim().trim_end_matches(" kB").parse::<u64>().ok())
                .expect("RssFile")
        };
        let before = resident_file_kb();
        let bytes = hand_back().expect("madvise");
        assert!(bytes > 0, "the test binary maps its own code");
        let after = resident_file_kb();
        assert!(
            after < before,
            "RssFile {before} kB before, {after} kB after"
        );
    }
}
