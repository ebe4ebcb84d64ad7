//! Problems in stack and compose files, located at `file:line:column`: the names `vigil up` has
//! always given [`vigil_text::position`]'s types, which every file vigil reads shares.

pub use vigil_text::position::{unreadable, Errors};
pub use vigil_text::position::{FileError as StackError, FileErrors as StackErrors};
