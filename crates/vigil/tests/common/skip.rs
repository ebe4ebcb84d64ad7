//! Tests that need something from outside vigil — a program (a browser, docker, openssl, python
//! packages) or a server named in the environment — and do not find it. Such a test passes having
//! checked nothing, so it says so on a line of its own that a plain `cargo test` shows; with
//! `VIGIL_REQUIRE_TOOLS` set (`.ci/run` sets it) it fails instead. The vigil-probe tests include
//! this file too, so every skip reads the same.

use std::io::Write;

/// Whether a test must fail rather than skip when what it needs is missing: `VIGIL_REQUIRE_TOOLS`
/// is set to anything but empty or `0`.
pub fn tools_required() -> bool {
    std::env::var_os("VIGIL_REQUIRE_TOOLS").is_some_and(|v| !v.is_empty() && v != "0")
}

/// The running test cannot run for want of `needs` (what is missing and how to get it): fails it
/// when [`tools_required`], otherwise prints `SKIPPED <test>: needs <needs>`, and the caller
/// returns.
pub fn skip(needs: &str) {
    report(None, needs);
}

/// [`skip`] for one step of the running test (`step` names it), the rest of which runs: prints
/// `SKIPPED <step> in <test>: needs <needs>`.
pub fn skip_step(step: &str, needs: &str) {
    report(Some(step), needs);
}

fn report(step: Option<&str>, needs: &str) {
    assert!(
        !tools_required(),
        "this test needs {needs}, and VIGIL_REQUIRE_TOOLS is set"
    );
    let thread = std::thread::current();
    let test = thread.name().filter(|n| *n != "main").unwrap_or("a test");
    let what = match step {
        Some(step) => format!("{step} in {test}"),
        None => test.to_owned(),
    };
    // The test harness swallows what a passing test prints with eprintln!, but not what is
    // written to the standard error stream itself: the skip stays on the terminal.
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {what}: needs {needs}");
}
