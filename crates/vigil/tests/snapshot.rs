//! Backups as an operator takes and uses them: `vigil snapshot save` on a three-voter cluster with
//! instances, a session and an election; `inspect` says what the file holds; after a mistake
//! (an instance deregistered) `restore` through a member that is not a voter brings it back on
//! every agent; a file cut short or changed is refused by `inspect` and `restore` alike, and the
//! registry stays as it was.

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

mod common;

use std::time::Duration;

use common::raft::{agreed_leader, three_voters, Node, SETTLE, VOTERS};
use common::{free_port, http, vigil, wait_for, TOKEN};
use serde_json::Value;

fn run(args: &[&str]) -> (bool, String, String) {
    let out = vigil(args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The instance ids of `api` on every node, once they all agree; `None` if they never do.
fn agreed_instances(nodes: &[Node]) -> Option<Vec<String>> {
    wait_for(SETTLE, || {
        let seen: Vec<Vec<String>> = nodes
            .iter()
            .map(|n| n.instances("api", false).unwrap_or_default())
            .collect();
        seen.windows(2)
            .all(|w| w[0] == w[1])
            .then(|| seen[0].clone())
    })
}

#[test]
fn a_backup_restores_what_a_mistake_removed_and_a_damaged_one_changes_nothing() {
    let (mut nodes, seeds, dir) = three_voters("snapshot");
    let leader = agreed_leader(&nodes);
    nodes.push(Node::start("m1", &dir, free_port(), &seeds, false, &VOTERS));
    for id in ["a1", "a2"] {
        let (code, body) = nodes[leader].register("api", id, r#", "checks": []"#);
        assert!(code == 201 || code == 200, "{body}");
    }
    let (code, body) = http(
        nodes[leader].api,
        "POST",
        "/v1/sessions",
        Some(TOKEN),
        r#"{"holder": "backup-test", "ttl": "1h"}"#,
    )
    .unwrap();
    assert_eq!(code, 201, "{body}");
    let session: Value = serde_json::from_str(&body).unwrap();
    let campaign = format!(
        r#"{{"candidate": "c1", "session": "{}"}}"#,
        session["id"].as_str().unwrap()
    );
    let (code, body) = http(
        nodes[leader].api,
        "POST",
        "/v1/elections/jobs/campaign",
        Some(TOKEN),
        &campaign,
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        agreed_instances(&nodes).as_deref(),
        Some(&["a1".to_owned(), "a2".to_owned()][..])
    );

    let file = dir.join("registry.snap");
    let file = file.to_str().unwrap();
    let voter = format!("http://{}", nodes[1].api);
    let (ok, out, err) = run(&["snapshot", "save", file, "--addr", &voter, "--token", TOKEN]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("1 services, 2 instances"), "{out}");
    let (ok, out, err) = run(&["snapshot", "inspect", file]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("1 services, 2 instances") && out.contains("1 sessions, 1 elections"),
        "{out}"
    );

    // The mistake.
    let (code, body) = http(
        nodes[leader].api,
        "DELETE",
        "/v1/services/api/a2",
        Some(TOKEN),
        "",
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        agreed_instances(&nodes).as_deref(),
        Some(&["a1".to_owned()][..])
    );

    // A damaged copy is refused by inspect and by restore, and the registry stays.
    let bytes = std::fs::read(file).unwrap();
    let damaged = dir.join("damaged.snap");
    let mut changed = bytes.clone();
    let at = changed.len() - 5;
    changed[at] ^= 0x20;
    let cut = dir.join("cut.snap");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(&damaged, &changed).unwrap();
    let member = format!("http://{}", nodes[3].api);
    for (bad, why) in [(&damaged, "changed or damaged"), (&cut, "cut short")] {
        let bad = bad.to_str().unwrap();
        let (ok, _, err) = run(&["snapshot", "inspect", bad]);
        assert!(!ok && err.contains(why), "{err}");
        let (ok, _, err) = run(&[
            "snapshot", "restore", bad, "--addr", &member, "--token", TOKEN,
        ]);
        assert!(
            !ok && err.contains(why) && err.contains("nothing was changed"),
            "{err}"
        );
    }
    // The agent checks for itself too.
    let (code, body) = http(
        nodes[3].api,
        "POST",
        "/v1/snapshot",
        Some(TOKEN),
        "not a snapshot",
    )
    .unwrap();
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        agreed_instances(&nodes).as_deref(),
        Some(&["a1".to_owned()][..])
    );

    // The sound copy brings a2 back on every agent, through a member that is not a voter.
    let (ok, out, err) = run(&[
        "snapshot", "restore", file, "--addr", &member, "--token", TOKEN,
    ]);
    assert!(ok, "{out}{err}");
    assert!(out.starts_with("restored "), "{out}");
    assert_eq!(
        agreed_instances(&nodes).as_deref(),
        Some(&["a1".to_owned(), "a2".to_owned()][..])
    );
    let election = wait_for(Duration::from_secs(5), || {
        let (_, body) = nodes[2].get("/v1/elections/jobs")?;
        (body["leader"]["id"] == "c1").then_some(body)
    });
    assert!(election.is_some(), "the election came back with its leader");

    // Without the token, neither a save nor a restore.
    let (ok, _, err) = run(&["snapshot", "save", file, "--addr", &voter]);
    assert!(!ok && err.contains("401"), "{err}");
}
