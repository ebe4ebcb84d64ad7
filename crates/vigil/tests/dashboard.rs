//! The dashboard in a real headless Chromium, driven over WebDriver (chromedriver), against a
//! real three-node cluster: it loads cleanly, shows every member, follows a check flip, a
//! service instance whose process dies and a killed node live, says so when its agent goes
//! away, and fits a phone's width.

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::cluster::{member_state, three_voters, ABC, FAST_GOSSIP};
use common::tools::tool;
use common::{free_port, http, node_config, wait_for, Agent, TOKEN, VIGIL};
use serde_json::{json, Value};

/// How long the page may take to show a change the agent already knows about.
const LIVE: Duration = Duration::from_secs(2);

/// How to install what the test drives, for the message when it is required and missing.
const CHROMIUM: &str = "Debian packages `chromium` and `chromium-driver`";

/// Window sizes the page must fit without any panel scrolling sideways: a phone, a tablet in
/// portrait, a laptop.
const WINDOWS: [(u32, u32, &str); 3] = [
    (390, 844, "phone"),
    (768, 1024, "tablet"),
    (1280, 900, "laptop"),
];

/// What does not fit the window, one line each; empty when everything does. Every panel's
/// content fits its width (nothing hidden behind a sideways scroll), and each member's score and
/// role, the leader's star and each check's score are on screen inside their panel.
const OVERFLOWS: &str = r#"
const problems = [];
const page = document.documentElement;
if (page.scrollWidth > page.clientWidth) {
  problems.push(`page: ${page.scrollWidth} px wide in a ${page.clientWidth} px window`);
}
for (const panel of document.querySelectorAll('main section')) {
  const title = panel.querySelector('h2').firstChild.textContent.trim();
  if (panel.scrollWidth > panel.clientWidth) {
    problems.push(`${title}: content ${panel.scrollWidth} px wide in a ${panel.clientWidth} px panel`);
  }
}
const mustShow = [
  ['tr[data-member] td[data-label="score"]', 'member score'],
  ['tr[data-member] td[data-label="role"]', 'member role'],
  ['tr[data-member] .leader', 'leader star'],
  ['tr[data-check] td[data-label="score"]', 'check score'],
];
for (const [selector, what] of mustShow) {
  const cells = [...document.querySelectorAll(selector)];
  if (cells.length === 0) problems.push(`no ${what} on the page`);
  for (const cell of cells) {
    const r = cell.getBoundingClientRect();
    const p = cell.closest('section').getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || r.left < p.left || r.right > p.right) {
      problems.push(`${what} of ${cell.closest('tr').dataset.member || cell.closest('tr').dataset.check} not shown inside its panel`);
    }
  }
}
return problems;
"#;

/// The config of voter `id`, with a TTL check to flip and a check of its own API.
fn config(id: &str, cluster: &str) -> String {
    node_config(
        id,
        &format!(
            r#"token = "{TOKEN}"
[[checks]]
name = "deploy"
probe = "ttl"
ttl = "1h"
critical = true
component = "release"
[[checks]]
name = "self"
probe = "http://127.0.0.1:{{port}}/health/live"
interval = "500ms"
component = "system"
{cluster}{FAST_GOSSIP}"#
        ),
    )
}

/// A chromedriver process and one browser session in it, spoken to in W3C WebDriver JSON.
struct Browser {
    driver: Child,
    driver_addr: SocketAddr,
    client: reqwest::Client,
    /// The session's path on the driver, `/session/ID`.
    session_path: String,
    _profile: PathBuf,
}

