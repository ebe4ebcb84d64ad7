//! The Prometheus and Grafana assets in deploy/ against the real thing: promtool checks and
//! unit-tests the alert rules, a real Prometheus scrapes a three-node cluster and loads the
//! rules, and every metric named by the rules and the Grafana dashboard is one the agents serve.

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::cluster::{alive_count, three_voters};
use common::tools::{assert_succeeded, promtool, tool};
use common::{free_port, http, node_config, Agent};
use serde_json::Value;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// Three agents that see each other alive, each with a scored check.
fn cluster() -> [Agent; 3] {
    let agents = three_voters(free_port(), |id, cluster| {
        node_config(
            id,
            &format!(
                r#"[[checks]]
name = "self"
probe = "http://127.0.0.1:{{port}}/health/live"
interval = "500ms"
component = "api"
{cluster}"#
            ),
        )
    });
    for node in &agents {
        node.wait_until(
            "/v1/members",
            Duration::from_secs(20),
            "three members alive",
            |_, members| alive_count(members) == 3,
        );
        // Score series are served once a check has results to score.
        node.wait_until(
            "/health/checks",
            Duration::from_secs(20),
            "the self check scored",
            |_, checks| checks["checks"]["self"]["score"].is_number(),
        );
    }
    agents
}

fn run_promtool(promtool: &Path, args: &[&str]) {
    let out = Command::new(promtool)
        .args(args)
        .current_dir(deploy().join("prometheus"))
        .output()
        .unwrap();
    assert_succeeded(&out, &format!("promtool {args:?}"));
}

#[test]
fn alert_rules_pass_promtool_check_and_unit_tests() {
    let Some(promtool) = promtool() else {
        return;
    };
    run_promtool(&promtool, &["check", "rules", "vigil-rules.yml"]);
    run_promtool(&promtool, &["test", "rules", "vigil-rules.test.yml"]);
    run_promtool(&promtool, &["check", "config", "prometheus.yml"]);
}

