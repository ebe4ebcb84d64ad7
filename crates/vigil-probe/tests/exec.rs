//! `exec:` probes running real commands (`sh`, `true`, `head`).

mod common;

use vigil_health::Verdict;

#[tokio::test]
async fn exit_codes_follow_consul() {
    let cases = [
        ("exec:true", Verdict::Pass, "exit code 0"),
        (
            "exec:sh -c 'echo all good'",
            Verdict::Pass,
            "exit code 0: all good",
        ),
        (
            "exec:sh -c 'echo degraded; exit 1'",
            Verdict::Warn,
            "exit code 1: degraded",
        ),
        (
            "exec:sh -c 'echo broken >&2; exit 2'",
            Verdict::Fail,
            "exit code 2: broken",
        ),
        ("exec:sh -c 'exit 255'", Verdict::Fail, "exit code 255"),
    ];
    for (target, verdict, message) in cases {
        let report = common::run_default(target).await;
        assert_eq!(report.verdict, verdict, "{target}: {report:?}");
        assert_eq!(report.message, message, "{target}");
    }
    let report = common::run_default("exec:sh -c 'exit 3'").await;
    assert_eq!(report.details["exit_code"], 3);
}

#[tokio::test]
async fn killed_by_a_signal_fails() {
    let report = common::run_default("exec:sh -c 'kill -9 $$'").await;
    assert_eq!(report.verdict, Verdict::Fail, "{report:?}");
    assert_eq!(report.message, "killed by signal 9");
    assert_eq!(report.details["signal"], 9);
    assert!(!report.details.contains_key("exit_code"));
}

#[tokio::test]
async fn stdout_comes_before_stderr() {
    let report = common::run_default("exec:sh -c 'echo err >&2; echo out'").await;
    assert_eq!(report.verdict, Verdict::Pass);
    assert_eq!(report.message, "exit code 0: out\nerr");
    assert_eq!(report.details["output"], "out\nerr");
}

#[tokio::test]
async fn missing_command_fails_clearly() {
    let report = common::run_default("exec:vigil-no-such-command-4242 --flag").await;
    assert_eq!(report.verdict, Verdict::Fail, "{report:?}");
    assert_eq!(
        report.message,
        "command not found: `vigil-no-such-command-4242`"
    );
    assert!(report.error.is_some());
}

#[tokio::test]
async fn no_shell_runs() {
    // A shell would expand `$HOME` and treat `;` as a separator; exec passes them as they are.
    let report = common::run_default("exec:echo $HOME ; exit 3").await;
    assert_eq!(report.verdict, Verdict::Pass, "{report:?}");
    assert_eq!(report.message, "exit code 0: $HOME ; exit 3");
}

#[tokio::test]
async fn long_output_is_truncated_at_4_kib_with_a_note() {
    // 10 KiB of output: 5120 lines of "a".
    let report = common::run_default("exec:sh -c 'yes a | head -c 10240; exit 1'").await;
    assert_eq!(report.verdict, Verdict::Warn, "{}", report.message);
    let output = report.details["output"].as_str().expect("output is text");
    let kept = output
        .strip_suffix(" … [output truncated at 4 KiB]")
        .expect("truncation note");
    assert!(kept.len() <= 4096, "{}", kept.len());
    assert!(kept.len() >= 4090, "{}", kept.len());
    assert!(kept.chars().all(|c| c == 'a' || c == '\n'));
    assert!(report.message.starts_with("exit code 1: a\na\n"));
    assert!(report.message.ends_with("[output truncated at 4 KiB]"));
}

#[tokio::test]
async fn output_far_beyond_the_pipe_buffer_does_not_block_the_command() {
    // 4 MiB on stdout and on stderr: a probe that stopped reading would leave the command stuck.
    let report = common::run_default(
        "exec:sh -c 'head -c 4194304 /dev/zero; head -c 4194304 /dev/zero >&2; exit 1'",
    )
    .await;
    assert_eq!(report.verdict, Verdict::Warn);
    assert!(report.message.ends_with("[output truncated at 4 KiB]"));
}

#[tokio::test]
async fn a_command_hanging_past_the_timeout_is_cut() {
    // The engine drops the probe future on timeout; the probe must not need anything else.
    let spec =
        vigil_probe::ProbeSpec::parse("exec:sleep 600", &Default::default()).expect("parses");
    let vigil_probe::Built::Probe(probe) = spec.build().expect("builds") else {
        panic!("not a ttl target");
    };
    let result = tokio::time::timeout(std::time::Duration::from_millis(200), probe.probe()).await;
    assert!(result.is_err(), "sleep 600 finished: {result:?}");
}

#[tokio::test]
async fn a_child_left_holding_the_pipes_does_not_hold_the_report() {
    // The background `sleep` keeps stdout open after `sh` exits; the report comes anyway (after a
    // short grace), long before the sleep ends, and the sleep is killed with the command's group.
    let report = common::run_default("exec:sh -c 'sleep 60 & echo $$'").await;
    assert_eq!(report.verdict, Verdict::Pass, "{report:?}");
    let group = report.details["output"]
        .as_str()
        .and_then(|pid| pid.parse::<i32>().ok())
        .expect("the output is the shell's pid");
    wait_until_group_is_gone(group).await;
}

/// A check whose command forks a long sleeper and then waits for it: the timeout (the probe future
/// dropped, as the engine and `vigil probe` do) kills the whole process group, grandchildren
/// included, not only the direct child.
#[tokio::test]
async fn a_timeout_kills_the_command_and_everything_it_started() {
    let dir = std::env::temp_dir().join(format!("vigil-exec-group-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let pid_file = dir.join("group");
    let _ = std::fs::remove_file(&pid_file);
    // `$$` is the shell's pid, which is the group's id: the probe makes the shell a group leader.
    let target = format!(
        "exec:sh -c 'sleep 1000 & sleep 1000 & echo $$ > {}; wait'",
        pid_file.display()
    );
    let spec = vigil_probe::ProbeSpec::parse(&target, &Default::default()).expect("parses");
    let vigil_probe::Built::Probe(probe) = spec.build().expect("builds") else {
        panic!("not a ttl target");
    };

    // Run the probe until the shell has written its pid and both sleepers run, then drop it.
    let group = {
        let run = probe.probe();
        tokio::pin!(run);
        let deadline = tokio::time::Instant::now() + common::BOUND;
        loop {
            let written = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|text| text.trim().parse::<i32>().ok());
            if let Some(group) = written.filter(|&group| live_members(group) >= 3) {
                break group;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the command did not start its sleepers"
            );
            tokio::select! {
                report = &mut run => panic!("the command ended early: {report:?}"),
                () = tokio::time::sleep(std::time::Duration::from_millis(20)) => {}
            }
        }
    };
    wait_until_group_is_gone(group).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Processes of a process group that are alive (zombies, dead and waiting for a parent to reap
/// them, do not count), read from /proc.
fn live_members(group: i32) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("stat")).ok())
        .filter(|stat| {
            // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
            let Some((_, after)) = stat.rsplit_once(')') else {
                return false;
            };
            let fields: Vec<&str> = after.split_whitespace().collect();
            fields.first().is_some_and(|&state| state != "Z")
                && fields.get(2).and_then(|g| g.parse::<i32>().ok()) == Some(group)
        })
        .count()
}

/// Polls /proc until no live process of `group` remains, at most 10 s.
async fn wait_until_group_is_gone(group: i32) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let left = live_members(group);
        if left == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{left} processes of group {group} still run 10 s after the probe ended"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
