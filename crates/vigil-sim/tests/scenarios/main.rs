//! Scenario tests: each runs a simulated cluster through something a user would live through and
//! asserts what they would notice. Only virtual time is asserted, never wall-clock time.
//!
//! One file per scenario; adding one is a new file and a `mod` line here.

mod common;

mod join;
mod keyring;
mod kill;
mod leave;
mod lossy_pauses;
mod metadata;
mod news;
mod one_link;
mod one_way;
mod partition;
mod pause;
mod quiet;
mod refute;
mod restart;
