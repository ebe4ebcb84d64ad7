//! Text in and out, one home for every front end of vigil (the agent's config, stack files,
//! compose files, the HTTP API's check definitions, command-line flags):
//!
//! - [`position`]: problems located at `file:line:column` and the collector that places them.
//! - `table` (feature `toml`): reading a TOML table with every bad key reported at its position.
//! - [`duration`]: durations as people write them, and the range of every duration setting.
//! - [`format`](mod@format): the duration formats vigil prints.

#![forbid(unsafe_code)]

pub mod duration;
pub mod format;
pub mod position;
#[cfg(feature = "toml")]
pub mod table;

pub use duration::{
    limits, parse_duration, DurationError, DurationLimit, HumanDuration, LimitError,
};
pub use format::{fmt_duration, fmt_elapsed, go_duration, humanize};
pub use position::{Errors, FileError, FileErrors};
