//! Health-gated startup of a whole stack, as fast as its dependency graph allows.
//!
//! A stack (a TOML stack file, or a docker compose file) lists services, how each is started and
//! judged healthy, what it waits for (`started`, `healthy`, `completed`, on a service or on a group
//! with a policy such as `quorum`), and how it is restarted. [`up::Up`] starts every service the
//! moment its own dependencies are satisfied — never a whole "wave" at a time — within a concurrency
//! limit, probes it quickly while it starts, restarts it with exponential backoff and jitter when it
//! exits or turns unhealthy, and lets group policies decide whether a failure degrades the stack or
//! fails the start. It ends with a [`report::Report`]: time to started and healthy per service, the
//! critical path, and the total against the critical-path lower bound and a wave-by-wave schedule,
//! as a table, JSON or an SVG timeline. [`down`] stops a stack in reverse dependency order.
//!
//! After startup the stack stays supervised — by the attached `vigil up`, or by the background
//! process `vigil up -d` leaves ([`background`]) until `vigil down`: every service is probed at
//! its `interval`, restarted per its policy when it exits or turns unhealthy, and its dependants
//! follow their `on_dependency_unhealthy` policy ([`supervise`]). What it is not: an init system
//! started at boot.
//!
//! The pieces, one concept per module:
//!
//! - [`stack`]: the validated model; [`parse`] reads stack files, [`compose`] compose files, both
//!   with every error at `file:line:column`.
//! - [`error`]: problems located at `file:line:column`, and the collector that places them.
//! - [`graph`]: cycles, dependency levels, stop order.
//! - [`schedule`]: the scheduling core, free of I/O and clocks, so ordering, concurrency and group
//!   policies are tested without time; [`supervise`] the same for what follows the start.
//! - [`runner`]: one service's life during and after startup: launch, probe, restart.
//! - [`process`] and [`compose`]: launching and stopping local processes and compose services.
//! - [`up`]: the driver tying the core to the runners; [`state`] the file `vigil ps` and
//!   `vigil down` read; [`background`] the supervisor of `vigil up -d`.
//! - [`register`]: services registered as instances of a registry while they run, through a
//!   reader and a registry the program supplies.
//! - [`report`] and [`svg`]: the startup report; [`hints`] the tuning hints it ends with.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod background;
pub mod compose;
pub mod down;
pub mod error;
pub mod graph;
pub mod hints;
pub mod launch;
pub mod parse;
pub mod process;
pub mod register;
pub mod report;
pub mod runner;
pub mod schedule;
pub mod stack;
pub mod state;
pub mod supervise;
pub mod svg;
pub mod up;

pub use error::{StackError, StackErrors};
