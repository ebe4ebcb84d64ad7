//! The background supervisor of `vigil up -d`: a process of the same program that leaves the
//! terminal's session, reports the start to the `vigil up` that launched it over its standard
//! output and error, then sends both to its log in the stack's state directory and supervises
//! the stack until `vigil down`.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;

/// Leaves the session of the terminal `vigil up -d` ran in, so that neither a Ctrl-C there nor
/// the terminal closing reaches the supervisor or the services it starts.
pub fn leave_session() -> io::Result<()> {
    rustix::process::setsid()?;
    Ok(())
}

/// Points standard output and error at `log` (appending), closing whatever they were: the
/// launching `vigil up -d` sees them end and returns.
pub fn output_to(log: &Path) -> io::Result<()> {
    let file = OpenOptions::new().create(true).append(true).open(log)?;
    // What was printed last must reach the launcher, not the log.
    io::stdout().flush()?;
    rustix::stdio::dup2_stdout(&file)?;
    rustix::stdio::dup2_stderr(&file)?;
    Ok(())
}
