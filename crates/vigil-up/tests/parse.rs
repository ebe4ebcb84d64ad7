//! Stack files: what they accept, and every kind of mistake reported at file:line:column.

use std::path::Path;
use std::time::Duration;

use vigil_up::stack::{Condition, GroupPolicy, HealthCheck, Launch, RestartMode, Target};

fn errors(text: &str) -> Vec<String> {
    match vigil_up::parse::parse(text, "stack.toml", Path::new("/srv")) {
        Ok(_) => panic!("expected errors in:\n{text}"),
        Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn a_full_stack_file_is_read() {
    let text = r#"
concurrency = 4

[services.db]
command = ["postgres", "-D", "data"]
env = { PGPORT = "5433" }
workdir = "db"
restart = "always"
max_restarts = 5
backoff = "100ms"
backoff_max = "2s"
stop_grace = "3s"
[services.db.health]
probe = "tcp://127.0.0.1:5433"
interval = "2s"
timeout = "1s"
retries = 5
start_period = "10s"
start_interval = "50ms"

[services.api]
command = ["api"]
depends_on = { db = "healthy", masters = "started" }

[services.m1]
command = ["m"]
[services.m2]
command = ["m"]
depends_on = ["m1"]

[groups.masters]
members = ["m1", "m2"]
policy = { min_healthy = 1 }
"#;
    let stack = vigil_up::parse::parse(text, "stack.toml", Path::new("/srv")).expect("valid");
    assert_eq!(stack.concurrency, Some(4));
    let names: Vec<&str> = stack.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["db", "api", "m1", "m2"], "file order");
    let db = &stack.services[0];
    let Launch::Command(command) = &db.launch else {
        panic!("db runs a command");
    };
    assert_eq!(command.argv, ["postgres", "-D", "data"]);
    assert_eq!(command.env, [("PGPORT".to_owned(), "5433".to_owned())]);
    assert_eq!(command.workdir.as_deref(), Some(Path::new("/srv/db")));
    assert_eq!(db.restart.mode, RestartMode::Always);
    assert_eq!(db.restart.max_restarts, 5);
    assert_eq!(db.restart.backoff, Duration::from_millis(100));
    assert_eq!(db.stop_grace, Duration::from_secs(3));
    let health = db.health.as_ref().expect("db has health");
    assert!(matches!(health.check, HealthCheck::Probe(_)));
    assert_eq!(health.start_interval, Duration::from_millis(50));
    assert_eq!(health.retries, 5);
    let api = &stack.services[1];
    assert_eq!(api.depends_on.len(), 2);
    assert_eq!(api.depends_on[0].condition, Condition::Healthy);
    assert!(matches!(api.depends_on[1].target, Target::Group(_)));
    assert_eq!(
        stack.services[3].depends_on[0].condition,
        Condition::Started
    );
    assert_eq!(stack.groups[0].policy, GroupPolicy::MinHealthy(1));
}

#[test]
fn a_cycle_is_reported_with_its_path_at_the_dependency_that_closes_it() {
    let text = "\
[services.a]
command = [\"a\"]
depends_on = { c = \"healthy\" }
[services.b]
command = [\"b\"]
depends_on = [\"a\"]
[services.c]
command = [\"c\"]
depends_on = [\"b\"]
";
    assert_eq!(
        errors(text),
        ["stack.toml:3:16: dependency cycle: a → c → b → a; nothing can start first"]
    );
}

#[test]
fn a_cycle_through_a_group_names_the_group() {
    let text = "\
[groups.g]
members = [\"a\", \"b\"]
[services.a]
command = [\"a\"]
[services.b]
command = [\"b\"]
depends_on = [\"g\"]
";
    let found = errors(text);
    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with("stack.toml:7:15: dependency cycle: b → group g → b"),
        "{found:?}"
    );
}

#[test]
fn unknown_names_bad_durations_and_bad_conditions_are_all_reported_in_file_order() {
    let text = "\
[services.api]
command = [\"api\"]
depends_on = { dbb = \"healthy\", cache = \"ready\" }
restart = \"sometimes\"
backoff = \"5\"
[services.api.health]
probe = \"tcp://127.0.0.1:8080\"
interval = \"soon\"
[services.cache]
command = [\"cache\"]
[groups.g]
members = [\"cache\", \"nope\"]
policy = { min_healthy = 3 }
";
    assert_eq!(
        errors(text),
        [
            "stack.toml:3:16: service \"api\" depends on \"dbb\", which is no service or group; known: api, cache, g",
            "stack.toml:3:41: unknown condition \"ready\" for dependency \"cache\"; expected \"started\", \"healthy\" or \"completed\"",
            "stack.toml:4:11: unknown restart policy \"sometimes\"; expected \"no\", \"on-failure\" or \"always\"",
            "stack.toml:5:11: backoff: invalid duration \"5\": add a unit, e.g. \"5s\" or \"5ms\"",
            "stack.toml:8:12: interval: invalid duration \"soon\": not a number followed by a unit (write e.g. \"500ms\", \"30s\", \"1m30s\")",
            "stack.toml:12:21: group \"g\" has member \"nope\", which is no service; services: api, cache",
            "stack.toml:13:10: min_healthy must be between 1 and the group's 2 members, found 3",
        ]
    );
}

#[test]
fn durations_a_timer_cannot_hold_are_refused_with_their_range() {
    let text = "\
[services.api]
command = [\"api\"]
backoff = \"10000000000000000000s\"
backoff_max = \"20000y\"
stop_grace = \"2h\"
[services.api.health]
probe = \"tcp://127.0.0.1:8080\"
interval = \"1ns\"
timeout = \"10000000000000000000s\"
start_period = \"10000000000000000000s\"
start_interval = \"0s\"
";
    assert_eq!(
        errors(text),
        [
            "stack.toml:3:11: backoff must be from 0s to 1h, found \"10000000000000000000s\"",
            "stack.toml:4:15: backoff_max must be from 0s to 24h, found \"20000y\"",
            "stack.toml:5:14: stop_grace must be from 0s to 1h, found \"2h\"",
            "stack.toml:8:12: interval must be from 10ms to 24h, found \"1ns\"",
            "stack.toml:9:11: timeout must be from 10ms to 1h, found \"10000000000000000000s\"",
            "stack.toml:10:16: start_period must be from 0s to 24h, found \"10000000000000000000s\"",
            "stack.toml:11:18: start_interval must be from 10ms to 1h, found \"0s\"",
        ]
    );
    let largest = "\
[services.api]
command = [\"api\"]
backoff = \"1h\"
backoff_max = \"24h\"
stop_grace = \"1h\"
[services.api.health]
probe = \"tcp://127.0.0.1:8080\"
interval = \"24h\"
timeout = \"1h\"
start_period = \"24h\"
start_interval = \"1h\"
";
    let stack = vigil_up::parse::parse(largest, "stack.toml", Path::new("/srv"));
    assert!(stack.is_ok(), "the largest values are accepted");
}

#[test]
fn a_service_needs_a_command_and_a_probe_must_be_valid() {
    let text = "\
[services.api]
env = { A = \"1\" }
[services.db]
command = [\"db\"]
health = { probe = \"tcp://localhost\" }
";
    let found = errors(text);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].starts_with("stack.toml:1:11: service \"api\" needs `command"),
        "{found:?}"
    );
    assert!(
        found[1].starts_with(
            "stack.toml:5:20: probe: invalid tcp target `tcp://localhost`: missing port"
        ),
        "{found:?}"
    );
}

#[test]
fn a_value_of_the_wrong_type_is_located() {
    let found = errors("[services.api]\ncommand = \"api --port 80\"\n");
    assert_eq!(found.len(), 1);
    assert!(found[0].starts_with("stack.toml:2:11: "), "{found:?}");
    let found = errors("[services.api]\ncommand = [\"api\"]\nrestrat = \"no\"\n");
    assert!(
        found[0].starts_with("stack.toml:3:1: unknown field `restrat`"),
        "{found:?}"
    );
}

#[test]
fn the_mooseng_example_is_a_valid_stack() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/mooseng.toml");
    let stack = vigil_up::parse::load(&path).expect("examples/mooseng.toml is valid");
    assert_eq!(stack.services.len(), 13);
    let masters = &stack.groups[0];
    assert_eq!(masters.name, "masters");
    assert_eq!(masters.policy, GroupPolicy::Quorum);
    assert_eq!(vigil_up::graph::levels(&stack).iter().max(), Some(&3));
}

#[test]
fn every_bad_key_is_reported_with_its_position() {
    let text = "\
[services.api]
command = [\"api\"]
restrat = \"no\"
max_restarts = \"3\"
[services.api.health]
probe = \"http://127.0.0.1:8080/health\"
expect_status = [200, \"ok\"]
colour = \"red\"
[services.db]
command = [\"db\"]
stop_grace = 10
";
    let found = errors(text);
    assert_eq!(found.len(), 5, "{found:#?}");
    assert!(
        found[0].starts_with("stack.toml:3:1: unknown field `restrat`"),
        "{found:#?}"
    );
    assert!(
        found[1].starts_with("stack.toml:4:16: max_restarts: invalid type: string \"3\""),
        "{found:#?}"
    );
    assert!(
        found[2].starts_with("stack.toml:7:23: expect_status: invalid type: string \"ok\""),
        "{found:#?}"
    );
    assert!(
        found[3].starts_with("stack.toml:8:1: unknown field `colour`"),
        "{found:#?}"
    );
    assert!(
        found[4].starts_with("stack.toml:11:14: stop_grace: invalid type: integer `10`"),
        "{found:#?}"
    );
}

#[test]
fn a_health_table_takes_every_probe_option() {
    let text = "\
[services.web]
command = [\"web\"]
[services.web.health]
probe = \"https://127.0.0.1:8443/health\"
method = \"HEAD\"
headers = { Accept = \"text/plain\" }
tls_skip_verify = true
expect_status = [200, 204]
[services.disk]
command = [\"disk\"]
[services.disk.health]
probe = \"disk:/\"
max_used = 2.0
";
    assert_eq!(
        errors(text),
        ["stack.toml:12:9: probe: invalid disk option `max_used`: 2 is not a ratio in 0..=1 (0.9 means 90% used)"]
    );
}

#[test]
fn a_register_table_needs_a_reader_and_must_be_a_table() {
    let text = "\
[services.api]
command = [\"api\"]
[services.api.register]
port = 8080
[services.db]
command = [\"db\"]
register = [\"db\"]
";
    assert_eq!(
        errors(text),
        [
            "stack.toml:3:1: service \"api\": `register` is not supported here",
            "stack.toml:7:12: register: invalid type: array, expected a table",
        ]
    );
}
