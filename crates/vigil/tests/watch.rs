//! `vigil watch` as a process against a running three-node cluster: piped output is plain,
//! repeated frames; Ctrl-C ends it cleanly.

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cluster::{alive_count, three_voters};
use common::{free_port, lines_of, node_config, send_signal, wait_for, Agent, VIGIL};

/// Three voters whose first sees all three alive under a leader.
fn cluster() -> [Agent; 3] {
    let agents = three_voters(free_port(), |id, cluster| {
        node_config(
            id,
            &format!("[[checks]]\nname = \"self\"\nprobe = \"http://127.0.0.1:{{port}}/health/live\"\ninterval = \"500ms\"\n{cluster}"),
        )
    });
    let mut last = String::new();
    wait_for(Duration::from_secs(20), || {
        let (_, leader) = agents[0].get("/v1/leader");
        let (_, members) = agents[0].get("/v1/members");
        let formed = alive_count(&members) == 3 && leader["leader_id"].is_string();
        last = format!("leader {leader}, members {members}");
        formed.then_some(())
    })
    .unwrap_or_else(|| panic!("three members alive under a leader; last seen {last}"));
    agents
}

#[test]
fn watch_prints_plain_frames_when_piped_and_stops_on_ctrl_c() {
    let agents = cluster();
    let addr = format!("http://{}", agents[0].addr);

    let out = Command::new(VIGIL)
        .args([
            "watch",
            "--addr",
            &addr,
            "--interval",
            "200ms",
            "--count",
            "2",
        ])
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains('\x1b'),
        "no escape codes when piped:\n{text}"
    );
    assert_eq!(text.matches("MEMBER").count(), 2, "two frames:\n{text}");
    for id in ["a", "b", "c"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("{id} ")) && l.contains(" alive ")),
            "member {id} alive:\n{text}"
        );
    }
    assert!(
        text.contains("(leader)") && text.contains("quorum"),
        "{text}"
    );
    assert!(text.lines().any(|l| l.starts_with("self ")), "{text}");

    let mut child = Command::new(VIGIL)
        .args(["watch", "--addr", &addr, "--interval", "200ms"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines_of(child.stdout.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut framed = false;
    while !framed && Instant::now() < deadline {
        framed = rx
            .recv_timeout(Duration::from_millis(100))
            .is_ok_and(|l| l.starts_with("MEMBER"));
    }
    assert!(framed, "a first frame within 10 s");
    send_signal(child.id(), "-INT");
    let exited = wait_for(Duration::from_secs(10), || child.try_wait().unwrap());
    assert_eq!(exited.and_then(|s| s.code()), Some(0), "Ctrl-C exits 0");
}
