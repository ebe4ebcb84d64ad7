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
    // short grace), long before the sleep ends.
    let report = common::run_default("exec:sh -c 'sleep 60 & echo $!'").await;
    assert_eq!(report.verdict, Verdict::Pass, "{report:?}");
    let pid = report.details["output"]
        .as_str()
        .expect("output is text")
        .to_owned();
    assert!(pid.parse::<u32>().is_ok(), "{pid:?}");
    // Clean up the sleep.
    let _ = std::process::Command::new("kill").arg(&pid).status();
}
