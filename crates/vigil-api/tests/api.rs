//! The agent's HTTP API as a client sees it: codes, JSON bodies, the token guard, the event stream.

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use vigil_api::{Api, Token};
use vigil_health::{CheckSpec, CheckState, Engine, Report};

const TOKEN: &str = "s3cret-token";

fn app(engine: &Engine, token: Option<&str>) -> Router {
    Api {
        engine: engine.clone(),
        token: Token::new(token.map(str::to_owned)),
        read_token: Token::default(),
        cluster: None,
        leadership: None,
        neighbors: None,
        catalog: None,
        instances: None,
        webhooks: Default::default(),
        reload: Default::default(),
    }
    .router()
}

async fn call(
    app: &Router,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, json)
}

fn engine() -> Engine {
    Engine::builder().node_id("n1").stagger(false).build()
}

#[tokio::test]
async fn mutating_endpoints_need_the_token() {
    let engine = engine();
    let app = app(&engine, Some(TOKEN));
    let def = r#"{"probe": "ttl", "ttl": "30s"}"#;

    let (code, body) = call(&app, Method::PUT, "/v1/checks/job", None, def).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("missing API token"));

    let (code, body) = call(&app, Method::PUT, "/v1/checks/job", Some("wrong"), def).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid API token");
    assert!(
        engine.snapshot().check("job").is_none(),
        "a rejected request changes nothing"
    );

    let (code, body) = call(&app, Method::PUT, "/v1/checks/job", Some(TOKEN), def).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert!(engine.snapshot().check("job").is_some());

    let (code, _) = call(&app, Method::PUT, "/v1/checks/job/pass", None, "").await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, _) = call(&app, Method::DELETE, "/v1/checks/job", None, "").await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert!(engine.snapshot().check("job").is_some());

    let (code, _) = call(&app, Method::GET, "/health", None, "").await;
    assert_ne!(code, StatusCode::UNAUTHORIZED, "reads stay open");
}

#[tokio::test]
async fn ttl_updates_drive_the_check_and_the_node_status() {
    let engine = engine();
    let app = app(&engine, Some(TOKEN));
    let def = r#"{"probe": "ttl", "ttl": "30s", "critical": true}"#;
    assert_eq!(
        call(&app, Method::PUT, "/v1/checks/job", Some(TOKEN), def)
            .await
            .0,
        StatusCode::CREATED
    );
    assert_eq!(
        call(&app, Method::GET, "/health/ready", None, "").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );

    let (code, body) = call(
        &app,
        Method::PUT,
        "/v1/checks/job/pass",
        Some(TOKEN),
        "batch 1 done",
    )
    .await;
    assert_eq!(
        (code, &body["state"]),
        (StatusCode::OK, &Value::from("passing"))
    );
    let (code, body) = call(&app, Method::GET, "/health", None, "").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body["checks"]["job"]["message"], "batch 1 done");

    let (_, body) = call(
        &app,
        Method::PUT,
        "/v1/checks/job/warn",
        Some(TOKEN),
        r#"{"note": "slow"}"#,
    )
    .await;
    assert_eq!(body["state"], "warning");
    assert_eq!(
        call(&app, Method::GET, "/health", None, "").await.1["status"],
        "degraded"
    );

    let (_, body) = call(&app, Method::PUT, "/v1/checks/job/fail", Some(TOKEN), "").await;
    assert_eq!(
        body["state"], "critical",
        "a pushed fail is critical at once"
    );
    let (code, body) = call(&app, Method::GET, "/health", None, "").await;
    assert_eq!(
        (code, &body["status"]),
        (StatusCode::SERVICE_UNAVAILABLE, &Value::from("unhealthy"))
    );
}

#[tokio::test]
async fn bad_requests_get_json_errors_that_name_the_problem() {
    let engine = engine();
    engine
        .register(CheckSpec::new("probe-run"), || async { Report::pass("ok") })
        .unwrap();
    let app = app(&engine, None);
    let cases = [
        (
            Method::PUT,
            "/v1/checks/x",
            r#"{"probe": "ftp://x"}"#,
            StatusCode::BAD_REQUEST,
            "probe",
        ),
        (
            Method::PUT,
            "/v1/checks/x",
            r#"{"probe": "memory", "interval": "5x"}"#,
            StatusCode::BAD_REQUEST,
            "invalid duration",
        ),
        (
            Method::PUT,
            "/v1/checks/x",
            r#"{"probe": "memory", "colour": "red"}"#,
            StatusCode::BAD_REQUEST,
            "unknown field `colour`",
        ),
        (
            Method::PUT,
            "/v1/checks/x",
            "not json",
            StatusCode::BAD_REQUEST,
            "invalid check definition",
        ),
        (
            Method::PUT,
            "/v1/checks/bad%20name",
            r#"{"probe": "memory"}"#,
            StatusCode::BAD_REQUEST,
            "invalid check name",
        ),
        (
            Method::PUT,
            "/v1/checks/missing/pass",
            "",
            StatusCode::NOT_FOUND,
            "no check named \"missing\"",
        ),
        (
            Method::PUT,
            "/v1/checks/probe-run/pass",
            "",
            StatusCode::CONFLICT,
            "not a TTL check",
        ),
        (
            Method::PUT,
            "/v1/checks/probe-run/maybe",
            "",
            StatusCode::NOT_FOUND,
            "use pass, warn or fail",
        ),
        (
            Method::DELETE,
            "/v1/checks/missing",
            "",
            StatusCode::NOT_FOUND,
            "no check named",
        ),
        (
            Method::GET,
            "/v1/checks/missing",
            "",
            StatusCode::NOT_FOUND,
            "no check named",
        ),
        (
            Method::GET,
            "/nowhere",
            "",
            StatusCode::NOT_FOUND,
            "no endpoint at /nowhere",
        ),
        (
            Method::POST,
            "/health",
            "",
            StatusCode::METHOD_NOT_ALLOWED,
            "POST is not allowed",
        ),
    ];
    for (method, path, body, code, needle) in cases {
        let (got, json) = call(&app, method.clone(), path, None, body).await;
        assert_eq!(got, code, "{method} {path}: {json}");
        let error = json["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(needle),
            "{method} {path}: {error:?} lacks {needle:?}"
        );
    }
}

