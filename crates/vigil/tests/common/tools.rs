//! External programs some tests check vigil against (promtool, browsers, docker). A missing one
//! skips the test visibly, unless `VIGIL_REQUIRE_TOOLS` is set (as CI sets it), where it fails it
//! (see [`super::skip`]).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use super::skip::{skip, skip_step};

/// How to install promtool, for the message when it is required and missing.
const PROMETHEUS: &str = "Debian package `prometheus`";

/// The path of program `name`; when absent the test is to be skipped (and this says so), unless
/// `VIGIL_REQUIRE_TOOLS` is set, where this fails it naming `install` (how to get it).
pub fn tool(name: &str, install: &str) -> Option<PathBuf> {
    let found = on_path(name);
    if found.is_none() {
        skip(&format!("{name} ({install})"));
    }
    found
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// [`tool`] for promtool.
pub fn promtool() -> Option<PathBuf> {
    tool("promtool", PROMETHEUS)
}

/// Runs `command` with `input` on its standard input, to its end, capturing its output.
pub fn feed(command: &mut Command, input: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Fails the test unless `out` is a success, with `what` and everything the program printed.
pub fn assert_succeeded(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `promtool check metrics` accepts `text`, a `/metrics` page; this step alone is skipped
/// without promtool.
pub fn promtool_accepts(text: &str) {
    let Some(promtool) = on_path("promtool") else {
        skip_step(
            "promtool check metrics",
            &format!("promtool ({PROMETHEUS})"),
        );
        return;
    };
    let out = feed(Command::new(promtool).args(["check", "metrics"]), text);
    assert_succeeded(&out, "promtool check metrics failed");
}

/// `docker-compose` (v1) or `docker compose` (v2), whichever is installed.
pub fn compose_program() -> Option<Vec<&'static str>> {
    let runs = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if runs("docker-compose", &["version"]) {
        Some(vec!["docker-compose"])
    } else if runs("docker", &["compose", "version"]) {
        Some(vec!["docker", "compose"])
    } else {
        None
    }
}

/// Whether docker and compose can be used; when not, the test is to be skipped (and this says
/// so), unless `VIGIL_REQUIRE_TOOLS` is set, where this fails it.
pub fn docker_available() -> bool {
    let ok = Command::new("docker")
        .arg("info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        && compose_program().is_some();
    if !ok {
        skip("a running Docker Engine and docker compose (v2) or docker-compose (v1)");
    }
    ok
}
