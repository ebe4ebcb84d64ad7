//! Parsing: every kind, and every way a target or its options can be wrong.

use std::time::Duration;

use vigil_probe::{Built, ProbeOptions, ProbeSpec, ProbeSpecError};

fn parse(target: &str) -> Result<ProbeSpec, ProbeSpecError> {
    ProbeSpec::parse(target, &ProbeOptions::default())
}

fn parse_with(target: &str, options: ProbeOptions) -> Result<ProbeSpec, ProbeSpecError> {
    ProbeSpec::parse(target, &options)
}

/// The error for a target that must not parse, with its message checked to contain `parts`.
fn rejected(result: Result<ProbeSpec, ProbeSpecError>, parts: &[&str]) -> ProbeSpecError {
    let error = result.expect_err("target must be rejected");
    let message = error.to_string();
    for part in parts {
        assert!(
            message.contains(part),
            "{message:?} does not mention {part:?}"
        );
    }
    error
}

fn invalid_target(target: &str, reason: &str) {
    let error = rejected(parse(target), &[target, reason]);
    assert!(
        matches!(error, ProbeSpecError::InvalidTarget { .. }),
        "{error:?}"
    );
}

fn invalid_option(target: &str, options: ProbeOptions, option: &str, reason: &str) {
    let error = rejected(parse_with(target, options), &[option, reason]);
    assert!(
        matches!(error, ProbeSpecError::InvalidOption { option: o, .. } if o == option),
        "{error:?}"
    );
}

#[test]
fn every_kind_parses_and_displays_its_target() {
    let cases = [
        (
            "http://127.0.0.1:8080/healthz",
            "http",
            "http://127.0.0.1:8080/healthz",
        ),
        (
            "https://example.com/ready",
            "http",
            "https://example.com/ready",
        ),
        ("HTTP://Example.COM", "http", "http://example.com/"),
        ("tcp://127.0.0.1:5432", "tcp", "tcp://127.0.0.1:5432"),
        ("tcp://db.internal:5432/", "tcp", "tcp://db.internal:5432"),
        ("tcp://[::1]:6379", "tcp", "tcp://[::1]:6379"),
        ("exec:pg_isready -q", "exec", "exec:pg_isready -q"),
        ("exec:sh -c 'exit 1'", "exec", "exec:sh -c 'exit 1'"),
        ("disk:/", "disk", "disk:/"),
        ("disk:/var/lib/data", "disk", "disk:/var/lib/data"),
        ("memory", "memory", "memory"),
        ("  memory  ", "memory", "memory"),
        ("grpc://127.0.0.1:50051", "grpc", "grpc://127.0.0.1:50051"),
        (
            "grpc://[::1]:50051/app.Api",
            "grpc",
            "grpc://[::1]:50051/app.Api",
        ),
        (
            "postgres://app@db:5432/app",
            "postgres",
            "postgres://app@db:5432/app",
        ),
        (
            "postgresql://db/app?connect_timeout=3",
            "postgres",
            "postgresql://db/app?connect_timeout=3",
        ),
        (
            "redis://127.0.0.1:6379/2",
            "redis",
            "redis://127.0.0.1:6379/2",
        ),
        (
            "redis-pubsub://cache:6379",
            "redis-pubsub",
            "redis-pubsub://cache:6379",
        ),
        ("redis-kv://cache", "redis-kv", "redis-kv://cache"),
    ];
    for (target, kind, display) in cases {
        let spec = parse(target).unwrap_or_else(|error| panic!("{target}: {error}"));
        assert_eq!(spec.kind(), kind, "{target}");
        assert_eq!(spec.to_string(), display, "{target}");
        // The displayed target parses to the same spec.
        assert_eq!(parse(display).ok(), Some(spec), "{target}");
    }
}

#[test]
fn http_password_is_redacted_in_display_and_debug() {
    let spec = parse("http://user:secret@127.0.0.1/x").expect("parses");
    assert_eq!(spec.to_string(), "http://user:***@127.0.0.1/x");
    assert!(!format!("{spec:?}").contains("secret"));
}

#[test]
fn http_options_are_accepted() {
    let options = ProbeOptions {
        method: Some("PATCH".into()),
        headers: vec![
            ("X-Token".into(), "abc".into()),
            ("x-token".into(), "def".into()),
        ],
        body: Some("{}".into()),
        expect_status: Some(vec![100, 204, 599]),
        expect_body: Some("ok".into()),
        tls_skip_verify: true,
        ..ProbeOptions::default()
    };
    let spec = parse_with("https://127.0.0.1:8443/", options).expect("parses");
    assert_eq!(spec.kind(), "http");
    assert!(matches!(spec.build(), Ok(Built::Probe(_))));
}

