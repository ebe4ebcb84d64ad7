//! Events the engine broadcasts: every check state change, status change and (un)registration.

use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;

use crate::check::CheckState;
use crate::status::Status;

/// Something a watcher of the node cares about. Serialized with a `type` tag for `/v1/events`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A check moved between states. Fires once per move, not per result.
    CheckChanged {
        /// The check.
        check: Arc<str>,
        /// State before.
        from: CheckState,
        /// State now.
        to: CheckState,
        /// The message of the result that moved it.
        message: String,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// The node's aggregate status changed.
    StatusChanged {
        /// Status before.
        from: Status,
        /// Status now.
        to: Status,
        /// Why, in words.
        message: String,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// A check was registered (or replaced) at run time.
    CheckRegistered {
        /// The check.
        check: Arc<str>,
    },
    /// A check was unregistered.
    CheckUnregistered {
        /// The check.
        check: Arc<str>,
    },
}