impl Browser {
    async fn start(chromedriver: &PathBuf) -> Browser {
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver_addr = SocketAddr::from(([127, 0, 0, 1], port));
        let base = format!("http://{driver_addr}");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = match client.get(format!("{base}/status")).send().await {
                Ok(r) => r.json::<Value>().await.ok(),
                Err(_) => None,
            };
            if ready.is_some_and(|v| v["value"]["ready"] == true) {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver ready within 20 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = std::env::temp_dir().join(format!("vigil-chromium-{port}"));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {"args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--hide-scrollbars",
                format!("--user-data-dir={}", profile.display()),
            ]}
        }}});
        let created: Value = client
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("a browser session: {created}"))
            .to_owned();
        Browser {
            driver,
            driver_addr,
            client,
            session_path: format!("/session/{session}"),
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("http://{}{}{path}", self.driver_addr, self.session_path);
        let request = self.client.request(method, url);
        let request = if body.is_null() {
            request
        } else {
            request.json(&body)
        };
        let reply: Value = request.send().await.unwrap().json().await.unwrap();
        assert!(
            reply["value"]["error"].is_null(),
            "WebDriver {path}: {reply}"
        );
        reply["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({ "url": url }))
            .await;
    }

    async fn eval(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            json!({ "script": script, "args": [] }),
        )
        .await
    }

    /// Evaluates `script` until it returns `want`, for at most `limit`, and returns how long
    /// that took; fails the test naming `what` and the last value seen otherwise.
    async fn wait_until(&self, what: &str, script: &str, want: Value, limit: Duration) -> Duration {
        let start = Instant::now();
        let deadline = start + limit;
        loop {
            let got = self.eval(script).await;
            if got == want {
                return start.elapsed();
            }
            assert!(
                Instant::now() < deadline,
                "{what} within {limit:?}, saw {got}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Browser console entries at level SEVERE (script errors, failed loads).
    async fn console_errors(&self) -> Vec<Value> {
        let log = self
            .call(
                reqwest::Method::POST,
                "/se/log",
                json!({ "type": "browser" }),
            )
            .await;
        log.as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["level"] == "SEVERE")
            .cloned()
            .collect()
    }

    async fn screenshot(&self, name: &str) -> PathBuf {
        let data = self
            .call(reqwest::Method::GET, "/screenshot", Value::Null)
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap())
            .unwrap();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .unwrap()
            .to_path_buf();
        let path = dir.join(name);
        std::fs::write(&path, png).unwrap();
        eprintln!("screenshot: {}", path.display());
        path
    }

    async fn resize(&self, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            json!({ "width": width, "height": height }),
        )
        .await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session is what makes chromedriver close the browser; killing the driver
        // alone would leave chromium running.
        let _ = http(self.driver_addr, "DELETE", &self.session_path, None, "");
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self._profile);
    }
}

fn put(addr: SocketAddr, path: &str) {
    let (code, body) = http(addr, "PUT", path, Some(TOKEN), "").unwrap();
    assert_eq!(code, 200, "PUT {path}: {body}");
}

/// A `vigil fake-service` process, killed when dropped.
struct FakeService(Child);

