//! `vigil up` and `vigil down` with real processes (`vigil fake-service`), real probes and real
//! signals: ordering against the graph, the concurrency limit, restarts with backoff, group
//! policies, failure messages, reports and their timeline in a real browser, Ctrl-C and
//! reverse-order stops; and a compose stack on real docker with scratch images.

#![allow(clippy::unwrap_used)] // the functions below serve the tests

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::tools::{docker_available, tool};
use common::{free_port, lines_of, send_signal, wait_for, VIGIL};
use serde_json::Value;

/// A directory of its own for one test's stack file, state and logs.
fn stack_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vigil-up-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A fake service on a free port, healthy after `ready`; `extra` is added to its command line.
fn fake(name: &str, ready: &str, deps: &str, extra: &str) -> String {
    let port = free_port();
    format!(
        "[services.{name}]\n\
         command = [\"vigil\", \"fake-service\", \"--port\", \"{port}\", \"--ready-after\", \"{ready}\"{extra}]\n\
         depends_on = {{ {deps} }}\n\
         health = {{ probe = \"http://127.0.0.1:{port}/health\", start_interval = \"50ms\" }}\n"
    )
}

/// The `fake` arguments of a service that exits with status 1 on its first `n` starts, counting
/// every start in `count_file`.
fn fail_first(n: u32, count_file: &Path) -> String {
    format!(
        ", \"--fail-first\", \"{n}\", \"--count-file\", \"{}\"",
        count_file.display()
    )
}

fn vigil_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(VIGIL)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("vigil runs")
}

/// `vigil up -d` on `stack`, then `vigil down`; returns up's output, its JSON report and down's
/// output.
fn up_and_down(test: &str, stack: &str, extra: &[&str]) -> (Output, Value, Output) {
    let dir = stack_dir(test);
    std::fs::write(dir.join("stack.toml"), stack).unwrap();
    let mut args = vec!["up", "-d", "-f", "stack.toml", "--report", "report.json"];
    args.extend_from_slice(extra);
    let up = vigil_in(&dir, &args);
    let report = std::fs::read_to_string(dir.join("report.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let down = vigil_in(&dir, &["down", "-f", "stack.toml"]);
    (up, report, down)
}

fn text(output: &[u8]) -> String {
    String::from_utf8_lossy(output).into_owned()
}

fn service<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["services"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("{name} in the report: {report}"))
}

fn secs(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("a time, not {value}"))
}

#[test]
fn services_start_as_soon_as_their_own_dependencies_are_healthy() {
    let stack = [
        fake("db", "600ms", "", ""),
        fake("api", "100ms", "db = \"healthy\"", ""),
        fake("web", "100ms", "api = \"started\"", ""),
        fake("cache", "100ms", "", ""),
        fake("worker", "100ms", "cache = \"healthy\"", ""),
    ]
    .concat();
    let (up, report, down) = up_and_down("order", &stack, &["--timeline", "timeline.svg"]);
    assert!(
        up.status.success(),
        "{}{}",
        text(&up.stdout),
        text(&up.stderr)
    );
    assert_eq!(report["outcome"], "up");
    let at = |name: &str, key: &str| secs(&service(&report, name)[key]);
    assert!(at("api", "launched_s") >= at("db", "healthy_s"));
    assert!(at("web", "launched_s") >= at("api", "started_s"));
    assert!(
        at("web", "launched_s") < at("api", "healthy_s"),
        "web waits for api to start, not to be healthy"
    );
    assert!(
        at("worker", "launched_s") < at("db", "healthy_s"),
        "worker does not wait for db: it is on another branch"
    );
    assert_eq!(report["critical_path"][0], "db");
    let stdout = text(&up.stdout);
    assert!(stdout.contains("critical path:"), "{stdout}");
    assert!(stdout.contains("wave by wave:"), "{stdout}");
    assert!(down.status.success(), "{}", text(&down.stderr));
    let stopped = text(&down.stdout);
    assert_eq!(stopped.matches("stopped").count(), 5, "{stopped}");
}

