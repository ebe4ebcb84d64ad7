//! What `vigil up` does after the start, with real processes (`vigil fake-service`): a service
//! that turns unhealthy is restarted and its dependants follow their `on_dependency_unhealthy`
//! policy; `vigil up -d` leaves a background supervisor that `vigil ps`, `vigil logs` and
//! `vigil down` work with; and a supervisor killed with SIGKILL is reported by `vigil ps` while
//! `vigil down` still stops every service.

#![allow(clippy::unwrap_used)] // the functions below serve the tests

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{free_port, lines_of, send_signal, wait_for, VIGIL};
use serde_json::Value;

/// Longest any awaited event may take.
const BOUND: Duration = Duration::from_secs(30);

fn stack_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vigil-up-sv-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A fake service probed every 100 ms, unhealthy at the first failure once it was healthy;
/// `extra` goes on its table, `args` on its command line.
fn fake(name: &str, deps: &str, extra: &str, args: &str) -> String {
    let port = free_port();
    format!(
        "[services.{name}]\n\
         command = [\"vigil\", \"fake-service\", \"--port\", \"{port}\"{args}]\n\
         depends_on = {{ {deps} }}\n\
         stop_grace = \"2s\"\n{extra}\
         health = {{ probe = \"http://127.0.0.1:{port}/health\", start_interval = \"50ms\", interval = \"100ms\", retries = 1 }}\n"
    )
}

/// The command-line arguments of a fake service that turns unhealthy when `file` appears.
fn sick_when(file: &Path) -> String {
    format!(", \"--unhealthy-file\", \"{}\"", file.display())
}

fn vigil_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(VIGIL)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("vigil runs")
}

fn text(output: &[u8]) -> String {
    String::from_utf8_lossy(output).into_owned()
}

