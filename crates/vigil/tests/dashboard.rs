//! The dashboard in a real headless Chromium, driven over WebDriver (chromedriver), against a
//! real three-node cluster: it loads cleanly, shows every member, follows a check flip and a
//! killed node live, and says so when its agent goes away.

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{free_port, http, wait_for, Agent, TOKEN};
use serde_json::{json, Value};

/// Fast protocol timings so a killed node is declared dead within a test's patience.
const FAST: &str = r#"
heartbeat_interval = "100ms"
phi_min_std_dev = "50ms"
probe_timeout = "200ms"
suspicion_min = "400ms"
suspicion_max = "2s"
gossip_interval = "50ms"
"#;

/// How long the page may take to show a change the agent already knows about.
const LIVE: Duration = Duration::from_secs(2);

fn agent(id: &str, gossip: u16, seed: u16) -> Agent {
    Agent::start(&format!(
        r#"[node]
id = "{id}"
[api]
bind = "127.0.0.1:{{port}}"
token = "{TOKEN}"
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
component = "api"
[cluster]
bind = "127.0.0.1:{gossip}"
seeds = ["127.0.0.1:{seed}"]
role = "voter"
voters = ["a", "b", "c"]
{FAST}"#
    ))
}

fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("VIGIL_REQUIRE_TOOLS").is_none(),
            "{name} is required (Debian packages `chromium` and `chromium-driver`)"
        );
        eprintln!("skipped: {name} not installed");
    }
    found
}

/// A chromedriver process and one browser session in it, spoken to in W3C WebDriver JSON.
struct Browser {
    driver: Child,
    client: reqwest::Client,
    session: String,
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
        let base = format!("http://127.0.0.1:{port}");
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
            client,
            session: format!("{base}/session/{session}"),
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.session);
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

    /// Evaluates `script` until it returns `want`, for at most `limit`: how long that took, or
    /// the last value seen.
    async fn until(&self, script: &str, want: Value, limit: Duration) -> Result<Duration, Value> {
        let start = Instant::now();
        let deadline = start + limit;
        loop {
            let got = self.eval(script).await;
            if got == want {
                return Ok(start.elapsed());
            }
            if Instant::now() >= deadline {
                return Err(got);
            }
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
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self._profile);
    }
}

fn member_state(agent: &Agent, id: &str) -> Option<String> {
    let (_, body) = agent.get("/v1/members");
    body["members"]
        .as_array()?
        .iter()
        .find(|m| m["id"] == id)
        .and_then(|m| m["state"].as_str().map(str::to_owned))
}

fn put(addr: SocketAddr, path: &str) {
    let (code, body) = http(addr, "PUT", path, Some(TOKEN), "").unwrap();
    assert_eq!(code, 200, "PUT {path}: {body}");
}

fn dom_state(kind: &str, name: &str) -> String {
    format!(
        "const s = document.querySelector('tr[data-{kind}=\"{name}\"] .state'); return s ? s.dataset.state : null;"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_the_cluster_live_in_a_real_browser() {
    let (Some(_), Some(chromedriver)) = (tool("chromium"), tool("chromedriver")) else {
        return;
    };
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let a = agent("a", ports[0], ports[0]);
    let b = agent("b", ports[1], ports[0]);
    let mut c = agent("c", ports[2], ports[0]);
    for node in [&a, &b, &c] {
        put(node.addr, "/v1/checks/deploy/pass");
    }
    wait_for(Duration::from_secs(20), || {
        ["a", "b", "c"]
            .iter()
            .all(|id| member_state(&a, id).as_deref() == Some("alive"))
            .then_some(())
    })
    .expect("a sees all three members alive");

    let browser = Browser::start(&chromedriver).await;
    browser.goto(&format!("http://{}/", a.addr)).await;
    browser
        .until(
            "return document.querySelectorAll('tr[data-member]').length",
            json!(3),
            Duration::from_secs(10),
        )
        .await
        .expect("the page lists the three members");
    browser
        .until(
            "return document.querySelector('#conn').dataset.conn",
            json!("live"),
            Duration::from_secs(10),
        )
        .await
        .expect("the event stream connects");
    for id in ["a", "b", "c"] {
        assert_eq!(
            browser.eval(&dom_state("member", id)).await,
            json!("alive"),
            "member {id}"
        );
    }
    browser
        .until(&dom_state("check", "deploy"), json!("passing"), LIVE)
        .await
        .expect("the deploy check shows passing");

    // A check flips: the agent learns it at the PUT; the page must follow within LIVE.
    put(a.addr, "/v1/checks/deploy/fail");
    match browser
        .until(&dom_state("check", "deploy"), json!("critical"), LIVE)
        .await
    {
        Ok(took) => eprintln!("check flip on the page {took:?} after the PUT"),
        Err(got) => panic!("the flipped check shows critical within {LIVE:?}, saw {got}"),
    }
    browser
        .until(
            "return document.querySelector('#status').dataset.state",
            json!("unhealthy"),
            LIVE,
        )
        .await
        .expect("the node's status follows");

    // A node dies: once a's membership says so, the page must follow within LIVE.
    let killed = Instant::now();
    c.child.kill().unwrap();
    c.child.wait().unwrap();
    wait_for(Duration::from_secs(15), || {
        (member_state(&a, "c").as_deref() == Some("dead")).then_some(())
    })
    .expect("a declares c dead");
    match browser
        .until(&dom_state("member", "c"), json!("dead"), LIVE)
        .await
    {
        Ok(took) => eprintln!(
            "killed node dead on the page {took:?} after the API, {:?} after the kill",
            killed.elapsed()
        ),
        Err(got) => panic!("the killed node shows dead within {LIVE:?}, saw {got}"),
    }
    let events = browser
        .eval("return [...document.querySelectorAll('#events li')].map(li => li.textContent).join('\\n')")
        .await;
    let events = events.as_str().unwrap_or_default();
    assert!(
        events.contains("check deploy: passing → critical"),
        "{events}"
    );
    assert!(events.contains("member c down"), "{events}");

    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    browser.screenshot("dashboard-screenshot.png").await;
    browser.resize(390, 844).await;
    browser.screenshot("dashboard-screenshot-phone.png").await;
    browser.resize(1280, 900).await;

    // A node outside any cluster: the page shows its checks, and asks for no cluster endpoint.
    let mut solo = Agent::start(
        "[node]\nid = \"solo\"\n[api]\nbind = \"127.0.0.1:{port}\"\n[[checks]]\nname = \"self\"\nprobe = \"http://127.0.0.1:{port}/health/live\"\ninterval = \"500ms\"\n",
    );
    browser.goto(&format!("http://{}/", solo.addr)).await;
    browser
        .until(
            "return !document.querySelector('#no-cluster').hidden && document.querySelector('#conn').dataset.conn",
            json!("live"),
            Duration::from_secs(10),
        )
        .await
        .expect("a lone node's page says it runs alone");
    browser
        .until(
            &dom_state("check", "self"),
            json!("passing"),
            Duration::from_secs(10),
        )
        .await
        .expect("a lone node's checks");
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");

    // The agent serving the page goes away: the page must say so rather than show stale data.
    solo.child.kill().unwrap();
    solo.child.wait().unwrap();
    let lost = browser
        .until(
            "const c = document.querySelector('#conn').dataset.conn; return c === 'reconnecting' || c === 'lost'",
            json!(true),
            Duration::from_secs(10),
        )
        .await;
    assert!(
        lost.is_ok(),
        "the page reports the lost connection: {lost:?}"
    );
    browser.screenshot("dashboard-screenshot-lost.png").await;
    drop((a, b));
}