#[test]
fn the_concurrency_limit_holds_with_real_processes() {
    let stack: String = (1..=4)
        .map(|i| fake(&format!("s{i}"), "300ms", "", ""))
        .collect();
    let (up, report, _) = up_and_down("concurrency", &stack, &["--concurrency", "2"]);
    assert!(up.status.success(), "{}", text(&up.stderr));
    let spans: Vec<(f64, f64)> = report["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (secs(&s["launched_s"]), secs(&s["ready_s"])))
        .collect();
    for &(start, _) in &spans {
        let starting = spans
            .iter()
            .filter(|&&(l, r)| l <= start && start < r)
            .count();
        assert!(
            starting <= 2,
            "{starting} services starting at {start}: {spans:?}"
        );
    }
}

#[test]
fn a_crashing_service_is_restarted_with_backoff_and_counted() {
    let count = stack_dir("restart-count").join("starts");
    let extra = fail_first(2, &count);
    let stack = format!(
        "{}backoff = \"50ms\"\n{}",
        fake("flaky", "100ms", "", &extra),
        fake("after", "50ms", "flaky = \"healthy\"", "")
    );
    let (up, report, _) = up_and_down("restart", &stack, &[]);
    assert!(up.status.success(), "{}", text(&up.stderr));
    let flaky = service(&report, "flaky");
    assert_eq!(flaky["attempts"], 3);
    assert_eq!(flaky["restarts"], 2);
    assert!(
        flaky["restart_reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("exited (status 1); restart 1 in "),
        "{flaky}"
    );
    assert_eq!(std::fs::read_to_string(&count).unwrap(), "3");
    let stdout = text(&up.stdout);
    assert!(
        stdout.contains("flaky: restarting: exited (status 1); restart 2 in"),
        "{stdout}"
    );
}

#[test]
fn a_service_that_keeps_failing_fails_the_start_with_a_message_naming_it() {
    let extra = fail_first(9, &stack_dir("give-up-count").join("starts"));
    let stack = format!(
        "{}max_restarts = 1\nbackoff = \"20ms\"\n{}",
        fake("db", "50ms", "", &extra),
        fake("api", "50ms", "db = \"healthy\"", "")
    );
    let (up, report, _) = up_and_down("give-up", &stack, &[]);
    assert_eq!(up.status.code(), Some(1));
    let stderr = text(&up.stderr);
    assert!(
        stderr.contains(
            "error: api cannot start: its dependency db failed: exited (status 1); gave up after 1 restart"
        ),
        "{stderr}"
    );
    assert_eq!(report["outcome"], "failed");
    assert!(
        service(&report, "api")["launched_s"].is_null(),
        "api never started"
    );
    assert!(text(&up.stdout).contains("start failed; stopping what was started"));
}

#[test]
fn an_unhealthy_service_is_restarted_then_given_up() {
    // The probe points at a port nobody listens on: unhealthy after the start period.
    let port = free_port();
    let stack = format!(
        "[services.deaf]\ncommand = [\"vigil\", \"fake-service\", \"--port\", \"{}\"]\n\
         max_restarts = 1\nbackoff = \"20ms\"\nstop_grace = \"1s\"\n\
         health = {{ probe = \"tcp://127.0.0.1:{port}\", start_interval = \"20ms\", start_period = \"100ms\", retries = 2 }}\n",
        free_port()
    );
    let (up, report, _) = up_and_down("unhealthy", &stack, &[]);
    assert_eq!(up.status.code(), Some(1));
    let deaf = service(&report, "deaf");
    assert_eq!(deaf["attempts"], 2);
    let failure = deaf["failure"].as_str().unwrap();
    assert!(failure.starts_with("unhealthy ("), "{failure}");
    assert!(failure.ends_with("gave up after 1 restart"), "{failure}");
}

#[test]
fn a_quorum_group_goes_on_degraded_and_says_so() {
    let extra = fail_first(99, &stack_dir("quorum-count").join("starts"));
    let stack = format!(
        "[groups.masters]\nmembers = [\"m1\", \"m2\", \"m3\"]\npolicy = \"quorum\"\n{}{}{}restart = \"no\"\n{}",
        fake("m1", "100ms", "", ""),
        fake("m2", "150ms", "", ""),
        fake("m3", "100ms", "", &extra),
        fake("chunk", "50ms", "masters = \"healthy\"", ""),
    );
    let (up, report, _) = up_and_down("quorum", &stack, &[]);
    assert!(up.status.success(), "{}", text(&up.stderr));
    assert_eq!(report["outcome"], "degraded");
    assert_eq!(service(&report, "chunk")["state"], "ready");
    let stderr = text(&up.stderr);
    assert!(
        stderr.contains("DEGRADED: m3 failed (exited (status 1); restart policy is no); group masters (quorum, 2 of 3) still holds with 2 of 3 left"),
        "{stderr}"
    );
}

#[test]
fn an_all_group_fails_the_start_when_a_member_fails() {
    let extra = fail_first(99, &stack_dir("all-count").join("starts"));
    let stack = format!(
        "[groups.masters]\nmembers = [\"m1\", \"m2\"]\n{}{}restart = \"no\"\n{}",
        fake("m1", "100ms", "", ""),
        fake("m2", "100ms", "", &extra),
        fake("chunk", "50ms", "masters = \"healthy\"", ""),
    );
    let (up, _, _) = up_and_down("all", &stack, &[]);
    assert_eq!(up.status.code(), Some(1));
    let stderr = text(&up.stderr);
    assert!(
        stderr.contains("error: group masters needs all 2 but 1 of 2 failed (m2)"),
        "{stderr}"
    );
}

#[test]
fn stack_file_errors_are_located_and_nothing_starts() {
    let dir = stack_dir("errors");
    std::fs::write(
        dir.join("stack.toml"),
        "[services.a]\ncommand = [\"vigil\", \"fake-service\", \"--port\", \"1\"]\ndepends_on = [\"b\"]\n\
         [services.b]\ncommand = [\"b\"]\ndepends_on = { a = \"healthy\" }\nstop_grace = \"ten\"\n",
    )
    .unwrap();
    let up = vigil_in(&dir, &["up", "-f", "stack.toml"]);
    assert_eq!(up.status.code(), Some(1));
    assert_eq!(
        text(&up.stderr),
        "stack.toml:7:14: stop_grace: invalid duration \"ten\": not a number followed by a unit (write e.g. \"500ms\", \"30s\", \"1m30s\")\n"
    );
    std::fs::write(
        dir.join("stack.toml"),
        "[services.a]\ncommand = [\"a\"]\ndepends_on = [\"b\"]\n[services.b]\ncommand = [\"b\"]\ndepends_on = { a = \"healthy\" }\n",
    )
    .unwrap();
    let up = vigil_in(&dir, &["up", "-f", "stack.toml"]);
    assert_eq!(
        text(&up.stderr),
        "stack.toml:3:15: dependency cycle: a → b → a; nothing can start first\n"
    );
    assert!(!dir.join(".vigil/stack.toml/state.json").exists());
}

/// Runs `vigil up` attached, with stdout read line by line on a thread.
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

    /// Waits (at most 30 s) for a line containing `needle`.
    fn wait_for(&mut self, needle: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !self.seen.iter().any(|l| l.contains(needle)) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("no line with {needle:?} in:\n{}", self.seen.join("\n")),
            }
        }
    }

    fn signal(&self, signal: &str) {
        send_signal(self.child.id(), signal);
    }

    /// Waits (at most 30 s) for vigil up to exit; its exit code.
    fn exit_code(&mut self) -> Option<i32> {
        let status = wait_for(Duration::from_secs(30), || self.child.try_wait().unwrap())
            .expect("vigil up did not exit");
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(1)) {
            self.seen.push(line);
        }
        status.code()
    }

    fn position(&self, needle: &str) -> usize {
        self.seen
            .iter()
            .position(|l| l == needle)
            .unwrap_or_else(|| panic!("no line {needle:?} in:\n{}", self.seen.join("\n")))
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pids(dir: &Path) -> Vec<u32> {
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(".vigil/stack.toml/state.json")).unwrap(),
    )
    .unwrap();
    state["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["process"]["pid"].as_u64())
        .map(|p| u32::try_from(p).unwrap())
        .collect()
}

fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

const CHAIN: [(&str, &str, &str); 3] = [
    ("db", "100ms", ""),
    ("api", "100ms", "db = \"healthy\""),
    ("web", "100ms", "api = \"healthy\""),
];

fn chain_dir(test: &str) -> PathBuf {
    let dir = stack_dir(test);
    let stack: String = CHAIN
        .iter()
        .map(|(name, ready, deps)| fake(name, ready, deps, ""))
        .collect();
    std::fs::write(dir.join("stack.toml"), stack).unwrap();
    dir
}

#[test]
fn ctrl_c_stops_everything_in_reverse_dependency_order() {
    let dir = chain_dir("ctrl-c");
    let mut up = Attached::start(&dir);
    up.wait_for("stack is up; supervising it");
    let started = pids(&dir);
    assert_eq!(started.len(), 3);
    up.signal("-INT");
    assert_eq!(up.exit_code(), Some(130), "Ctrl-C is an interruption");
    assert!(up.position("interrupted; stopping") < up.position("web: stopped"));
    assert!(up.position("web: stopped") < up.position("api: stopped"));
    assert!(up.position("api: stopped") < up.position("db: stopped"));
    for pid in started {
        assert!(!running(pid), "pid {pid} still runs");
    }
    assert!(!dir.join(".vigil/stack.toml/state.json").exists());
}