#[test]
fn empty_and_unknown_targets_are_rejected_with_the_accepted_forms() {
    let forms = [
        "http://HOST",
        "tcp://HOST:PORT",
        "exec:COMMAND",
        "disk:/PATH",
        "memory",
        "ttl",
    ];
    assert_eq!(rejected(parse(""), &forms), ProbeSpecError::Empty);
    assert_eq!(rejected(parse("   "), &forms), ProbeSpecError::Empty);
    for (target, kind) in [
        ("ftp://example.com", "ftp"),
        ("127.0.0.1:8080", "127.0.0.1"),
        ("amqp://127.0.0.1:5672", "amqp"),
        ("/usr/bin/true", "/usr/bin/true"),
    ] {
        let error = rejected(parse(target), &forms);
        assert_eq!(
            error,
            ProbeSpecError::UnknownKind {
                kind: kind.into(),
                target: target.into()
            }
        );
        assert!(error
            .to_string()
            .contains(&format!("unknown probe kind `{kind}`")));
    }
}

#[test]
fn bad_http_targets_are_rejected() {
    invalid_target("http://", "empty host");
    invalid_target("http://:8080/", "empty host");
    invalid_target("http://127.0.0.1:99999/", "invalid port");
    invalid_target("https://[::1/", "invalid IPv6");
    let error = rejected(parse("http://"), &["expected http://HOST[:PORT][/PATH]"]);
    assert!(matches!(
        error,
        ProbeSpecError::InvalidTarget { kind: "http", .. }
    ));
}

#[test]
fn bad_http_options_are_rejected() {
    let target = "http://127.0.0.1/";
    let method = |m: &str| ProbeOptions {
        method: Some(m.into()),
        ..ProbeOptions::default()
    };
    invalid_option(
        target,
        method("GE T"),
        "method",
        "`GE T` is not an HTTP method",
    );
    invalid_option(target, method(""), "method", "is not an HTTP method");
    let header = |n: &str, v: &str| ProbeOptions {
        headers: vec![(n.into(), v.into())],
        ..ProbeOptions::default()
    };
    invalid_option(
        target,
        header("bad name", "x"),
        "headers",
        "`bad name` is not a valid header name",
    );
    invalid_option(
        target,
        header("", "x"),
        "headers",
        "is not a valid header name",
    );
    invalid_option(target, header("x-ok", "a\nb"), "headers", "value of `x-ok`");
    let status = |codes: Vec<u16>| ProbeOptions {
        expect_status: Some(codes),
        ..ProbeOptions::default()
    };
    invalid_option(target, status(vec![]), "expect_status", "is empty");
    invalid_option(
        target,
        status(vec![200, 99]),
        "expect_status",
        "99 is not an HTTP status code",
    );
    invalid_option(
        target,
        status(vec![600]),
        "expect_status",
        "600 is not an HTTP status code (100..=599)",
    );
}

#[test]
fn database_passwords_are_redacted() {
    for (target, shown) in [
        ("postgres://app:s3cret@db/app", "postgres://app:***@db/app"),
        ("redis://:s3cret@cache:6379", "redis://:***@cache:6379"),
        ("redis-kv://user:s3cret@cache", "redis-kv://user:***@cache"),
    ] {
        let spec = parse(target).expect("parses");
        assert_eq!(spec.to_string(), shown);
        assert!(!format!("{spec:?}").contains("s3cret"), "{spec:?}");
    }
}

#[test]
fn bad_grpc_and_database_targets_are_rejected() {
    invalid_target("grpc:127.0.0.1:50051", "missing `//`");
    invalid_target("grpc://127.0.0.1", "missing port");
    invalid_target("grpc://127.0.0.1:50051/a/b", "not a service name");
    invalid_target("postgres://db:notaport/app", "invalid");
    invalid_target("redis://cache:notaport", "");
    let half = ProbeOptions {
        tls_cert: Some("client.pem".into()),
        ..ProbeOptions::default()
    };
    invalid_option("grpc://127.0.0.1:50051", half, "tls_cert", "tls_key");
    let name = ProbeOptions {
        tls_server_name: Some("not a name".into()),
        ..ProbeOptions::default()
    };
    invalid_option(
        "grpc://127.0.0.1:50051",
        name,
        "tls_server_name",
        "not a DNS name",
    );
    let missing = ProbeOptions {
        tls_ca: Some("/nonexistent/ca.pem".into()),
        ..ProbeOptions::default()
    };
    let spec = parse_with("grpc://127.0.0.1:50051", missing).expect("parses");
    let error = spec.build().expect_err("an unreadable CA");
    assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
}

