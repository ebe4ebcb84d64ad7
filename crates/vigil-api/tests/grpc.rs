//! The gRPC surface over a real socket: `vigil.v1.Node/HealthCheck`, and `grpc.health.v1.Health`
//! for configured services, through tonic clients. (Python's grpcio client is run against it in
//! the `vigil` crate's tests.)

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use vigil_api::grpc::pb::node_client::NodeClient;
use vigil_api::grpc::pb::HealthRequest;
use vigil_api::grpc::GrpcSurface;
use vigil_health::{CheckSpec, Engine, Thresholds, Verdict};

/// Every wait in these tests is bounded by this.
const BOUND: Duration = Duration::from_secs(10);

/// An engine with TTL checks `db` and `cache`, served with the service `app.Api` = both.
async fn serve() -> (Engine, Channel, oneshot::Sender<()>) {
    let engine = Engine::builder().node_id("node-7").stagger(false).build();
    for name in ["db", "cache"] {
        let spec = CheckSpec::new(name)
            .critical(true)
            .thresholds(Thresholds::immediate());
        engine
            .register_ttl(spec, Duration::from_secs(3600))
            .unwrap();
    }
    engine.start();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let surface = GrpcSurface::new(engine.clone(), "voter")
        .service("app.Api", vec!["db".into(), "cache".into()]);
    tokio::spawn(surface.serve(listener, async move {
        let _ = stopped.await;
    }));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    (engine, channel, stop)
}

#[tokio::test]
async fn node_health_check_answers_with_status_id_and_role() {
    let (engine, channel, _stop) = serve().await;
    let mut client = NodeClient::new(channel);
    let ask = || HealthRequest {
        requester_id: "gateway-a".into(),
        timestamp: 0,
    };
    let answer = client.health_check(ask()).await.unwrap().into_inner();
    assert!(!answer.healthy);
    assert_eq!(answer.status, "starting");
    assert_eq!(answer.process_id, "node-7");
    assert_eq!(answer.role, "voter");
    assert!(answer.timestamp > 1_700_000_000, "{}", answer.timestamp);

    let mut events = engine.subscribe();
    engine.update_ttl("db", Verdict::Pass, None).unwrap();
    engine.update_ttl("cache", Verdict::Pass, None).unwrap();
    tokio::time::timeout(BOUND, async {
        while engine.snapshot().status().as_str() != "healthy" {
            let _ = events.recv().await;
        }
    })
    .await
    .unwrap();
    let answer = client.health_check(ask()).await.unwrap().into_inner();
    assert!(answer.healthy);
    assert_eq!(answer.status, "healthy");
}

/// The next status on a `Watch` stream.
async fn next(watch: &mut tonic::Streaming<HealthCheckResponse>) -> ServingStatus {
    let message = tokio::time::timeout(BOUND, watch.message()).await.unwrap();
    ServingStatus::try_from(message.unwrap().unwrap().status).unwrap()
}

#[tokio::test]
async fn a_configured_service_serves_when_all_its_checks_do() {
    let (engine, channel, _stop) = serve().await;
    let mut client = HealthClient::new(channel);
    let request = || HealthCheckRequest {
        service: "app.Api".into(),
    };
    let mut watch = client.watch(request()).await.unwrap().into_inner();
    assert_eq!(next(&mut watch).await, ServingStatus::NotServing);
    engine.update_ttl("db", Verdict::Pass, None).unwrap();
    engine.update_ttl("cache", Verdict::Pass, None).unwrap();
    assert_eq!(next(&mut watch).await, ServingStatus::Serving);
    engine.update_ttl("cache", Verdict::Fail, None).unwrap();
    assert_eq!(next(&mut watch).await, ServingStatus::NotServing);

    let answer = client.check(request()).await.unwrap().into_inner();
    assert_eq!(answer.status, ServingStatus::NotServing as i32);
    let unknown = client
        .check(HealthCheckRequest {
            service: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn watch_streams_end_when_the_server_stops() {
    let (_engine, channel, stop) = serve().await;
    let mut client = HealthClient::new(channel);
    let mut watch = client
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(tokio::time::timeout(BOUND, watch.message())
        .await
        .unwrap()
        .unwrap()
        .is_some());
    stop.send(()).unwrap();
    let end = tokio::time::timeout(BOUND, watch.message()).await.unwrap();
    assert!(matches!(end, Ok(None)), "{end:?}");
}