#[test]
fn ctrl_c_during_the_start_stops_what_was_started_and_exits_130() {
    let dir = stack_dir("ctrl-c-early");
    let stack = format!(
        "{}{}",
        fake("db", "50ms", "", ""),
        fake("slow", "60s", "db = \"healthy\"", ""),
    );
    std::fs::write(dir.join("stack.toml"), stack).unwrap();
    let mut up = Attached::start(&dir);
    up.wait_for("slow: started (attempt 1)");
    let started = pids(&dir);
    assert_eq!(started.len(), 2);
    up.signal("-INT");
    assert_eq!(up.exit_code(), Some(130));
    assert!(up.position("interrupted; stopping what was started") < up.position("slow: stopped"));
    // Durations cut short by the interruption make no critical path and no comparison.
    assert!(
        up.seen
            .iter()
            .any(|l| l.starts_with("the start was interrupted: no critical path")),
        "{}",
        up.seen.join("\n")
    );
    assert!(
        !up.seen
            .iter()
            .any(|l| l.contains("faster") || l.starts_with("critical path:")),
        "{}",
        up.seen.join("\n")
    );
    assert!(up.position("slow: stopped") < up.position("db: stopped"));
    for pid in started {
        assert!(!running(pid), "pid {pid} still runs");
    }
}