#[test]
fn bad_tcp_targets_are_rejected() {
    invalid_target("tcp:127.0.0.1:80", "missing `//`");
    invalid_target("tcp://db.internal", "missing port");
    invalid_target("tcp://db.internal:", "missing port");
    invalid_target("tcp://:80", "missing host");
    invalid_target(
        "tcp://db.internal:0",
        "port `0` is not a number in 1..=65535",
    );
    invalid_target("tcp://db.internal:70000", "port `70000`");
    invalid_target("tcp://db.internal:postgres", "port `postgres`");
    invalid_target("tcp://::1:80", "brackets");
    invalid_target("tcp://[::1]", "missing port");
    invalid_target("tcp://[::1:80", "missing `]`");
    invalid_target("tcp://[db.internal]:80", "not an IPv6 address");
    invalid_target("tcp://db.internal:80/path", "no path");
    invalid_target("tcp://user@db.internal:80", "no path, query or user");
    rejected(parse("tcp://x"), &["expected tcp://HOST:PORT"]);
}

#[test]
fn bad_exec_targets_are_rejected() {
    invalid_target("exec:", "missing command");
    rejected(parse("exec:   "), &["`exec:`: missing command"]);
    invalid_target("exec:''", "missing command");
    invalid_target("exec:echo 'unterminated", "cannot split the command");
    rejected(parse("exec:"), &["expected exec:COMMAND [ARG]..."]);
}

#[test]
fn bad_disk_and_memory_targets_and_options_are_rejected() {
    invalid_target("disk:", "missing path");
    invalid_target("disk:var/lib", "`var/lib` is not an absolute path");
    invalid_target("memory:", "takes no argument");
    invalid_target("memory:/proc", "takes no argument");
    for target in ["disk:/", "memory"] {
        for bad in [1.5, -0.1, f64::NAN, f64::INFINITY] {
            let options = ProbeOptions {
                max_used: Some(bad),
                ..ProbeOptions::default()
            };
            invalid_option(target, options, "max_used", "is not a ratio in 0..=1");
        }
        for good in [0.0, 0.5, 1.0] {
            let options = ProbeOptions {
                max_used: Some(good),
                ..ProbeOptions::default()
            };
            assert!(parse_with(target, options).is_ok(), "{target} {good}");
        }
    }
}

#[test]
fn ttl_needs_a_ttl_in_range() {
    let options = ProbeOptions {
        ttl: Some(Duration::from_secs(30)),
        ..ProbeOptions::default()
    };
    let spec = parse_with("ttl", options.clone()).expect("parses");
    assert_eq!(spec.kind(), "ttl");
    assert_eq!(spec.to_string(), "ttl");
    assert!(matches!(spec.build(), Ok(Built::Ttl(ttl)) if ttl == Duration::from_secs(30)));

    invalid_option("ttl", ProbeOptions::default(), "ttl", "missing");
    let zero = ProbeOptions {
        ttl: Some(Duration::ZERO),
        ..ProbeOptions::default()
    };
    invalid_option("ttl", zero, "ttl", "ttl must be from 1s to 7d, found 0s");
    // A TTL no timer can add to the clock is refused before it reaches one.
    let huge = ProbeOptions {
        ttl: Some(Duration::from_secs(10_000_000_000_000_000_000)),
        ..ProbeOptions::default()
    };
    invalid_option("ttl", huge, "ttl", "ttl must be from 1s to 7d");
    let error = rejected(
        parse_with("ttl:30s", options),
        &["takes no argument", "expected ttl"],
    );
    assert!(matches!(
        error,
        ProbeSpecError::InvalidTarget { kind: "ttl", .. }
    ));
}

#[test]
fn options_of_other_kinds_are_ignored() {
    let options = ProbeOptions {
        method: Some("POST".into()),
        max_used: Some(0.5),
        ttl: Some(Duration::from_secs(1)),
        ..ProbeOptions::default()
    };
    assert_eq!(
        parse_with("tcp://127.0.0.1:1", options)
            .expect("parses")
            .kind(),
        "tcp"
    );
}
