//! Small helpers shared by the probe kinds: formatting durations, byte counts and error chains,
//! judging a used ratio (disk, memory), and bounding what a database probe reads from its server.

use std::error::Error;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use vigil_health::Report;

use crate::spec::Invalid;

/// A probe's own time limit when the `timeout` option is not given.
const DEFAULT_OWN_TIMEOUT: Duration = Duration::from_secs(5);

/// The limit a probe sets itself from the `timeout` option: 9/10 of it, so the probe's own report of
/// a timeout arrives before the engine's deadline (which is the same option in a check) cuts it off.
pub(crate) fn own_timeout(options: &crate::ProbeOptions) -> Duration {
    options.timeout.unwrap_or(DEFAULT_OWN_TIMEOUT).mul_f64(0.9)
}

/// The bytes one database probe run may read when `max_reply_bytes` is not given: far above what a
/// handshake and a one-row answer take, far below what would hurt the agent.
pub(crate) const DEFAULT_MAX_REPLY_BYTES: u64 = 4 * 1024 * 1024;

/// The `max_reply_bytes` option, validated, or its default.
pub(crate) fn max_reply_bytes(options: &crate::ProbeOptions) -> Result<u64, Invalid> {
    match options.max_reply_bytes {
        None => Ok(DEFAULT_MAX_REPLY_BYTES),
        Some(0) => Err(Invalid::option(
            "max_reply_bytes",
            "must be more than 0 (the default is 4194304, 4 MiB)",
        )),
        Some(limit) => Ok(limit),
    }
}

/// What one probe run may still read from its server, shared by every connection of the run.
///
/// The client crates buffer a whole message before handing it over, and a message announces its
/// own length (up to 4 GiB in Redis, 2 GiB in PostgreSQL): counting the bytes under them, at the
/// socket, is the one place where a limit holds whatever the server announces.
#[derive(Clone, Debug)]
pub(crate) struct ReplyBudget(Arc<BudgetState>);

#[derive(Debug)]
struct BudgetState {
    limit: u64,
    read: AtomicU64,
    exceeded: AtomicBool,
}

impl ReplyBudget {
    pub(crate) fn new(limit: u64) -> Self {
        ReplyBudget(Arc::new(BudgetState {
            limit,
            read: AtomicU64::new(0),
            exceeded: AtomicBool::new(false),
        }))
    }

    /// Wraps a connection to the server so that its reads draw on this budget.
    pub(crate) fn wrap<S>(&self, stream: S) -> Bounded<S> {
        Bounded {
            stream,
            budget: self.clone(),
        }
    }

    /// Whether the server sent more than the limit: the run's failure, whatever error the client
    /// crate made of it.
    pub(crate) fn exceeded(&self) -> bool {
        self.0.exceeded.load(Ordering::Relaxed)
    }

    /// Why the run failed when [`exceeded`](Self::exceeded).
    pub(crate) fn failure(&self) -> String {
        format!(
            "the server sent more than {} in one run (max_reply_bytes = {}); the reply was cut off \
             and the connection closed",
            fmt_bytes(self.0.limit),
            self.0.limit
        )
    }

    fn left(&self) -> u64 {
        self.0
            .limit
            .saturating_sub(self.0.read.load(Ordering::Relaxed))
    }

    fn spend(&self, bytes: usize) {
        self.0.read.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// A connection whose reads stop with an error once its [`ReplyBudget`] is spent.
#[derive(Debug)]
pub(crate) struct Bounded<S> {
    stream: S,
    budget: ReplyBudget,
}

impl<S: AsyncRead + Unpin> AsyncRead for Bounded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let left = self.budget.left();
        if left == 0 {
            self.budget.0.exceeded.store(true, Ordering::Relaxed);
            return Poll::Ready(Err(io::Error::other(self.budget.failure())));
        }
        // Read through a small buffer of our own so that no read can go past the budget.
        let mut chunk = [0u8; 8192];
        let room = buf
            .remaining()
            .min(chunk.len())
            .min(usize::try_from(left).unwrap_or(usize::MAX));
        let mut limited = ReadBuf::new(&mut chunk[..room]);
        let polled = Pin::new(&mut self.stream).poll_read(cx, &mut limited);
        if let Poll::Ready(Ok(())) = polled {
            let read = limited.filled();
            buf.put_slice(read);
            self.budget.spend(read.len());
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Bounded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The `max_used` ratio when none is given.
pub(crate) const DEFAULT_MAX_USED: f64 = 0.9;

/// An error and all its sources, joined with `: ` (sources already in the message are skipped).
pub(crate) fn error_chain(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    text
}

/// `scheme://user:secret@host/…` with the password replaced by `***`; other targets unchanged.
pub(crate) fn redact_password(target: &str) -> String {
    let Some((scheme, rest)) = target.split_once("://") else {
        return target.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return target.to_owned();
    };
    match rest[..at].split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
        None => target.to_owned(),
    }
}

/// A latency for people: `412µs`, `3ms`, `1.2s`.
pub(crate) fn fmt_elapsed(elapsed: Duration) -> String {
    if elapsed < Duration::from_millis(1) {
        format!("{}µs", elapsed.as_micros())
    } else if elapsed < Duration::from_secs(1) {
        format!("{}ms", elapsed.as_millis())
    } else {
        format!("{:.1}s", elapsed.as_secs_f64())
    }
}

/// A byte count for people, in binary units: `512 B`, `3.2 GiB`.
pub(crate) fn fmt_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Cuts `text` to at most `limit` bytes on a character boundary.
pub(crate) fn truncate_on_char_boundary(text: &mut String, limit: usize) -> bool {
    if text.len() <= limit {
        return false;
    }
    let mut cut = limit;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    true
}

/// Space used and available, as `df` counts it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Usage {
    pub(crate) total: u64,
    pub(crate) used: u64,
    pub(crate) available: u64,
}

impl Usage {
    /// `used / (used + available)`; `0.0` when both are zero.
    pub(crate) fn ratio(&self) -> f64 {
        let denominator = self.used as f64 + self.available as f64;
        if denominator > 0.0 {
            self.used as f64 / denominator
        } else {
            0.0
        }
    }