fn state(dir: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(dir.join(".vigil/stack.toml/state.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// The pid the state file records for `service`.
fn pid_of(dir: &Path, service: &str) -> Option<u64> {
    state(dir)?["services"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == service)?["process"]["pid"]
        .as_u64()
}

fn running(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// `vigil ps --json` for the stack in `dir`.
fn ps(dir: &Path) -> Value {
    let out = vigil_in(dir, &["ps", "-f", "stack.toml", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn ps_service<'a>(ps: &'a Value, name: &str) -> &'a Value {
    ps["services"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("{name} in {ps}"))
}

/// An attached `vigil up`, its stdout read line by line.
struct Attached {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Attached {
    fn start(dir: &Path) -> Attached {
        let mut child = Command::new(VIGIL)
            .args(["up", "-f", "stack.toml"])
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = lines_of(child.stdout.take().unwrap());
        Attached {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `needle`; the lines before it are kept.
    fn wait_for(&mut self, needle: &str) {
        let deadline = std::time::Instant::now() + BOUND;
        while !self.seen.iter().any(|l| l.contains(needle)) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("no line with {needle:?} in:\n{}", self.seen.join("\n")),
            }
        }
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        send_signal(self.child.id(), "-TERM");
        let _ = wait_for(BOUND, || self.child.try_wait().unwrap());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_service_that_turns_unhealthy_is_restarted_and_each_dependant_follows_its_policy() {
    let dir = stack_dir("policies");
    let sick = dir.join("db.sick");
    let stack = [
        fake("db", "", "", &sick_when(&sick)),
        fake(
            "again",
            "db = \"healthy\"",
            "on_dependency_unhealthy = \"restart\"\n",
            "",
        ),
        fake("patient", "db = \"healthy\"", "", ""),
        fake(
            "aloof",
            "db = \"healthy\"",
            "on_dependency_unhealthy = \"ignore\"\n",
            "",
        ),
    ]
    .concat();
    std::fs::write(dir.join("stack.toml"), stack).unwrap();
    let mut up = Attached::start(&dir);
    up.wait_for("stack is up; supervising it");
    let before: Vec<u64> = ["db", "again", "patient", "aloof"]
        .iter()
        .map(|s| pid_of(&dir, s).unwrap())
        .collect();

    std::fs::write(&sick, "").unwrap();
    up.wait_for("db: unhealthy: GET http://");
    up.wait_for("db: restarting: unhealthy (");
    up.wait_for("again: waiting: dependency db is down; restarts once they are back");
    up.wait_for("patient: waiting: dependency db is down");
    up.wait_for("again: dependencies are back; restarting it");
    up.wait_for("again: restarting: its dependencies are back");
    up.wait_for("patient: dependencies are back; no longer waiting");
    let supervising = up
        .seen
        .iter()
        .position(|l| l.contains("stack is up"))
        .unwrap();
    assert!(
        !up.seen[supervising..].iter().any(|l| l.contains("aloof")),
        "aloof ignores db: {}",
        up.seen.join("\n")
    );
    // Nothing is restarted at once: each waits for db's new process to be healthy.
    let order = |needle: &str| up.seen.iter().rposition(|l| l.contains(needle)).unwrap();
    assert!(order("db: healthy") > order("db: started (attempt 2)"));
    assert!(order("again: dependencies are back") > order("db: started (attempt 2)"));

    let after = wait_for(BOUND, || {
        let again = pid_of(&dir, "again")?;
        (again != before[1]).then(|| {
            ["db", "again", "patient", "aloof"]
                .iter()
                .map(|s| pid_of(&dir, s).unwrap())
                .collect::<Vec<u64>>()
        })
    })
    .expect("again restarted");
    assert_ne!(after[0], before[0], "db was restarted");
    assert_eq!(after[2], before[2], "patient was not restarted");
    assert_eq!(after[3], before[3], "aloof was not restarted");
    assert!(!running(before[0]) && !running(before[1]));

    let listing = ps(&dir);
    assert_eq!(ps_service(&listing, "db")["restarts"], 1);
    assert_eq!(ps_service(&listing, "again")["restarts"], 1);
    assert_eq!(ps_service(&listing, "patient")["restarts"], 0);
}

#[test]
fn a_detached_stack_is_supervised_shown_by_ps_and_logs_and_stopped_by_down() {
    let dir = stack_dir("detached");
    let sick = dir.join("db.sick");
    let stack = format!(
        "{}{}{}",
        fake("db", "", "", &sick_when(&sick)),
        fake("api", "db = \"healthy\"", "", ""),
        fake(
            "once",
            "",
            "restart = \"no\"\n",
            ", \"--exit-after\", \"1s\", \"--exit-code\", \"3\""
        ),
    );
    std::fs::write(dir.join("stack.toml"), stack).unwrap();
    let up = vigil_in(&dir, &["up", "-d", "-f", "stack.toml"]);
    assert!(up.status.success(), "{}", text(&up.stderr));
    let said = text(&up.stdout);
    assert!(said.contains("db: healthy"), "the start is shown: {said}");
    assert!(
        said.contains("detached; `vigil ps -f stack.toml`"),
        "{said}"
    );

    // From another directory, with the stack file's path.
    let elsewhere = std::env::temp_dir();
    let file = dir.join("stack.toml");
    let file = file.to_str().unwrap();
    let table = Command::new(VIGIL)
        .args(["ps", "-f", file])
        .current_dir(&elsewhere)
        .output()
        .unwrap();
    let table = text(&table.stdout);
    assert!(table.contains("SERVICE"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("db ") && l.contains("running") && l.contains("healthy")),
        "{table}"
    );

    // The supervisor keeps watching: db turns unhealthy and is restarted, api waits meanwhile.
    let db = pid_of(&dir, "db").unwrap();
    std::fs::write(&sick, "").unwrap();
    let listing = wait_for(BOUND, || {
        let listing = ps(&dir);
        let db = ps_service(&listing, "db");
        (db["restarts"] == 1 && db["health"] == "healthy").then_some(listing)
    })
    .expect("db restarted and healthy again");
    assert_ne!(ps_service(&listing, "db")["pid"], db);
    assert_eq!(listing["supervisor"]["state"], "running");
    let once = wait_for(BOUND, || {
        let listing = ps(&dir);
        let once = ps_service(&listing, "once").clone();
        (once["state"] == "failed").then_some(once)
    })
    .expect("once exited and was not restarted");
    assert_eq!(once["last_exit"], "status 3");
    let log = std::fs::read_to_string(dir.join(".vigil/stack.toml/supervisor.log")).unwrap();
    assert!(log.contains("once: exited (status 3)"), "{log}");
    assert!(log.contains("api: waiting: dependency db is down"), "{log}");
    assert!(log.contains("api: dependencies are back"), "{log}");

    let logs = vigil_in(&dir, &["logs", "db", "-f", "stack.toml"]);
    assert!(logs.status.success(), "{}", text(&logs.stderr));
    assert_eq!(
        text(&logs.stdout)
            .matches("fake-service: listening on")
            .count(),
        2,
        "both of db's processes"
    );
    let unknown = vigil_in(&dir, &["logs", "nope", "-f", "stack.toml"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        text(&unknown.stderr).contains("services with one: api, db, once"),
        "{}",
        text(&unknown.stderr)
    );

    // `logs --follow` ends once the stack is stopped.
    let follow = Command::new(VIGIL)
        .args(["logs", "--follow", "api", "-f", "stack.toml"])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let api = pid_of(&dir, "api").unwrap();
    let supervisor = state(&dir).unwrap()["supervisor"]["pid"].as_u64().unwrap();
    let down = vigil_in(&dir, &["down", "-f", "stack.toml"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    let stopped = text(&down.stdout);
    assert!(
        stopped.lines().next().unwrap().starts_with("api"),
        "{stopped}"
    );
    assert!(
        stopped.contains("db                       stopped"),
        "{stopped}"
    );
    for pid in [api, supervisor] {
        assert!(!running(pid), "pid {pid} still runs");
    }
    let mut follow = follow;
    let ended = wait_for(BOUND, || follow.try_wait().unwrap());
    let _ = follow.kill();
    let followed = follow.wait_with_output().unwrap();
    assert!(ended.is_some_and(|s| s.success()), "logs --follow ended");
    assert!(text(&followed.stdout).contains("fake-service: listening on"));
}

#[test]
fn a_service_that_restarts_nothing_is_left_running_while_unhealthy_from_its_first_start() {
    let dir = stack_dir("steady");
    let sick = dir.join("steady.sick");
    std::fs::write(
        dir.join("stack.toml"),
        fake("steady", "", "restart = \"no\"\n", &sick_when(&sick)),
    )
    .unwrap();
    let up = vigil_in(&dir, &["up", "-d", "-f", "stack.toml"]);
    assert!(up.status.success(), "{}", text(&up.stderr));
    let pid = pid_of(&dir, "steady").unwrap();

    std::fs::write(&sick, "").unwrap();
    let steady = wait_for(BOUND, || {
        let steady = ps_service(&ps(&dir), "steady").clone();
        (steady["health"] != "healthy").then_some(steady)
    })
    .expect("steady seen unhealthy");
    assert_eq!(steady["health"], "unhealthy", "{steady}");
    assert_eq!(steady["state"], "running", "{steady}");
    assert_eq!(steady["pid"], pid, "{steady}");
    assert!(running(pid));

    std::fs::remove_file(&sick).unwrap();
    wait_for(BOUND, || {
        (ps_service(&ps(&dir), "steady")["health"] == "healthy").then_some(())
    })
    .expect("steady seen to recover");
    let down = vigil_in(&dir, &["down", "-f", "stack.toml"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(!running(pid));
}

#[test]
fn a_service_that_fails_its_probe_as_it_exits_is_reported_by_its_exit() {
    let dir = stack_dir("ending");
    std::fs::write(
        dir.join("stack.toml"),
        fake(
            "ending",
            "",
            "restart = \"on-failure\"\n",
            ", \"--exit-after\", \"1s\", \"--exit-code\", \"3\", \"--sick-before-exit\", \"200ms\"",
        ),
    )
    .unwrap();
    let up = vigil_in(&dir, &["up", "-d", "-f", "stack.toml"]);
    assert!(up.status.success(), "{}", text(&up.stderr));
    let ending = wait_for(BOUND, || {
        let ending = ps_service(&ps(&dir), "ending").clone();
        (ending["restarts"].as_u64() >= Some(1)).then_some(ending)
    })
    .expect("ending restarted");
    assert_eq!(ending["last_exit"], "status 3", "{ending}");
    let log = std::fs::read_to_string(dir.join(".vigil/stack.toml/supervisor.log")).unwrap();
    assert!(log.contains("ending: exited (status 3)"), "{log}");
    assert!(!log.contains("ending: unhealthy"), "{log}");
    let down = vigil_in(&dir, &["down", "-f", "stack.toml"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
}

#[test]
fn a_supervisor_killed_with_sigkill_is_reported_and_down_still_stops_every_service() {
    let dir = stack_dir("killed");
    let stack = format!(
        "{}{}",
        fake("db", "", "", ""),
        fake("api", "db = \"healthy\"", "", ""),
    );
    std::fs::write(dir.join("stack.toml"), stack).unwrap();
    let up = vigil_in(&dir, &["up", "-d", "-f", "stack.toml"]);
    assert!(up.status.success(), "{}", text(&up.stderr));
    let supervisor = state(&dir).unwrap()["supervisor"]["pid"].as_u64().unwrap();
    let services = [pid_of(&dir, "db").unwrap(), pid_of(&dir, "api").unwrap()];
    send_signal(u32::try_from(supervisor).unwrap(), "-KILL");
    wait_for(BOUND, || (!running(supervisor)).then_some(())).expect("the supervisor died");

    let table = vigil_in(&dir, &["ps", "-f", "stack.toml"]);
    let table = text(&table.stdout);
    assert!(
        table.contains(&format!("supervisor: gone (pid {supervisor})")),
        "{table}"
    );
    let listing = ps(&dir);
    assert_eq!(listing["supervisor"]["state"], "gone");
    assert_eq!(ps_service(&listing, "db")["state"], "running");

    let down = vigil_in(&dir, &["down", "-f", "stack.toml"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    let stopped = text(&down.stdout);
    assert_eq!(stopped.matches("stopped").count(), 2, "{stopped}");
    for pid in services {
        assert!(!running(pid), "pid {pid} still runs");
    }
    assert!(state(&dir).is_none());
}
