//! Health checks for a service: the engine behind vigil's probe endpoints.
//!
//! `vigil-health` keeps a registry of checks, runs each on its own schedule with a timeout,
//! turns results into per-check states with thresholds, aggregates them into one node status
//! (`starting`, `healthy`, `degraded`, `unhealthy`, `stopping`), scores, history and events, and
//! coordinates graceful shutdown. Endpoints read an immutable [`Snapshot`]; they never run probes.
//!
//! It is what the `vigil` agent runs, and it can be embedded in any tokio service:
//!
//! ```no_run
//! use std::time::Duration;
//! use vigil_health::{CheckSpec, Engine, Report};
//!
//! # async fn run() {
//! let engine = Engine::builder().node_id("api-1").version("1.4.2").build();
//! engine
//!     .register(
//!         CheckSpec::new("database").critical(true).interval(Duration::from_secs(5)),
//!         || async { Report::pass("SELECT 1 ok") },
//!     )
//!     .expect("valid check");
//! engine.start();
//! # #[cfg(feature = "axum")]
//! let app = axum::Router::<()>::new().merge(vigil_health::http::router(engine.clone()));
//! # }
//! ```
//!
//! What it guarantees: no probe can block another or the endpoints; memory per check is bounded
//! (history is capped by count and age); a result costs O(log n) in the number of checks.
//! What it is not: probe kinds beyond closures live in `vigil-probe`; cluster views in
//! `vigil-cluster`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod check;
mod engine;
mod event;
mod history;
pub mod metrics;
mod probe;
mod scheduler;
mod score;
pub mod shutdown;
mod snapshot;
mod status;
pub mod wire;

#[cfg(feature = "axum")]
pub mod http;

pub use check::{
    transition, valid_check_name, CheckResult, CheckSpec, CheckState, Streak, ThresholdError,
    Thresholds,
};
pub use engine::{
    Engine, EngineBuilder, EngineConfig, RegisterError, Registered, TtlError, UnknownCheck,
    DEFAULT_MAX_CHECKS,
};
pub use event::Event;
pub use history::{History, HistoryEntry};
pub use probe::{Details, Probe, ProbeFuture, Report, Verdict};
pub use scheduler::humanize;
pub use snapshot::{
    rfc3339, CheckJson, CheckKind, CheckStats, CheckView, Snapshot, LATENCY_BUCKETS,
};
pub use status::Status;
