//! glibc's allocator set for a long-running agent, before any other thread starts.
//!
//! By default glibc gives every thread that allocates an arena of its own (up to eight per core),
//! and every arena keeps the memory freed into it; and after the first large buffer is freed it
//! raises the size above which it maps buffers from the kernel, so later large buffers are carved
//! out of the heap, where one long-lived allocation above them keeps them from ever being given
//! back. An agent runs for months and its blocking-pool threads come and go: with ten thousand
//! instance checks it held 62 MB where it holds 58–59 MB with these settings (bench/README.md).
//!
//! Settings given in the environment (`MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_`,
//! `MALLOC_TRIM_THRESHOLD_`, `GLIBC_TUNABLES`) win: the agent then leaves the allocator alone.

#![allow(unsafe_code)]

/// Arenas at most: one per core of a small machine, so the two async workers do not share one,
/// while the blocking pool's threads share theirs.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 2;

/// Buffers from this size up are mapped from the kernel and unmapped when freed (glibc's
/// starting value, kept fixed instead of rising).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

/// Free memory at the top of a heap beyond this is given back to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 128 * 1024;

/// Sets the allocator up; call first in `main`, while it is the only thread.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let tuned_outside = [
            "MALLOC_ARENA_MAX",
            "MALLOC_MMAP_THRESHOLD_",
            "MALLOC_TRIM_THRESHOLD_",
            "GLIBC_TUNABLES",
        ]
        .iter()
        .any(|name| std::env::var_os(name).is_some());
        if tuned_outside {
            return;
        }
        for (parameter, value) in [
            (libc::M_ARENA_MAX, ARENAS),
            (libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD),
            (libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        ] {
            // SAFETY: mallopt takes plain integers and only changes the allocator's parameters
            // for allocations made from then on; it reads and writes no memory of ours. A
            // parameter it refuses leaves glibc's default, which is only less frugal.
            unsafe {
                libc::mallopt(parameter, value);
            }
        }
    }
}