impl FakeService {
    fn start(port: u16) -> FakeService {
        let child = Command::new(VIGIL)
            .args(["fake-service", "--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("vigil fake-service starts");
        FakeService(child)
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for FakeService {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The states the Services panel shows for instance `id` of `service`: its own, then each of
/// its checks'.
fn instance_states(service: &str, id: &str) -> String {
    format!(
        "const row = document.querySelector('tr[data-instance=\"{service}/{id}\"]'); \
         if (!row) return null; \
         return [row.children[1].querySelector('.state').dataset.state, \
                 ...[...row.querySelectorAll('td.checks .state')].map(s => s.dataset.state)];"
    )
}

fn dom_state(kind: &str, name: &str) -> String {
    format!(
        "const s = document.querySelector('tr[data-{kind}=\"{name}\"] .state'); return s ? s.dataset.state : null;"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_the_cluster_live_in_a_real_browser() {
    let (Some(_), Some(chromedriver)) =
        (tool("chromium", CHROMIUM), tool("chromedriver", CHROMIUM))
    else {
        return;
    };
    let [a, b, mut c] = three_voters(free_port(), config);
    for node in [&a, &b, &c] {
        put(node.addr, "/v1/checks/deploy/pass");
    }
    a.wait_until(
        "/v1/members",
        Duration::from_secs(20),
        "a sees all three members alive",
        |_, members| {
            ABC.iter()
                .all(|id| member_state(members, id) == Some("alive"))
        },
    );

    let browser = Browser::start(&chromedriver).await;
    browser.goto(&format!("http://{}/", a.addr)).await;
    browser
        .wait_until(
            "the page lists the three members",
            "return document.querySelectorAll('tr[data-member]').length",
            json!(3),
            Duration::from_secs(10),
        )
        .await;
    browser
        .wait_until(
            "the event stream connects",
            "return document.querySelector('#conn').dataset.conn",
            json!("live"),
            Duration::from_secs(10),
        )
        .await;
    for id in ABC {
        assert_eq!(
            browser.eval(&dom_state("member", id)).await,
            json!("alive"),
            "member {id}"
        );
    }
    browser
        .wait_until(
            "the deploy check shows passing",
            &dom_state("check", "deploy"),
            json!("passing"),
            LIVE,
        )
        .await;

    // A service instance with a check of its own: the Services panel shows it passing, then
    // critical once its process is killed.
    let port = free_port();
    let mut web = FakeService::start(port);
    let registration = format!(
        r#"{{"name": "web", "id": "w1", "address": "127.0.0.1", "port": {port},
            "checks": [{{"name": "tcp", "probe": "tcp://127.0.0.1:{port}", "interval": "200ms"}}]}}"#
    );
    wait_for(Duration::from_secs(20), || {
        let (code, _) = http(a.addr, "POST", "/v1/services", Some(TOKEN), &registration).ok()?;
        (code == 201 || code == 200).then_some(())
    })
    .expect("the instance is registered once the voters have a leader");
    browser
        .wait_until(
            "the instance shows passing with its check",
            &instance_states("web", "w1"),
            json!(["passing", "passing"]),
            Duration::from_secs(10),
        )
        .await;
    let address = browser
        .eval("return document.querySelector('tr[data-instance=\"web/w1\"]').children[2].textContent + ' ' + document.querySelector('tr[data-instance=\"web/w1\"]').children[3].textContent")
        .await;
    assert_eq!(address, json!(format!("127.0.0.1:{port} a")));
    web.kill();
    let took = browser
        .wait_until(
            "the instance of the killed process shows critical",
            &instance_states("web", "w1"),
            json!(["critical", "critical"]),
            Duration::from_secs(10),
        )
        .await;
    eprintln!("killed service critical on the page {took:?} after the kill");

    // An election of users' services: the Elections panel shows its leader and token.
    let (code, session) = http(
        a.addr,
        "POST",
        "/v1/sessions",
        Some(TOKEN),
        r#"{"ttl": "30s"}"#,
    )
    .unwrap();
    assert_eq!(code, 201, "{session}");
    let session: serde_json::Value = serde_json::from_str(&session).unwrap();
    let campaign = format!(
        r#"{{"candidate": "head-1", "session": "{}"}}"#,
        session["id"].as_str().unwrap()
    );
    let (code, answer) = http(
        a.addr,
        "POST",
        "/v1/elections/head-servers/campaign",
        Some(TOKEN),
        &campaign,
    )
    .unwrap();
    assert_eq!(code, 200, "{answer}");
    let token = serde_json::from_str::<serde_json::Value>(&answer).unwrap()["token"].clone();
    browser
        .wait_until(
            "the election shows its leader and token",
            "const row = document.querySelector('tr[data-election=\"head-servers\"]'); \
             const id = row && row.querySelector('.leader-id'); \
             return id ? id.textContent + ' ' + row.children[2].textContent : null;",
            json!(format!("head-1 {token}")),
            LIVE,
        )
        .await;

    // A check flips: the agent learns it at the PUT; the page must follow within LIVE.
    put(a.addr, "/v1/checks/deploy/fail");
    let took = browser
        .wait_until(
            "the flipped check shows critical",
            &dom_state("check", "deploy"),
            json!("critical"),
            LIVE,
        )
        .await;
    eprintln!("check flip on the page {took:?} after the PUT");
    browser
        .wait_until(
            "the node's status follows",
            "return document.querySelector('#status').dataset.state",
            json!("unhealthy"),
            LIVE,
        )
        .await;

    // A node dies: once a's membership says so, the page must follow within LIVE.
    let killed = Instant::now();
    c.child.kill().unwrap();
    c.child.wait().unwrap();
    a.wait_until(
        "/v1/members",
        Duration::from_secs(15),
        "a declares c dead",
        |_, members| member_state(members, "c") == Some("dead"),
    );
    let took = browser
        .wait_until(
            "the killed node shows dead",
            &dom_state("member", "c"),
            json!("dead"),
            LIVE,
        )
        .await;
    eprintln!(
        "killed node dead on the page {took:?} after the API, {:?} after the kill",
        killed.elapsed()
    );
    // A dead node's last health report is not shown as if it were current.
    let health_and_score = browser
        .eval("const r = document.querySelector('tr[data-member=\"c\"]').children; return [r[2].textContent, r[3].textContent];")
        .await;
    assert_eq!(health_and_score, json!(["–", "–"]));
    let events = browser
        .eval("return [...document.querySelectorAll('#events li')].map(li => li.textContent).join('\\n')")
        .await;
    let events = events.as_str().unwrap_or_default();
    assert!(
        events.contains("check deploy: passing → critical"),
        "{events}"
    );
    assert!(events.contains("member c down"), "{events}");
    assert!(events.contains("service web: 0/1 passing"), "{events}");

    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    // Every score on the page is on one scale, 0 to 1, members' included.
    let member_scores = browser
        .eval("return [...document.querySelectorAll('tr[data-member] td[data-label=\"score\"]')].map(td => td.textContent)")
        .await;
    assert!(
        member_scores.as_array().unwrap().iter().all(|s| s == "–"
            || s.as_str()
                .is_some_and(|s| s.starts_with("0.") || s == "1.00")),
        "member scores from 0 to 1: {member_scores}"
    );
    // The overall score is told apart from a component that happens to be called "system".
    let scores = browser
        .eval(
            "return [...document.querySelectorAll('#scores [data-score]')].map(b => b.textContent)",
        )
        .await;
    let labels: Vec<String> = scores
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    assert!(
        labels.first().is_some_and(|l| l.starts_with("overall")),
        "the overall score comes first, named so: {labels:?}"
    );
    assert!(
        labels.iter().any(|l| l.starts_with("system")),
        "the system component is listed too: {labels:?}"
    );

    for (width, height, name) in WINDOWS {
        browser.resize(width, height).await;
        let inner = browser.eval("return window.innerWidth").await;
        // A new leader may still be on its way to the page after the kill: wait for it.
        browser
            .wait_until(
                &format!("everything fits a {name} window {inner} px wide"),
                OVERFLOWS,
                json!([]),
                Duration::from_secs(10),
            )
            .await;
        let file = if name == "laptop" {
            "dashboard-screenshot.png".to_owned()
        } else {
            format!("dashboard-screenshot-{name}.png")
        };
        browser.screenshot(&file).await;
    }

    // A node outside any cluster: the page shows its checks, and asks for no cluster endpoint.
    let mut solo = Agent::start(&node_config(
        "solo",
        "[[checks]]\nname = \"self\"\nprobe = \"http://127.0.0.1:{port}/health/live\"\ninterval = \"500ms\"\n",
    ));
    browser.goto(&format!("http://{}/", solo.addr)).await;
    browser
        .wait_until(
            "a lone node's page says it runs alone",
            "return !document.querySelector('#no-cluster').hidden && document.querySelector('#conn').dataset.conn",
            json!("live"),
            Duration::from_secs(10),
        )
        .await;
    browser
        .wait_until(
            "a lone node's checks",
            &dom_state("check", "self"),
            json!("passing"),
            Duration::from_secs(10),
        )
        .await;
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");

    // The agent serving the page goes away: the page must say so rather than show stale data.
    solo.child.kill().unwrap();
    solo.child.wait().unwrap();
    browser
        .wait_until(
            "the page reports the lost connection",
            "const c = document.querySelector('#conn').dataset.conn; return c === 'reconnecting' || c === 'lost'",
            json!(true),
            Duration::from_secs(10),
        )
        .await;
    browser.screenshot("dashboard-screenshot-lost.png").await;
    drop((a, b));
}