    /// Passes at or under `max_used`, fails above it; `what` starts the message (`memory`, `disk /`).
    pub(crate) fn judge(&self, what: &str, max_used: f64) -> Report {
        let ratio = self.ratio();
        let summary = format!(
            "{what}: {:.1}% used ({} used, {} available, {} total)",
            ratio * 100.0,
            fmt_bytes(self.used),
            fmt_bytes(self.available),
            fmt_bytes(self.total),
        );
        let limit = format!("{:.1}%", max_used * 100.0);
        let report = if ratio > max_used {
            Report::fail(format!("{summary}, above the {limit} limit"))
        } else {
            Report::pass(format!("{summary}, limit {limit}"))
        };
        report
            .with_detail("total_bytes", self.total)
            .with_detail("used_bytes", self.used)
            .with_detail("available_bytes", self.available)
            .with_detail("used_ratio", ratio)
            .with_detail("max_used", max_used)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_stop_once_the_budget_is_spent() {
        use tokio::io::AsyncReadExt;

        let budget = ReplyBudget::new(10);
        let mut stream = budget.wrap(&[7u8; 64][..]);
        let mut first = [0u8; 6];
        assert_eq!(stream.read(&mut first).await.expect("read"), 6);
        let mut rest = Vec::new();
        let error = stream
            .read_to_end(&mut rest)
            .await
            .expect_err("past the limit");
        assert_eq!(rest.len(), 4, "exactly the budget is handed over");
        assert!(budget.exceeded());
        assert!(
            error.to_string().contains("max_reply_bytes = 10"),
            "{error}"
        );
    }

    #[test]
    fn formats_elapsed() {
        assert_eq!(fmt_elapsed(Duration::from_micros(412)), "412µs");
        assert_eq!(fmt_elapsed(Duration::from_millis(3)), "3ms");
        assert_eq!(fmt_elapsed(Duration::from_millis(1234)), "1.2s");
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_password("postgres://app:s3cret@db:5432/x?sslmode=disable"),
            "postgres://app:***@db:5432/x?sslmode=disable"
        );
        assert_eq!(
            redact_password("redis://:pw@127.0.0.1/0"),
            "redis://:***@127.0.0.1/0"
        );
        assert_eq!(
            redact_password("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(redact_password("postgres://app@db"), "postgres://app@db");
    }

    #[test]
    fn formats_bytes() {
        assert_eq!(fmt_bytes(512), "512 B");
        assert_eq!(fmt_bytes(1536), "1.5 KiB");
        assert_eq!(fmt_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
        assert_eq!(fmt_bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn truncates_on_char_boundary() {
        let mut text = "aé".repeat(3); // a=1 byte, é=2 bytes
        assert!(truncate_on_char_boundary(&mut text, 2));
        assert_eq!(text, "a");
        let mut short = String::from("abc");
        assert!(!truncate_on_char_boundary(&mut short, 3));
        assert_eq!(short, "abc");
    }

    #[test]
    fn judges_usage() {
        let usage = Usage {
            total: 100,
            used: 50,
            available: 25,
        };
        assert!((usage.ratio() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(
            usage.judge("disk /", 0.9).verdict,
            vigil_health::Verdict::Pass
        );
        assert_eq!(
            usage.judge("disk /", 0.5).verdict,
            vigil_health::Verdict::Fail
        );
        let empty = Usage {
            total: 0,
            used: 0,
            available: 0,
        };
        assert_eq!(empty.ratio(), 0.0);
    }
}
