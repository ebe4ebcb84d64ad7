//! What the database probes (`postgres`, `redis*`) share: a budget of the bytes one run may read
//! from its server, and targets shown with their password redacted.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::kind::Invalid;
use crate::util::fmt_bytes;

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
}
