//! Reloading a running agent's config, as an operator does it: SIGHUP after editing the file adds,
//! changes and removes checks while an unchanged one (moved in the file) keeps its state; `vigil
//! reload` with a broken file or a changed listening address is refused with the reason, and the
//! running checks stay; a section applied only at start is named as such.

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

mod common;

use std::net::SocketAddr;
use std::process::Child;
use std::time::Duration;

use common::{free_port, http, spawn_agent, temp_file, vigil, wait_for, TOKEN};
use serde_json::Value;

const BOUND: Duration = Duration::from_secs(20);

fn check_names(api: SocketAddr) -> Vec<String> {
    let (_, body) = http(api, "GET", "/health/checks", None, "").unwrap();
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let mut names: Vec<String> = body["checks"]
        .as_object()
        .map(|checks| checks.keys().cloned().collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// The check's state and how many results its history holds.
fn state_of(api: SocketAddr, check: &str) -> (String, usize) {
    let (_, body) = http(api, "GET", &format!("/v1/checks/{check}"), None, "").unwrap();
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let state = body["check"]["state"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let history = body["history"].as_array().map_or(0, Vec::len);
    (state, history)
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_reload_applies_checks_keeps_unchanged_ones_and_refuses_what_it_cannot_apply() {
    let port = free_port();
    let api: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let head = format!("[node]\nid = \"reloaded\"\n[api]\nbind = \"{api}\"\ntoken = \"{TOKEN}\"\n");
    let job = "[[checks]]\nname = \"job\"\nprobe = \"ttl\"\nttl = \"1h\"\n";
    let first = format!(
        "{head}{job}[[checks]]\nname = \"old\"\nprobe = \"ttl\"\nttl = \"1h\"\n\
         [[checks]]\nname = \"slow\"\nprobe = \"ttl\"\nttl = \"1h\"\n"
    );
    let path = temp_file(&format!("reload-{port}.toml"), &first);
    let workdir = path.with_extension("d");
    std::fs::create_dir_all(&workdir).unwrap();
    let log = workdir.join("agent.log");
    let agent = Running(spawn_agent(
        &path,
        &workdir,
        std::fs::File::create(&log).unwrap().into(),
        api,
    ));
    for check in ["job", "slow"] {
        let path = format!("/v1/checks/{check}/pass");
        let (code, _) = http(api, "PUT", &path, Some(TOKEN), "").unwrap();
        assert_eq!(code, 200);
    }
    let (state, history) = state_of(api, "job");
    assert_eq!(state, "passing");
    assert!(history >= 1);

    // Edited: `old` removed, `new` added, `slow` changed, `job` the same but moved last.
    let second = format!(
        "{head}[[checks]]\nname = \"new\"\nprobe = \"ttl\"\nttl = \"1h\"\n\
         [[checks]]\nname = \"slow\"\nprobe = \"ttl\"\nttl = \"2h\"\n{job}"
    );
    std::fs::write(&path, &second).unwrap();
    common::send_signal(agent.0.id(), "-HUP");
    let reloaded = wait_for(BOUND, || {
        let names = check_names(api);
        (names == ["job", "new", "slow"]).then_some(names)
    });
    assert!(
        reloaded.is_some(),
        "SIGHUP applies the checks: {:?}",
        check_names(api)
    );
    assert_eq!(
        state_of(api, "job"),
        ("passing".to_owned(), history),
        "an unchanged check keeps its state and history"
    );
    assert_eq!(
        state_of(api, "slow").0,
        "unknown",
        "a changed check starts again"
    );

    let addr = format!("http://{api}");
    let reload = |args: &[&str]| {
        let mut all = vec!["reload", "--addr", addr.as_str(), "--token", TOKEN];
        all.extend_from_slice(args);
        let out = vigil(&all);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    // Nothing changed: nothing to do.
    let (ok, out, err) = reload(&[]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("added none, changed none, removed none, 3 unchanged"),
        "{out}"
    );

    // A broken file: every error with its position, and the checks stay.
    std::fs::write(
        &path,
        format!("{second}[[checks]]\nname = \"bad\"\nprobe = \"tcp://nowhere\"\n"),
    )
    .unwrap();
    let (ok, _, err) = reload(&[]);
    assert!(!ok, "{err}");
    assert!(
        err.contains(&format!("{}:", path.display())) && err.contains("the running config stays"),
        "{err}"
    );
    assert_eq!(check_names(api), ["job", "new", "slow"]);

    // A listening address cannot change while the agent runs.
    let moved = second.replace(&api.to_string(), &format!("127.0.0.1:{}", free_port()));
    std::fs::write(&path, moved).unwrap();
    let (ok, _, err) = reload(&[]);
    assert!(
        !ok && err.contains("api.bind cannot change while the agent runs"),
        "{err}"
    );

    // A webhook, a neighbour, a log level and a new token apply at once; the shutdown settings
    // at the next start, and said so.
    let (code, _) = http(api, "GET", "/v1/neighbors", None, "").unwrap();
    assert_eq!(code, 404, "no neighbour yet");
    let hooked = format!(
        "{}[shutdown]\ndrain = \"1s\"\n[[webhooks]]\nurl = \"http://127.0.0.1:9/hook\"\n[[neighbors]]\nname = \"db\"\naddress = \"127.0.0.1:9\"\nprotocol = \"tcp\"\n",
        second
            .replace(TOKEN, "a-new-token")
            .replace("id = \"reloaded\"\n", "id = \"reloaded\"\nlog = \"debug\"\n")
    );
    let debug_lines = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains("DEBUG"))
            .count()
    };
    assert_eq!(debug_lines(), 0, "the agent logs at info");
    std::fs::write(&path, hooked).unwrap();
    let (ok, out, err) = reload(&[]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("applied at once: api.token, [[neighbors]], node.log, [[webhooks]]"),
        "{out}"
    );
    assert!(
        out.contains("taking effect when the agent restarts: [shutdown]"),
        "{out}"
    );
    let (code, body) = http(api, "GET", "/v1/neighbors", None, "").unwrap();
    assert!(code == 200 && body.contains("\"db\""), "{code} {body}");
    assert!(
        wait_for(BOUND, || (debug_lines() > 0).then_some(())).is_some(),
        "the agent logs at debug once reloaded"
    );
    let (code, _) = http(api, "PUT", "/v1/checks/job/pass", Some(TOKEN), "").unwrap();
    assert_eq!(code, 401, "the old token no longer passes");
    let (code, _) = http(api, "PUT", "/v1/checks/job/pass", Some("a-new-token"), "").unwrap();
    assert_eq!(code, 200, "the new one does");
    let (_, metrics) = http(api, "GET", "/metrics", None, "").unwrap();
    assert!(
        metrics.contains("vigil_webhook_deliveries_total{url=\"http://127.0.0.1:9/hook\""),
        "the webhook runs"
    );
    assert_eq!(state_of(api, "job").0, "passing");
}