#[tokio::test]
async fn checks_are_registered_replaced_read_and_removed_at_run_time() {
    let engine = engine();
    engine.start();
    let app = app(&engine, None);
    let def = r#"{"probe": "memory", "max_used": 1.0, "interval": "1s", "component": "system"}"#;
    assert_eq!(
        call(&app, Method::PUT, "/v1/checks/mem", None, def).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        call(&app, Method::PUT, "/v1/checks/mem", None, def).await.0,
        StatusCode::OK
    );

    let mut events = engine.subscribe();
    tokio::time::timeout(Duration::from_secs(10), async {
        while engine.snapshot().check("mem").map(|c| c.state) != Some(CheckState::Passing) {
            let _ = events.recv().await;
        }
    })
    .await
    .expect("the registered check runs and passes");

    let (code, body) = call(&app, Method::GET, "/v1/checks/mem", None, "").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body["check"]["state"], "passing");
    assert_eq!(body["check"]["component"], "system");
    assert!(!body["history"].as_array().unwrap().is_empty());

    assert_eq!(
        call(&app, Method::DELETE, "/v1/checks/mem", None, "")
            .await
            .0,
        StatusCode::OK
    );
    let (_, body) = call(&app, Method::GET, "/health/checks", None, "").await;
    assert_eq!(body["total"], 0);
}

#[tokio::test]
async fn metrics_are_served_as_prometheus_text() {
    let engine = engine();
    engine
        .register(CheckSpec::new("db"), || async { Report::pass("ok") })
        .unwrap();
    let response = app(&engine, None)
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(text.contains("vigil_check_state{check=\"db\",state=\"unknown\",critical=\"false\"} 1"));
}

#[tokio::test]
async fn the_event_stream_opens_with_the_status_and_carries_changes() {
    let engine = engine();
    let app = app(&engine, None);
    let response = app
        .clone()
        .oneshot(Request::get("/v1/events").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut body = response.into_body();

    engine
        .register_ttl(
            CheckSpec::new("job").critical(true),
            Duration::from_secs(30),
        )
        .unwrap();
    engine
        .update_ttl("job", vigil_health::Verdict::Pass, None)
        .unwrap();

    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !text.contains(r#""to":"healthy""#) {
            let frame = body.frame().await.expect("stream open").unwrap();
            if let Some(data) = frame.data_ref() {
                text.push_str(&String::from_utf8_lossy(data));
            }
        }
    })
    .await
    .expect("events arrive");
    let first = text.find("event: status\n").expect("opening status event");
    let registered = text
        .find("event: check_registered")
        .expect("registration event");
    let changed = text.find("event: check_changed").expect("check event");
    assert!(first < registered && registered < changed, "{text}");
    assert!(text.contains(r#""to":"passing""#), "{text}");
}

mod arbitrary_input {
    use super::*;
    use proptest::prelude::*;

    /// Bodies near the valid shape reach deeper into the decoder than random bytes alone.
    fn body() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            proptest::collection::vec(
                (
                    "probe|interval|timeout|ttl|max_used|expect_status|headers|critical|name",
                    r#""[a-z:/0-9.]{0,12}"|[0-9]{1,3}|true|\[\]|\{\}|null|-1|1e999"#
                ),
                0..5
            )
            .prop_map(|pairs| {
                let fields: Vec<String> =
                    pairs.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
                format!("{{{}}}", fields.join(", "))
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn check_definitions_never_cause_a_server_error(body in body(), verdict in "pass|warn|fail|[a-z]{0,5}") {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let engine = engine();
                let app = app(&engine, None);
                let (code, json) = call(&app, Method::PUT, "/v1/checks/fuzz", None, &body).await;
                prop_assert!(code.is_success() || code.is_client_error(), "{code} for {body:?}");
                if code.is_client_error() {
                    prop_assert!(json["error"].is_string(), "JSON error for {body:?}");
                }
                let (code, _) = call(&app, Method::PUT, &format!("/v1/checks/fuzz/{verdict}"), None, &body).await;
                prop_assert!(code.is_success() || code.is_client_error(), "{code} for {verdict} {body:?}");
                Ok(())
            })?;
        }
    }
}

#[tokio::test]
async fn registering_past_the_check_limit_is_refused_with_json() {
    let engine = Engine::builder().node_id("n1").max_checks(2).build();
    let app = app(&engine, None);
    let def = r#"{"probe": "ttl", "ttl": "30s"}"#;
    for name in ["a", "b"] {
        let (code, body) = call(&app, Method::PUT, &format!("/v1/checks/{name}"), None, def).await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
    }
    let (code, body) = call(&app, Method::PUT, "/v1/checks/c", None, def).await;
    assert_eq!(code, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("max_checks") && error.contains('2'),
        "{error}"
    );
    assert!(engine.snapshot().check("c").is_none());

    // Replacing a check at the limit is no new check; removing one makes room.
    let (code, body) = call(&app, Method::PUT, "/v1/checks/a", None, def).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (code, _) = call(&app, Method::DELETE, "/v1/checks/b", None, "").await;
    assert_eq!(code, StatusCode::OK);
    let (code, body) = call(&app, Method::PUT, "/v1/checks/c", None, def).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
}
