//! Running checks: one task per check, so a check never overlaps itself and a slow or hung probe
//! holds up nothing but its own next run.

use std::any::Any;
use std::future::{poll_fn, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::time::{sleep, sleep_until, timeout, Instant};

use crate::check::{CheckResult, CheckSpec};
use crate::probe::{Probe, Report};

/// Where a task hands its results; returns false once the check is gone, which ends the task.
pub(crate) type Sink = Box<dyn FnMut(CheckResult) -> bool + Send>;

/// Runs `probe` every `spec.interval`, first after `first_delay`, cutting each run at
/// `spec.timeout`. Runs that would start late are skipped, never bunched up.
pub(crate) async fn run_probe(
    spec: Arc<CheckSpec>,
    probe: Arc<dyn Probe>,
    first_delay: Duration,
    mut sink: Sink,
) {
    sleep(first_delay).await;
    let mut next = Instant::now();
    loop {
        let timestamp = OffsetDateTime::now_utc();
        let started = Instant::now();
        let report = match timeout(spec.timeout, unwind_to_err(|| probe.probe())).await {
            Ok(Ok(report)) => report,
            Ok(Err(panic)) => Report::fail(format!("probe panicked: {panic}")),
            Err(_) => Report::fail(format!("timed out after {}", humanize(spec.timeout))),
        };
        let result = CheckResult::from_report(report, started.elapsed(), timestamp);
        if !sink(result) {
            return;
        }
        next += spec.interval;
        let now = Instant::now();
        if next < now {
            next = now + spec.interval;
        }
        sleep_until(next).await;
    }
}

/// Starts a future with `start` and awaits it, turning a panic in either into `Err(message)`,
/// so a buggy probe or hook fails one run instead of killing the task that runs it.
pub(crate) async fn unwind_to_err<F: Future + Unpin>(
    start: impl FnOnce() -> F,
) -> Result<F::Output, String> {
    let mut future = catch_unwind(AssertUnwindSafe(start)).map_err(panic_message)?;
    poll_fn(
        |cx| match catch_unwind(AssertUnwindSafe(|| Pin::new(&mut future).poll(cx))) {
            Ok(poll) => poll.map(Ok),
            Err(panic) => Poll::Ready(Err(panic_message(panic))),
        },
    )
    .await
}

fn panic_message(panic: Box<dyn Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// Fails a TTL check each time `ttl` passes without `reset` being notified by a pushed update.
pub(crate) async fn run_ttl(ttl: Duration, reset: Arc<Notify>, mut sink: Sink) {
    let mut deadline = Instant::now() + ttl;
    loop {
        tokio::select! {
            () = reset.notified() => deadline = Instant::now() + ttl,
            () = sleep_until(deadline) => {
                let report = Report::fail(format!("TTL expired: no update within {}", humanize(ttl)));
                if !sink(CheckResult::from_report(report, Duration::ZERO, OffsetDateTime::now_utc())) {
                    return;
                }
                deadline = Instant::now() + ttl;
            }
        }
    }
}

pub use vigil_text::humanize;