/// A Prometheus server on loopback with its own data directory, killed on drop.
struct Prometheus {
    child: Child,
    base: String,
    dir: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Prometheus {
    fn start(binary: &Path, targets: &[String]) -> Prometheus {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("vigil-prometheus-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let rules = deploy().join("prometheus/vigil-rules.yml");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: vigil\n    static_configs:\n      - targets: [{}]\n",
            rules.display(),
            targets
                .iter()
                .map(|t| format!("\"{t}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts");
        Prometheus {
            child,
            base: format!("http://127.0.0.1:{port}"),
            dir,
        }
    }

    /// The JSON of a GET on the server's HTTP API (Null when it does not answer with JSON).
    async fn get(&self, client: &reqwest::Client, path: &str, query: &[(&str, &str)]) -> Value {
        match client
            .get(format!("{}{path}", self.base))
            .query(query)
            .send()
            .await
        {
            Ok(response) => response.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        }
    }

    /// The reply to the PromQL instant query `promql`.
    async fn query(&self, client: &reqwest::Client, promql: &str) -> Value {
        self.get(client, "/api/v1/query", &[("query", promql)])
            .await
    }
}

/// The `instance` labels of a PromQL instant query's result.
fn instances(reply: &Value) -> BTreeSet<String> {
    reply["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["metric"]["instance"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_every_node_and_loads_the_rules() {
    let Some(binary) = tool("prometheus", "Debian package `prometheus`") else {
        return;
    };
    let agents = cluster();
    let targets: Vec<String> = agents.iter().map(|a| a.addr.to_string()).collect();
    let prometheus = Prometheus::start(&binary, &targets);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let want: BTreeSet<String> = targets.iter().cloned().collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = BTreeSet::new();
    while seen != want {
        assert!(
            Instant::now() < deadline,
            "Prometheus returns every node within 60 s; saw {seen:?} of {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let reply = prometheus
            .query(&client, "vigil_system_health_score{job=\"vigil\"} == 1")
            .await;
        seen = instances(&reply);
    }
    let members = prometheus
        .query(&client, "vigil_cluster_members{state=\"alive\"} == 3")
        .await;
    assert_eq!(instances(&members), want, "{members}");

    let rules = prometheus.get(&client, "/api/v1/rules", &[]).await;
    let loaded: Vec<&Value> = rules["data"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .collect();
    assert_eq!(loaded.len(), 7, "{rules}");
    for rule in loaded {
        assert_eq!(rule["health"], "ok", "{rule}");
    }
}

/// Every sample name the agents serve on `/metrics` (histograms as `_bucket`, `_sum`, `_count`).
fn served(agents: &[Agent]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for agent in agents {
        let (code, text) = http(agent.addr, "GET", "/metrics", None, "").unwrap();
        assert_eq!(code, 200);
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            if end > 0 {
                names.insert(line[..end].to_owned());
            }
        }
    }
    names
}

/// The identifiers of a PromQL expression that name metrics vigil would serve: everything outside
/// strings and label matchers that starts with `vigil_`. Durations and numbers are skipped whole,
/// so `5m` is never read as an identifier.
fn vigil_metrics(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = expr.chars().peekable();
    let mut braces = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                let mut escaped = false;
                for d in chars.by_ref() {
                    if d == c && !escaped {
                        break;
                    }
                    escaped = d == '\\' && !escaped;
                }
            }
            '{' => braces += 1,
            '}' => braces = braces.saturating_sub(1),
            c if c.is_ascii_digit() => {
                while chars
                    .peek()
                    .is_some_and(|d| d.is_ascii_alphanumeric() || *d == '.')
                {
                    chars.next();
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' || c == '$' => {
                let mut word = String::from(c);
                while let Some(d) = chars.peek().copied() {
                    if d.is_ascii_alphanumeric() || d == '_' || d == ':' {
                        word.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if braces == 0 && word.starts_with("vigil_") {
                    out.push(word);
                }
            }
            _ => {}
        }
    }
    out
}

/// The `expr:` values of a rules file, block scalars (`expr: |`) included.
fn rule_expressions(yaml: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = yaml.lines().peekable();
    while let Some(line) = lines.next() {
        let Some((indent, rest)) = line.split_once("expr:") else {
            continue;
        };
        let rest = rest.trim();
        if rest == "|" || rest == ">" {
            let mut block = String::new();
            while let Some(next) = lines.peek() {
                let deeper = next.len() - next.trim_start().len() > indent.len();
                if !(deeper || next.trim().is_empty()) {
                    break;
                }
                block.push_str(next.trim());
                block.push('\n');
                lines.next();
            }
            out.push(block);
        } else {
            out.push(rest.to_owned());
        }
    }
    out
}

/// The `expr` of every target and annotation of a Grafana dashboard, and the `query` of its
/// template variables.
fn dashboard_expressions(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr" | "query", Value::String(s)) => out.push(s.clone()),
                    _ => dashboard_expressions(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| dashboard_expressions(v, out)),
        _ => {}
    }
}

#[test]
fn rules_and_dashboard_name_only_metrics_the_agents_serve() {
    let agents = cluster();
    let served = served(&agents);
    assert!(served.contains("vigil_cluster_phi_bucket"), "{served:?}");

    let rules = std::fs::read_to_string(deploy().join("prometheus/vigil-rules.yml")).unwrap();
    let rules = rule_expressions(&rules);
    assert_eq!(rules.len(), 7, "{rules:?}");
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(deploy().join("grafana/vigil-dashboard.json")).unwrap(),
    )
    .unwrap();
    let mut panels = Vec::new();
    dashboard_expressions(&dashboard, &mut panels);
    // The data source variable's `query` is the plugin type, not PromQL.
    panels.retain(|e| e != "prometheus");
    assert!(panels.len() >= 15, "{panels:?}");

    for expr in rules.iter().chain(&panels) {
        let names = vigil_metrics(expr);
        assert!(!names.is_empty(), "no vigil metric in {expr}");
        for name in names {
            assert!(
                served.contains(&name),
                "{name} in `{expr}` is not served by /metrics"
            );
        }
    }
}

#[test]
fn the_expression_tokenizer_skips_strings_labels_and_durations() {
    assert_eq!(
        vigil_metrics(
            r#"histogram_quantile(0.95, sum by (le) (rate(vigil_x_bucket{job="vigil_y",a=~'vigil_z'}[5m]))) > 1e3 and vigil_w"#
        ),
        ["vigil_x_bucket", "vigil_w"]
    );
    assert_eq!(
        rule_expressions(
            "  - expr: up == 0\n    for: 1m\n  - expr: |\n      a\n      or b\n    for: 2m\n"
        ),
        ["up == 0", "a\nor b\n"]
    );
}

/// Scrapes of a real agent at the same moment get one text (the uptime aside: it is written per
/// scrape), in a format promtool accepts.
#[test]
fn concurrent_scrapes_of_an_agent_get_one_text() {
    let agent = Agent::start(&node_config(
        "scraped",
        "[[checks]]\nname = \"job\"\nprobe = \"ttl\"\nttl = \"1h\"\n",
    ));
    let bodies: Vec<String> = std::thread::scope(|scope| {
        let scrapes: Vec<_> = (0..16)
            .map(|_| scope.spawn(|| http(agent.addr, "GET", "/metrics", None, "").unwrap()))
            .collect();
        scrapes
            .into_iter()
            .map(|scrape| {
                let (status, body) = scrape.join().unwrap();
                assert_eq!(status, 200);
                body
            })
            .collect()
    });
    common::tools::promtool_accepts(&bodies[0]);
    let without_uptime = |body: &str| {
        body.lines()
            .filter(|line| !line.starts_with("vigil_uptime_seconds "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let first = without_uptime(&bodies[0]);
    assert!(first.contains("vigil_check_state{check=\"job\""), "{first}");
    assert!(bodies.iter().all(|body| without_uptime(body) == first));
}
