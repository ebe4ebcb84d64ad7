//! `/v1/neighbors`, the neighbour metrics and `neighbor_changed` events, over a monitor probing real
//! loopback sockets.

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::net::TcpListener;
use tower::ServiceExt;
use vigil_api::{Api, Token};
use vigil_health::Engine;
use vigil_probe::neighbors::{NeighborSpec, Neighbors, Protocol};

/// Every wait in these tests is bounded by this.
const BOUND: Duration = Duration::from_secs(10);

fn app(engine: &Engine, neighbors: Option<Neighbors>) -> Router {
    Api {
        engine: engine.clone(),
        token: Token::new(None),
        read_token: Token::default(),
        cluster: None,
        leadership: None,
        neighbors,
        catalog: None,
        instances: None,
        webhooks: Default::default(),
        reload: Default::default(),
    }
    .router()
}

async fn get(app: &Router, path: &str) -> (StatusCode, String) {
    let response = app
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// A port nothing listens on.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn without_neighbours_the_endpoint_is_not_found() {
    let engine = Engine::builder().stagger(false).build();
    let (code, body) = get(&app(&engine, None), "/v1/neighbors").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert!(body.contains("error"), "{body}");
}

#[tokio::test]
async fn states_events_and_metrics_follow_the_probes() {
    let engine = Engine::builder().stagger(false).build();
    let up = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fast = |name: &str, address: String| NeighborSpec {
        interval: Duration::from_millis(50),
        ..NeighborSpec::new(name, address, Protocol::Tcp)
    };
    let neighbors = Neighbors::new(vec![
        fast("up", up.local_addr().unwrap().to_string()),
        fast("down", format!("127.0.0.1:{}", closed_port().await)),
    ])
    .unwrap();
    let app = app(&engine, Some(neighbors.clone()));
    let response = app
        .clone()
        .oneshot(Request::get("/v1/events").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let mut events = response.into_body();
    neighbors.start(Some(&engine));

    let mut text = String::new();
    tokio::time::timeout(BOUND, async {
        while !text.contains(r#""to":"unavailable""#) {
            let frame = events.frame().await.expect("stream open").unwrap();
            if let Some(data) = frame.data_ref() {
                text.push_str(&String::from_utf8_lossy(data));
            }
        }
    })
    .await
    .expect("neighbour events arrive");
    assert!(text.contains("event: neighbor_changed"), "{text}");
    assert!(text.contains(r#""neighbor":"down""#), "{text}");
    let degraded = text.find(r#""to":"degraded""#).expect("degraded first");
    let unavailable = text.find(r#""to":"unavailable""#).unwrap();
    assert!(degraded < unavailable, "{text}");

    let (code, body) = get(&app, "/v1/neighbors").await;
    assert_eq!(code, StatusCode::OK);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["total"], 2);
    assert_eq!(body["unavailable"], 1);
    assert_eq!(body["neighbors"][0]["name"], "up");
    assert_eq!(body["neighbors"][0]["state"], "healthy");
    assert_eq!(body["neighbors"][1]["state"], "unavailable");
    assert!(
        body["neighbors"][1]["consecutive_failures"]
            .as_u64()
            .unwrap()
            >= 3
    );

    let (_, metrics) = get(&app, "/metrics").await;
    assert!(metrics.contains(r#"vigil_neighbor_state{neighbor="down",state="unavailable"} 1"#));
    assert!(metrics.contains(r#"vigil_neighbor_state{neighbor="up",state="healthy"} 1"#));
    assert!(metrics.contains("# TYPE vigil_neighbor_failures_total counter"));
    neighbors.stop();
}
