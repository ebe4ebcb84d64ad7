//! A Rust service that embeds vigil-health: its own checks (one an async closure), the probe
//! endpoints mounted into its own axum app, a subscriber to status changes, and graceful shutdown.
//!
//! Run it with `cargo run -p vigil-health --example embedded_service`, then
//! `curl localhost:3000/health/ready` and press Ctrl-C to watch it drain.

use std::future::IntoFuture;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use vigil_health::shutdown::{Coordinator, Phase};
use vigil_health::{CheckSpec, Engine, Event, Report};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::builder()
        .node_id("orders-1")
        .version("2.3.0")
        .build();

    // A critical check: an async closure that looks at the service's own state.
    let queue_depth = Arc::new(AtomicU64::new(0));
    let depth = queue_depth.clone();
    engine.register(
        CheckSpec::new("order-queue")
            .description("orders waiting to be processed")
            .critical(true)
            .component("orders")
            .interval(Duration::from_secs(2))
            .timeout(Duration::from_secs(1)),
        move || {
            let depth = depth.load(Ordering::Relaxed);
            async move {
                match depth {
                    0..=99 => Report::pass(format!("{depth} orders queued")),
                    100..=999 => Report::warn(format!("{depth} orders queued")),
                    _ => Report::fail(format!("{depth} orders queued: workers stuck?")),
                }
                .with_detail("depth", depth)
            }
        },
    )?;
    // A TTL check the service refreshes itself from its worker loop.
    engine.register_ttl(
        CheckSpec::new("worker-loop").component("orders"),
        Duration::from_secs(10),
    )?;
    engine.start();

    // React to status changes: here, log them.
    let mut events = engine.subscribe();
    tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            if let Event::StatusChanged {
                from, to, message, ..
            } = event
            {
                println!("status {from} -> {to}: {message}");
            }
        }
    });

    // The worker: processes orders and refreshes its TTL check.
    let worker_engine = engine.clone();
    tokio::spawn(async move {
        loop {
            queue_depth.store(rand_depth(), Ordering::Relaxed);
            let _ = worker_engine.update_ttl("worker-loop", vigil_health::Verdict::Pass, None);
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
    });

    // The service's own routes plus vigil's /health*, /livez, /readyz and /metrics.
    let app = Router::new()
        .route("/orders", get(|| async { "[]" }))
        .merge(vigil_health::http::router(engine.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("serving on http://{}/health", listener.local_addr()?);

    // Shutdown: readiness turns 503 first, then the server drains, then a final hook runs.
    let shutdown = Coordinator::new().with_engine(engine.clone());
    shutdown.listen_for_signals();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .into_future(),
    );
    shutdown.hook(Phase::PreShutdown, "let-load-balancers-notice", || async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok::<_, std::io::Error>(())
    });
    shutdown.component("http", 10, Duration::from_secs(10), move || async move {
        let _ = stop.send(());
        server
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    });
    shutdown.hook(Phase::PostShutdown, "flush", || async {
        println!("flushed");
        Ok::<_, std::io::Error>(())
    });
    let report = shutdown.run().await;
    println!(
        "stopped ({}): {} steps, clean: {}",
        report.reason,
        report.steps.len(),
        report.is_clean()
    );
    Ok(())
}

/// A queue depth that wanders, so the status moves.
fn rand_depth() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    u64::from(nanos % 150)
}