#[test]
fn vigil_down_stops_an_attached_stack_through_its_supervisor() {
    let dir = chain_dir("down-attached");
    let mut up = Attached::start(&dir);
    up.wait_for("stack is up; supervising it");
    let started = pids(&dir);
    let down = vigil_in(&dir, &["down", "-f", "stack.toml"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert_eq!(up.exit_code(), Some(0), "a stop asked for by vigil down");
    assert!(up.position("web: stopped") < up.position("api: stopped"));
    assert!(up.position("api: stopped") < up.position("db: stopped"));
    // vigil down lists them in the order they were stopped, deepest dependants first.
    let listed: Vec<String> = text(&down.stdout)
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(listed, ["web", "api", "db"], "{}", text(&down.stdout));
    for pid in started {
        assert!(!running(pid), "pid {pid} still runs");
    }
}

#[test]
fn vigil_down_stops_a_detached_stack_in_reverse_order_and_kills_what_ignores_sigterm() {
    let dir = stack_dir("down-detached");
    let stack = format!(
        "{}{}stop_grace = \"200ms\"\n",
        fake("db", "50ms", "", ""),
        fake(
            "stubborn",
            "50ms",
            "db = \"healthy\"",
            ", \"--ignore-term\""
        ),
    );
    std::fs::write(dir.join("stack.toml"), stack).unwrap();
    let up = vigil_in(&dir, &["up", "-d", "-f", "stack.toml"]);
    assert!(up.status.success(), "{}", text(&up.stderr));
    let started = pids(&dir);
    assert!(
        started.iter().all(|&p| running(p)),
        "detached services keep running"
    );
    let again = vigil_in(&dir, &["up", "-d", "-f", "stack.toml"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("is already up"),
        "{}",
        text(&again.stderr)
    );

    let down = vigil_in(&dir, &["down", "-f", "stack.toml"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    let lines: Vec<String> = text(&down.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("stubborn") && lines[0].ends_with("killed after the grace period")
    );
    assert!(lines[1].starts_with("db") && lines[1].ends_with("stopped"));
    for pid in started {
        assert!(!running(pid), "pid {pid} still runs");
    }
    let again = vigil_in(&dir, &["down", "-f", "stack.toml"]);
    assert!(text(&again.stdout).contains("nothing is running"));
}

#[test]
fn a_program_that_cannot_be_run_is_named() {
    let dir = stack_dir("no-program");
    std::fs::write(
        dir.join("stack.toml"),
        "[services.ghost]\ncommand = [\"vigil-test-no-such-program\"]\nrestart = \"no\"\n",
    )
    .unwrap();
    let up = vigil_in(&dir, &["up", "-f", "stack.toml"]);
    assert_eq!(up.status.code(), Some(1));
    let said = format!("{}{}", text(&up.stdout), text(&up.stderr));
    assert!(
        said.contains(
            "ghost: FAILED: cannot start: program vigil-test-no-such-program is not on the PATH"
        ),
        "{said}"
    );
}

/// Where each `<text>` of `svg` runs outside the image, measured by a real browser's layout
/// (`getBBox`); `None` when chromium is missing and the test is to skip this part.
fn texts_outside_the_image(dir: &Path, svg: &str) -> Option<Vec<String>> {
    let chromium = tool("chromium", "Debian package `chromium`")?;
    let page = dir.join("timeline.html");
    std::fs::write(
        &page,
        format!(
            r#"<!doctype html><html><body style="margin:0">{svg}<script>
const image = document.querySelector('svg');
const width = Number(image.getAttribute('width'));
const outside = [...image.querySelectorAll('text')].map(t => [t.textContent, t.getBBox()])
  .filter(([, b]) => b.x < 0 || b.x + b.width > width)
  .map(([text, b]) => `${{text}}: ${{Math.round(b.x)}}..${{Math.round(b.x + b.width)}} of ${{width}}`);
document.body.dataset.outside = JSON.stringify(outside);
</script></body></html>"#
        ),
    )
    .unwrap();
    let dom = dir.join("timeline.dom");
    let mut browser = Command::new(chromium)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--dump-dom",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.join("chromium").display()
        ))
        .arg(format!("file://{}", page.display()))
        .stdout(std::fs::File::create(&dom).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let done = wait_for(Duration::from_secs(60), || browser.try_wait().unwrap());
    if done.is_none() {
        let _ = browser.kill();
        let _ = browser.wait();
        panic!("chromium did not render the timeline within 60 s");
    }
    let dumped = std::fs::read_to_string(&dom).unwrap();
    let attribute = dumped
        .split("data-outside=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no measurement in the page:\n{dumped}"))
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">");
    Some(serde_json::from_str(&attribute).unwrap())
}

#[test]
fn the_timeline_fits_every_label_and_outputs_go_where_asked() {
    let dir = stack_dir("timeline");
    let stack = [
        fake("db", "100ms", "", ""),
        fake(
            "a-service-with-a-rather-long-name-for-its-label",
            "100ms",
            "db = \"healthy\"",
            "",
        ),
        fake(
            "web",
            "300ms",
            "a-service-with-a-rather-long-name-for-its-label = \"healthy\"",
            "",
        ),
    ]
    .concat();
    std::fs::write(dir.join("stack.toml"), stack).unwrap();
    let up = vigil_in(
        &dir,
        &[
            "up",
            "-d",
            "-f",
            "stack.toml",
            "--timeline",
            "out/timeline.svg",
            "--report",
            "out/report.json",
        ],
    );
    let down = vigil_in(&dir, &["down", "-f", "stack.toml"]);
    assert!(
        up.status.success(),
        "{}{}",
        text(&up.stdout),
        text(&up.stderr)
    );
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(
        dir.join("out/report.json").is_file(),
        "the report's directory is made"
    );
    let svg = std::fs::read_to_string(dir.join("out/timeline.svg")).unwrap();
    // web, last to be ready, has its label right of the plot's end.
    if let Some(outside) = texts_outside_the_image(&dir, &svg) {
        assert!(outside.is_empty(), "cut off: {outside:?}");
    }
}

/// Removes a compose project's containers even when a test fails half way.
struct ComposeProject {
    name: String,
}

impl Drop for ComposeProject {
    fn drop(&mut self) {
        let filter = format!("label=com.docker.compose.project={}", self.name);
        let Ok(listing) = Command::new("docker")
            .args(["ps", "-aq", "--filter", &filter])
            .output()
        else {
            return;
        };
        for id in text(&listing.stdout).split_whitespace() {
            let _ = Command::new("docker").args(["rm", "-f", id]).output();
        }
        let _ = Command::new("docker")
            .args(["network", "rm", &format!("{}_default", self.name)])
            .output();
    }
}

fn project_containers(project: &str) -> Vec<String> {
    let filter = format!("label=com.docker.compose.project={project}");
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter", &filter])
        .output()
        .unwrap();
    text(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_compose_stack_starts_in_dependency_order_on_real_docker() {
    if !docker_available() {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/docker/build-image.sh");
    let tag = "vigil:scratch";
    let build = Command::new("bash")
        .arg(&script)
        .arg(tag)
        .env("BINARY", env!("CARGO_BIN_EXE_vigil"))
        .output()
        .unwrap();
    assert!(build.status.success(), "{}", text(&build.stderr));

    let dir = stack_dir("compose");
    let project = format!("vigiltest{}", std::process::id());
    let _cleanup = ComposeProject {
        name: project.clone(),
    };
    let port = free_port();
    let definition = |ready: &str| {
        format!(
            "    image: {tag}\n    command: [\"fake-service\", \"--host\", \"0.0.0.0\", \"--port\", \"8080\", \"--ready-after\", \"{ready}\"]\n    stop_grace_period: 2s\n"
        )
    };
    let container_health = "    healthcheck:\n      test: [\"CMD\", \"/vigil\", \"probe\", \"http://127.0.0.1:8080/health\"]\n      interval: 200ms\n      timeout: 1s\n      retries: 50\n";
    let compose = format!(
        "services:\n  master:\n{}{container_health}  chunk:\n{}{container_health}    depends_on:\n      master: {{ condition: service_healthy }}\n  client:\n{}    ports: [\"127.0.0.1:{port}:8080\"]\n    x-vigil-probe: \"http://127.0.0.1:{port}/health\"\n    depends_on:\n      chunk: {{ condition: service_healthy }}\n",
        definition("1s"),
        definition("500ms"),
        definition("300ms"),
    );
    std::fs::write(dir.join("compose.yml"), compose).unwrap();

    let up = vigil_in(
        &dir,
        &[
            "up",
            "--compose",
            "compose.yml",
            "--project",
            &project,
            "-d",
            "--report",
            "report.json",
        ],
    );
    assert!(
        up.status.success(),
        "{}{}",
        text(&up.stdout),
        text(&up.stderr)
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["outcome"], "up");
    let at = |name: &str, key: &str| secs(&service(&report, name)[key]);
    assert!(at("chunk", "launched_s") >= at("master", "healthy_s"));
    assert!(at("client", "launched_s") >= at("chunk", "healthy_s"));
    assert!(
        at("master", "time_to_healthy_s") >= 1.0,
        "master's container turned healthy only once ready"
    );
    let containers = project_containers(&project);
    assert_eq!(containers.len(), 3);
    for id in &containers {
        let state = Command::new("docker")
            .args(["inspect", "-f", "{{.State.Running}}", id])
            .output()
            .unwrap();
        assert_eq!(text(&state.stdout).trim(), "true");
    }

    let down = vigil_in(&dir, &["down", "--compose", "compose.yml"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    let lines: Vec<String> = text(&down.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[0].starts_with("client") && lines[2].starts_with("master"),
        "{lines:?}"
    );
    assert!(
        project_containers(&project).is_empty(),
        "down removed the containers"
    );
}
