//! Compose files: services, `depends_on` conditions, healthchecks, vigil's own extensions, and
//! mistakes reported at file:line:column.

use std::path::Path;
use std::time::Duration;

use vigil_up::stack::{Condition, GroupPolicy, HealthCheck, Launch, RestartMode, Target};

#[test]
fn the_mooseng_compose_example_is_read_with_its_groups_and_probes() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/mooseng-compose.yml");
    let stack = vigil_up::compose::load(&path).expect("examples/mooseng-compose.yml is valid");
    assert_eq!(stack.services.len(), 13);
    let chunk = &stack.services[stack.service_id("chunkserver-1").expect("chunkserver-1").0];
    assert_eq!(
        chunk.launch,
        Launch::Compose {
            service: "chunkserver-1".into()
        }
    );
    // x-vigil-depends_on replaces the three masters of depends_on with the quorum group.
    assert_eq!(chunk.depends_on.len(), 1);
    let Target::Group(group) = chunk.depends_on[0].target else {
        panic!("chunkserver-1 depends on the masters group");
    };
    assert_eq!(stack.group(group).name, "masters");
    assert_eq!(stack.group(group).policy, GroupPolicy::Quorum);
    assert_eq!(chunk.depends_on[0].condition, Condition::Healthy);
    let health = chunk.health.as_ref().expect("a health check");
    assert!(
        matches!(health.check, HealthCheck::Probe(_)),
        "x-vigil-probe wins"
    );
    assert_eq!(health.interval, Duration::from_millis(500));
    assert_eq!(chunk.stop_grace, Duration::from_secs(2));
}

#[test]
fn compose_conditions_healthchecks_and_restart_policies() {
    let text = "\
services:
  db:
    image: postgres
    restart: unless-stopped
    healthcheck:
      test: [\"CMD\", \"pg_isready\"]
      interval: 2s
      retries: 5
  migrate:
    image: app
    depends_on:
      db: { condition: service_healthy }
  api:
    image: app
    depends_on:
      migrate: { condition: service_completed_successfully }
  web:
    image: web
    depends_on: [api]
";
    let stack = vigil_up::compose::parse(text, "compose.yml").expect("valid");
    let db = &stack.services[stack.service_id("db").expect("db").0];
    assert_eq!(db.restart.mode, RestartMode::Always);
    let health = db.health.as_ref().expect("db has a healthcheck");
    assert!(matches!(health.check, HealthCheck::Container));
    assert_eq!(health.interval, Duration::from_secs(2));
    assert_eq!(health.retries, 5);
    let condition = |name: &str| {
        stack.services[stack.service_id(name).expect("known").0].depends_on[0].condition
    };
    assert_eq!(condition("migrate"), Condition::Healthy);
    assert_eq!(condition("api"), Condition::Completed);
    assert_eq!(condition("web"), Condition::Started);
}

#[test]
fn compose_mistakes_are_located() {
    let text = "\
services:
  api:
    image: app
    depends_on:
      dbb: { condition: service_healthy }
  db:
    image: db
    depends_on:
      api: { condition: service_ready }
";
    let errors = vigil_up::compose::parse(text, "compose.yml").expect_err("invalid");
    let lines: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "compose.yml:5:7: service api depends on \"dbb\", which is no other service or x-vigil-groups group",
            "compose.yml:9:25: service db: unknown condition \"service_ready\"; expected service_started, service_healthy or service_completed_successfully",
        ]
    );
    let errors =
        vigil_up::compose::parse("services:\n  api: [1, 2\n", "compose.yml").expect_err("bad YAML");
    assert!(errors.to_string().starts_with("compose.yml:"), "{errors}");
}

#[test]
fn compose_durations_out_of_range_are_located() {
    let text = "\
services:
  api:
    image: app
    stop_grace_period: 10000000000000000000s
    healthcheck:
      test: [\"CMD\", \"true\"]
      interval: 1ns
";
    let errors = vigil_up::compose::parse(text, "compose.yml").expect_err("invalid");
    let lines: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "compose.yml:4:24: service api: stop_grace_period must be from 0s to 1h, found \"10000000000000000000s\"",
            "compose.yml:7:17: service api: interval must be from 10ms to 24h, found \"1ns\"",
        ]
    );
}

#[test]
fn a_compose_cycle_is_reported() {
    let text = "\
services:
  a:
    image: x
    depends_on: [b]
  b:
    image: x
    depends_on: [a]
";
    let errors = vigil_up::compose::parse(text, "compose.yml").expect_err("a cycle");
    assert!(
        errors
            .to_string()
            .contains("dependency cycle: a → b → a; nothing can start first"),
        "{errors}"
    );
}

#[test]
fn every_value_of_the_wrong_type_is_located() {
    let text = "\
services:
  api:
    image: app
    x-vigil-probe: 8080
    healthcheck:
      test: [\"CMD\", \"true\"]
  db:
    image: db
    restart: [always]
";
    let errors = vigil_up::compose::parse(text, "compose.yml").expect_err("invalid");
    let lines: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[0].starts_with("compose.yml:4:5: service api: x-vigil-probe: invalid type"),
        "{lines:#?}"
    );
    assert!(
        lines[1].starts_with("compose.yml:9:5: service db: restart: invalid type"),
        "{lines:#?}"
    );
}
