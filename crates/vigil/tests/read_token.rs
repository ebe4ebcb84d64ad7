//! An agent with a read token, as a stranger, a kubelet and an operator meet it: without a token
//! only the probe endpoints answer, and they tell nothing of the checks (`?verbose` needs the
//! token); the read token opens every read — the direct lane's `/metrics` and discovery answers
//! included — but no write; the API token reads and writes; the CLI reads with `--token` or
//! `VIGIL_TOKEN` and says in one line what it lacks; a reload replaces the read token at once.

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

mod common;

use std::process::Command;

use common::{free_port, http, Agent, TOKEN, VIGIL};

const READ: &str = "read-token-abcdef";

fn config(read_token: &str) -> String {
    format!(
        "[node]\nid = \"guarded\"\n[api]\nbind = \"127.0.0.1:{{port}}\"\ntoken = \"{TOKEN}\"\n\
         read_token = \"{read_token}\"\n\
         [cluster]\nbind = \"127.0.0.1:{}\"\nrole = \"voter\"\nvoters = [\"guarded\"]\n\
         [[checks]]\nname = \"billing-db\"\nprobe = \"ttl\"\nttl = \"1h\"\ncritical = true\n",
        free_port()
    )
}

fn status(agent: &Agent, path: &str, token: Option<&str>) -> u16 {
    http(agent.addr, "GET", path, token, "").unwrap().0
}

#[test]
fn reads_need_a_token_but_probes_answer_without_telling_what_failed() {
    let agent = Agent::start(&config(READ));
    let (code, _) = http(
        agent.addr,
        "PUT",
        "/v1/checks/billing-db/fail",
        Some(TOKEN),
        "password authentication failed",
    )
    .unwrap();
    assert_eq!(code, 200);

    // A stranger: every read refused with a JSON reason, through the router and the direct lane.
    for path in [
        "/v1/checks/billing-db",
        "/health",
        "/health/checks",
        "/metrics",
        "/v1/services",
        "/v1/services/web",
        "/v1/health/service/web",
        "/v1/catalog/services",
        "/v1/openapi.json",
        "/livez?verbose",
        "/readyz?verbose",
    ] {
        let (code, body) = http(agent.addr, "GET", path, None, "").unwrap();
        assert_eq!(code, 401, "{path}: {body}");
        assert!(body.contains("\"error\""), "{path}: {body}");
        assert_eq!(status(&agent, path, Some("wrong-token")), 401, "{path}");
    }
    // The probes a kubelet polls answer, with the status only.
    let (code, body) = http(agent.addr, "GET", "/health/ready", None, "").unwrap();
    assert_eq!(code, 503, "{body}");
    assert!(!body.contains("billing"), "{body}");
    assert!(!body.contains("password"), "{body}");
    let (code, body) = http(agent.addr, "GET", "/readyz", None, "").unwrap();
    assert_eq!(code, 503);
    assert!(!body.contains("billing"), "{body}");
    assert_eq!(status(&agent, "/livez", None), 200);
    assert_eq!(status(&agent, "/health/live", None), 200);
    // The dashboard's page loads, to ask for the token.
    assert_eq!(status(&agent, "/", None), 200);

    // The read token reads everything, in any of the forms clients send it.
    let (code, body) = http(agent.addr, "GET", "/health/ready", Some(READ), "").unwrap();
    assert_eq!(code, 503);
    assert!(body.contains("billing-db"), "{body}");
    let (_, body) = http(agent.addr, "GET", "/readyz?verbose", Some(READ), "").unwrap();
    assert!(body.contains("[-]billing-db"), "{body}");
    for path in ["/metrics", "/v1/services", "/v1/catalog/services"] {
        assert_eq!(status(&agent, path, Some(READ)), 200, "{path}");
        assert_eq!(status(&agent, path, Some(TOKEN)), 200, "{path}");
    }
    assert_eq!(
        status(&agent, &format!("/v1/services?token={READ}"), None),
        200
    );
    // ... but writes only with the API token.
    let (code, body) = http(
        agent.addr,
        "PUT",
        "/v1/checks/billing-db/pass",
        Some(READ),
        "",
    )
    .unwrap();
    assert_eq!(code, 401, "{body}");

    // The CLI: one line saying what is missing, then the same command with the token.
    let addr = format!("http://{}", agent.addr);
    let refused = Command::new(VIGIL)
        .args(["services", "--addr", &addr])
        .env_remove("VIGIL_TOKEN")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("token"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    let read = Command::new(VIGIL)
        .args(["checks", "--addr", &addr])
        .env("VIGIL_TOKEN", READ)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&read.stdout);
    assert!(stdout.contains("billing-db"), "{stdout}");
}

#[test]
fn a_reload_replaces_the_read_token_at_once() {
    let agent = Agent::start(&config(READ));
    let port = agent.addr.port();
    let path = std::env::temp_dir()
        .join(format!("vigil-cli-{}", std::process::id()))
        .join(format!("agent-{port}.toml"));
    let rotated = config("rotated-read-token").replace("{port}", &port.to_string());
    // The gossip port of the running agent cannot change on reload: keep the file's.
    let running = std::fs::read_to_string(&path).unwrap();
    let keep = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("bind = \"127.0.0.1:") && !l.contains(&port.to_string()))
            .unwrap()
            .to_owned()
    };
    let rotated = rotated.replace(&keep(&rotated), &keep(&running));
    std::fs::write(&path, rotated).unwrap();
    let out = Command::new(VIGIL)
        .args(["reload", "--addr", &format!("http://{}", agent.addr)])
        .env("VIGIL_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("api.read_token"));
    assert_eq!(status(&agent, "/v1/services", Some(READ)), 401);
    let (code, body) = http(
        agent.addr,
        "GET",
        "/v1/services",
        Some("rotated-read-token"),
        "",
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
}
