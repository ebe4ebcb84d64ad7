//! Serving the API over TCP with limits a hostile client cannot get around.
//!
//! A plain accept loop keeps every connection until the client closes it: a few hundred idle or
//! half-sent sockets (slowloris) then use up the process's file descriptors, and the node's own
//! checks and probe endpoints fail with "Too many open files". [`serve`] bounds all of it:
//!
//! - a request head must arrive within [`ServeLimits::header_read_timeout`], counted from when the
//!   connection starts waiting for it, so an idle kept-alive connection is closed after that time
//!   too;
//! - a handler (reading the request body included) must produce its response within
//!   [`ServeLimits::request_timeout`], or the client gets `408`;
//! - a connection on which nothing is read or written for [`ServeLimits::stall_timeout`] is closed
//!   (a client that stops reading its response; event streams send a keep-alive well within it);
//! - a handler that waits on purpose — a blocking query holding its answer until a change, for a
//!   `wait` the client chose and the API bounds — says so through [`Patience`], and both limits
//!   make room for that wait, and no more;
//! - at most [`ServeLimits::max_connections`] are open at once, by default a quarter of the
//!   process's file descriptor limit. A new connection is never refused: at the limit the oldest
//!   connection without a request in progress is closed to make room (the oldest of all if every
//!   one is busy), so the probe endpoints stay answerable while an attacker holds sockets.
//!
//! hyper answers requests it cannot parse (a head over its size limit, a malformed request line)
//! itself, with an empty body; those answers are rewritten on their way out into the API's JSON
//! error shape, so every error a client sees is `{"error": "..."}`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::{Bytes, BytesMut};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;

use crate::error::ApiError;
use crate::wire::ErrorBody;

mod lane;
mod mirror;
mod tls;

pub(crate) use mirror::{Mirror, Mirrors};
pub use tls::{Tls, TlsError, TlsFiles};

/// A connection's byte stream: plain TCP, or TLS over it.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// The TCP socket itself, for writing a file with `sendfile`; none under TLS, whose records
    /// the kernel does not make.
    fn tcp(&self) -> Option<&TcpStream>;
}

impl Stream for TcpStream {
    fn tcp(&self) -> Option<&TcpStream> {
        Some(self)
    }
}

impl Stream for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> Option<&TcpStream> {
        None
    }
}

/// Limits of [`serve`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServeLimits {
    /// Most connections open at once (at least 1). See [`default_max_connections`].
    pub max_connections: usize,
    /// Time to receive a request head, from when the connection starts waiting for it: a slow
    /// head and an idle kept-alive connection are both closed after it (default 10 s).
    pub header_read_timeout: Duration,
    /// Time for a handler, reading the request body included, to produce the response head;
    /// past it the client gets `408` (default 30 s).
    pub request_timeout: Duration,
    /// A connection on which nothing is read or written for this long is closed (default 60 s).
    pub stall_timeout: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            max_connections: default_max_connections(),
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(60),
        }
    }
}

/// Fewest connections the default allows, however low the descriptor limit.
const MIN_DEFAULT_CONNECTIONS: usize = 16;
/// Most connections the default allows, however high the descriptor limit.
const MAX_DEFAULT_CONNECTIONS: usize = 16_384;

/// A quarter of the process's soft `RLIMIT_NOFILE` (256 under the common 1,024), between 16 and
/// 16,384: the rest stays free for the node's probes, gossip, Raft and files.
pub fn default_max_connections() -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    soft.map_or(MAX_DEFAULT_CONNECTIONS, |limit| {
        usize::try_from(limit / 4)
            .unwrap_or(MAX_DEFAULT_CONNECTIONS)
            .clamp(MIN_DEFAULT_CONNECTIONS, MAX_DEFAULT_CONNECTIONS)
    })
}

/// How long the accept loop pauses after an error that is not about one connection (the process
/// is out of descriptors, say), so that it does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Answers a request from memory, or passes it on with `None`: see [`App::direct`].
pub type Direct = Arc<dyn Fn(&Parts) -> Option<DirectAnswer> + Send + Sync>;

/// What a [`Direct`] handler answers.
pub enum DirectAnswer {
    /// The response, made at once.
    Now(Response),
    /// The response once something shared is made (rendered, say); awaited within
    /// [`ServeLimits::request_timeout`], as a routed request is.
    Soon(Pin<Box<dyn Future<Output = Response> + Send>>),
    /// The response once what it waits for changes or `wait` runs out: a blocking query,
    /// awaited for `wait` plus [`ServeLimits::request_timeout`] (see [`Patience`]).
    Waiting {
        /// How long it may wait on purpose.
        wait: Duration,
        /// The response.
        response: Pin<Box<dyn Future<Output = Response> + Send>>,
    },
}

impl DirectAnswer {
    /// The response, waiting at most `timeout` (plus its own wait, for one that is
    /// [`DirectAnswer::Waiting`]) for one that does not come [`DirectAnswer::Now`]; `408` past it.
    async fn within(self, timeout: Duration) -> Response {
        match self {
            DirectAnswer::Now(response) => response,
            DirectAnswer::Soon(response) => within(timeout, response).await,
            DirectAnswer::Waiting { wait, response } => {
                within(timeout.saturating_add(wait), response).await
            }
        }
    }
}

/// `response`, or `408` if it takes longer than `timeout` plus what `patience` allowed it.
async fn within_patience(
    timeout: Duration,
    patience: &Patience,
    response: impl Future<Output = Response>,
) -> Response {
    tokio::pin!(response);
    loop {
        let deadline = patience.start + timeout + patience.extra();
        match tokio::time::timeout_at(deadline, response.as_mut()).await {
            Ok(response) => return response,
            Err(_) if patience.start + timeout + patience.extra() > Instant::now() => continue,
            Err(_) => return request_timed_out(timeout),
        }
    }
}

/// The `408` of a request not answered within `timeout`.
fn request_timed_out(timeout: Duration) -> Response {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        format!(
            "the request was not received and answered within {}s",
            timeout.as_secs()
        ),
    )
    .into_response()
}

/// `response`, or `408` if it takes longer than `timeout`.
async fn within(timeout: Duration, response: impl Future<Output = Response>) -> Response {
    match tokio::time::timeout(timeout, response).await {
        Ok(response) => response,
        Err(_) => request_timed_out(timeout),
    }
}

/// What [`serve`] serves: a router, and optionally a direct handler asked first.
#[derive(Clone)]
pub struct App {
    router: Router,
    direct: Option<Direct>,
}

impl App {
    /// Asks `direct` before the router for every request. What it answers skips routing and
    /// middleware, so it must answer from memory (at once, or once a shared body is made) and
    /// apply any guard the router would; the probe endpoints under a load balancer's polling are
    /// what it is for.
    pub fn direct(mut self, direct: Direct) -> Self {
        self.direct = Some(direct);
        self
    }
}

impl From<Router> for App {
    fn from(router: Router) -> Self {
        App {
            router,
            direct: None,
        }
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown` completes; then stops accepting,
/// lets requests in progress finish and closes idle connections, and returns once every
/// connection is closed.
pub async fn serve(
    listener: TcpListener,
    app: impl Into<App>,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    serve_with(listener, app, limits, None, shutdown).await
}

/// [`serve`], over TLS when `tls` is given: every connection's handshake must complete within
/// [`ServeLimits::header_read_timeout`].
pub async fn serve_with(
    listener: TcpListener,
    app: impl Into<App>,
    limits: ServeLimits,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let app = app.into();
    let registry = Arc::new(Registry::default());
    let (stopping, stop_signal) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let slot = registry.admit(limits.max_connections.max(1));
                    let connection = Connection {
                        app: app.clone(),
                        limits,
                        slot,
                        registry: registry.clone(),
                        stop: stop_signal.clone(),
                    };
                    connections.spawn(connection.open(stream, tls.clone()));
                }
                Err(error) if is_per_connection(&error) => {}
                Err(error) => {
                    tracing::warn!(%error, "accepting an API connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    drop(listener);
    let _ = stopping.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Errors of `accept` that concern the one connection being accepted, not the listener.
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// The open connections, oldest first, each with its count of requests in progress and the
/// signal that closes it.
#[derive(Default)]
struct Registry {
    open: Mutex<BTreeMap<u64, Slot>>,
    next_id: AtomicU64,
}

#[derive(Clone)]
struct Slot {
    id: u64,
    busy: Arc<AtomicUsize>,
    evict: Arc<Notify>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Slot>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for a new connection, closing the oldest idle connection (else the oldest) when
    /// `max` are open.
    fn admit(&self, max: usize) -> Slot {
        let slot = Slot {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            busy: Arc::new(AtomicUsize::new(0)),
            evict: Arc::new(Notify::new()),
        };
        let mut open = self.lock();
        while open.len() >= max {
            let victim = open
                .values()
                .find(|s| s.busy.load(Ordering::Relaxed) == 0)
                .or_else(|| open.values().next())
                .map(|s| s.id);
            let Some(victim) = victim.and_then(|id| open.remove(&id)) else {
                break;
            };
            victim.evict.notify_one();
        }
        open.insert(slot.id, slot.clone());
        slot
    }

    fn leave(&self, id: u64) {
        self.lock().remove(&id);
    }
}

/// One accepted connection and what it needs to serve itself.
struct Connection {
    app: App,
    limits: ServeLimits,
    slot: Slot,
    registry: Arc<Registry>,
    stop: watch::Receiver<bool>,
}

impl Connection {
    /// Serves `stream`, after a TLS handshake when `tls` is given.
    async fn open(self, stream: TcpStream, tls: Option<Tls>) {
        let _ = stream.set_nodelay(true);
        match tls {
            None => self.run(stream).await,
            Some(tls) => match tls.accept(stream, self.limits.header_read_timeout).await {
                Ok(stream) => self.run(stream).await,
                Err(error) => {
                    tracing::debug!(%error, "TLS handshake failed");
                    self.registry.leave(self.slot.id);
                }
            },
        }
    }

    async fn run(mut self, mut stream: impl Stream) {
        // Made once, not per wake-up: a connection wakes for every request, and a waiter queued
        // on the shared stop signal each time costs more than answering a probe from memory.
        let evicted = self.slot.evict.notified();
        tokio::pin!(evicted);
        let stopping = self.stop.changed();
        tokio::pin!(stopping);
        let read_ahead = match &self.app.direct {
            Some(direct) => {
                let signals = lane::Signals {
                    evicted: evicted.as_mut(),
                    stopping: stopping.as_mut(),
                };
                match lane::serve(&mut stream, direct, self.limits, &self.slot.busy, signals).await
                {
                    lane::End::Closed => {
                        self.registry.leave(self.slot.id);
                        return;
                    }
                    lane::End::HandOff(read_ahead) => read_ahead,
                }
            }
            None => BytesMut::new(),
        };
        let progress = Arc::new(Progress::new());
        let io = TokioIo::new(Guarded::new(stream, read_ahead, progress.clone()));
        let app = self.app.clone();
        let busy = self.slot.busy.clone();
        let request_timeout = self.limits.request_timeout;
        let for_requests = progress.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let busy = Busy::enter(&busy);
            handle(
                app.clone(),
                busy,
                request_timeout,
                for_requests.clone(),
                request,
            )
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_read_timeout)
            .keep_alive(true)
            .serve_connection(io, service);
        tokio::pin!(connection);
        let stall_check = tokio::time::sleep_until(progress.last() + self.limits.stall_timeout);
        tokio::pin!(stall_check);
        let mut draining = false;
        loop {
            tokio::select! {
                _ = connection.as_mut() => break,
                () = evicted.as_mut() => break,
                changed = stopping.as_mut(), if !draining => {
                    draining = true;
                    if changed.is_ok() {
                        connection.as_mut().graceful_shutdown();
                    }
                }
                () = stall_check.as_mut() => {
                    let stalled_at = progress.last() + self.limits.stall_timeout;
                    if stalled_at <= Instant::now() {
                        break;
                    }
                    stall_check.as_mut().reset(stalled_at);
                }
            }
        }
        self.registry.leave(self.slot.id);
    }
}

/// Answers one request directly when the app's direct handler can; else runs it through the
/// router within the request timeout, marking the connection busy until its response body is
/// done.
async fn handle(
    app: App,
    busy: Busy,
    timeout: Duration,
    progress: Arc<Progress>,
    request: Request<Incoming>,
) -> Result<Response, Infallible> {
    let (mut parts, body) = request.into_parts();
    if let Some(answer) = app.direct.as_ref().and_then(|direct| direct(&parts)) {
        if let DirectAnswer::Waiting { wait, .. } = &answer {
            Patience::new(progress).allow(*wait);
        }
        return Ok(answer.within(timeout).await);
    }
    let patience = Patience::new(progress);
    parts.extensions.insert(patience.clone());
    let request = Request::from_parts(parts, Body::new(body));
    let routed = app.router.oneshot(request);
    let routed = async move {
        match routed.await {
            Ok(response) => response,
            Err(infallible) => match infallible {},
        }
    };
    let response = within_patience(timeout, &patience, routed).await;
    Ok(response.map(|body| Body::new(BusyBody { body, _busy: busy })))
}

/// Room for a handler that waits on purpose: a blocking query answers when what it watches
/// changes or its `wait` runs out, which may be minutes, while a request that is merely slow must
/// still fail within the request timeout. The handler calls [`Patience::allow`] with its wait
/// before waiting; the request timeout and the connection's stall timeout then run from the end
/// of that wait. Found in the request's extensions (see [`allow_wait`]).
#[derive(Clone, Debug)]
pub struct Patience {
    progress: Arc<Progress>,
    /// When the request started.
    start: Instant,
    /// Milliseconds from `start` the handler was allowed beyond the request timeout.
    extra_ms: Arc<AtomicU64>,
}

impl Patience {
    fn new(progress: Arc<Progress>) -> Self {
        Patience {
            progress,
            start: Instant::now(),
            extra_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Lets the request wait `wait` (from now) before the limits start to count.
    pub fn allow(&self, wait: Duration) {
        let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        let since_start = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.extra_ms
            .fetch_max(since_start.saturating_add(wait_ms), Ordering::Relaxed);
        self.progress
            .quiet_until(self.progress.elapsed_ms().saturating_add(wait_ms));
    }

    /// How long past its start the request may take beyond the request timeout.
    fn extra(&self) -> Duration {
        Duration::from_millis(self.extra_ms.load(Ordering::Relaxed))
    }
}

/// Lets the request of `parts` wait `wait` on purpose (see [`Patience`]); a request served
/// without [`serve`] (a test driving the router) has no limits to make room in.
pub fn allow_wait(parts: &Parts, wait: Duration) {
    if let Some(patience) = parts.extensions.get::<Patience>() {
        patience.allow(wait);
    }
}

/// A request in progress on a connection: the connection is not idle while one exists.
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn enter(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Busy(count.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its connection marked busy until it is sent or dropped.
struct BusyBody {
    body: Body,
    _busy: Busy,
}

impl http_body::Body for BusyBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// When a connection last moved a byte either way.
#[derive(Debug)]
struct Progress {
    start: Instant,
    /// Milliseconds from `start`.
    last: AtomicU64,
    /// Milliseconds from `start` until which silence is expected (a request waiting on purpose).
    quiet: AtomicU64,
}

impl Progress {
    fn new() -> Self {
        Progress {
            start: Instant::now(),
            last: AtomicU64::new(0),
            quiet: AtomicU64::new(0),
        }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn touch(&self) {
        self.last.store(self.elapsed_ms(), Ordering::Relaxed);
    }

    /// Silence until `ms` after the start is expected, not a stall.
    fn quiet_until(&self, ms: u64) {
        self.quiet.fetch_max(ms, Ordering::Relaxed);
    }

    /// When the connection last moved a byte, or the end of the silence it was allowed, if later.
    fn last(&self) -> Instant {
        let last = self
            .last
            .load(Ordering::Relaxed)
            .max(self.quiet.load(Ordering::Relaxed));
        self.start + Duration::from_millis(last)
    }
}

/// The socket as hyper sees it: every byte moved counts as progress, and hyper's own empty-bodied
/// error answers are rewritten into JSON errors.
struct Guarded<S> {
    stream: S,
    /// Bytes the direct lane read before it handed the connection over, read first.
    read_ahead: BytesMut,
    progress: Arc<Progress>,
    /// A rewritten answer being written: its bytes, how many are written, and the length of
    /// hyper's original, reported as written once the rewrite is out.
    rewrite: Option<(Vec<u8>, usize, usize)>,
}

impl<S: Stream> Guarded<S> {
    fn new(stream: S, read_ahead: BytesMut, progress: Arc<Progress>) -> Self {
        Guarded {
            stream,
            read_ahead,
            progress,
            rewrite: None,
        }
    }

    /// Writes the pending rewrite; ready with the original's length once all of it is out.
    fn poll_rewrite(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        while let Some((bytes, written, original)) = &mut self.rewrite {
            if *written == bytes.len() {
                let original = *original;
                self.rewrite = None;
                return Poll::Ready(Ok(original));
            }
            let n =
                std::task::ready!(Pin::new(&mut self.stream).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
            self.progress.touch();
        }
        Poll::Ready(Ok(0))
    }
}

impl<S: Stream> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.read_ahead.is_empty() {
            let n = self.read_ahead.len().min(buf.remaining());
            buf.put_slice(&self.read_ahead.split_to(n));
            if self.read_ahead.is_empty() {
                // An empty view still holds the lane's whole buffer: a connection held open for
                // minutes (a blocking query) would keep it for nothing.
                self.read_ahead = BytesMut::new();
            }
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.progress.touch();
        }
        polled
    }
}

impl<S: Stream> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.rewrite.is_none() {
            if let Some(json) = json_for_bare_error(buf) {
                self.rewrite = Some((json, 0, buf.len()));
            }
        }
        if self.rewrite.is_some() {
            return self.poll_rewrite(cx);
        }
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            if n > 0 {
                self.progress.touch();
            }
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // hyper's own answers come as one slice; anything else goes out untouched.
        let first = bufs.iter().find(|b| !b.is_empty());
        if self.rewrite.is_some() || first.is_some_and(|b| json_for_bare_error(b).is_some()) {
            if let Some(first) = first {
                return self.poll_write(cx, first);
            }
        }
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled {
            if n > 0 {
                self.progress.touch();
            }
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Longest head of an answer hyper makes itself.
const BARE_HEAD_MAX: usize = 512;

/// If `bytes` is exactly one of hyper's own error answers (`400`, `414`, `431`: a status line,
/// `content-length: 0`, a date, nothing else), the same answer with a JSON error body.
///
/// The router's answers never look like this: every error body it sends is JSON and not empty.
fn json_for_bare_error(bytes: &[u8]) -> Option<Vec<u8>> {
    // Every response head passes here: a status that is no 4xx is told from its first byte,
    // before any parsing.
    if bytes.len() > BARE_HEAD_MAX
        || !bytes.starts_with(b"HTTP/1.1 4")
        || !bytes.ends_with(b"\r\n\r\n")
    {
        return None;
    }
    let head = std::str::from_utf8(bytes).ok()?;
    let status_line = head.strip_prefix("HTTP/1.1 ")?.split("\r\n").next()?;
    let (code, _) = status_line.split_once(' ')?;
    let message = match code {
        "400" => "the request could not be parsed as HTTP/1.1",
        "414" => "the request URI is too long",
        "431" => "the request head is too large (too many header fields, or too long)",
        _ => return None,
    };
    let mut lines = head.trim_end().split("\r\n").skip(1);
    if !lines.all(|line| {
        line.eq_ignore_ascii_case("content-length: 0")
            || line.to_ascii_lowercase().starts_with("date: ")
            || line.eq_ignore_ascii_case("connection: close")
    }) || !head
        .to_ascii_lowercase()
        .contains("\r\ncontent-length: 0\r\n")
    {
        return None;
    }
    let body = ErrorBody {
        error: message.to_owned(),
    };
    let body = serde_json::to_string(&body).unwrap_or_default();
    Some(
        format!(
            "HTTP/1.1 {status_line}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_hyper_errors_become_json() {
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Fri, 04 Dec 2026 15:00:00 GMT\r\n\r\n";
        let json = String::from_utf8(json_for_bare_error(bare).expect("rewritten")).expect("text");
        assert!(json.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        let (_, body) = json.split_once("\r\n\r\n").expect("a body");
        let value: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert!(value["error"]
            .as_str()
            .is_some_and(|e| e.contains("too large")));
        assert!(json.contains(&format!("content-length: {}\r\n", body.len())));
    }

    #[test]
    fn other_writes_pass_untouched() {
        for bytes in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n",
            b"{\"error\": \"HTTP/1.1 400 \"}",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nx-other: 1\r\n\r\n",
        ] {
            assert!(json_for_bare_error(bytes).is_none(), "{bytes:?}");
        }
    }

    #[test]
    fn the_oldest_idle_connection_makes_room() {
        let registry = Registry::default();
        let first = registry.admit(2);
        first.busy.fetch_add(1, Ordering::Relaxed);
        let second = registry.admit(2);
        let third = registry.admit(2);
        let open: Vec<u64> = registry.lock().keys().copied().collect();
        assert_eq!(
            open,
            [first.id, third.id],
            "the idle second went, not the busy first"
        );
        // Every one busy: the oldest goes.
        third.busy.fetch_add(1, Ordering::Relaxed);
        let fourth = registry.admit(2);
        let open: Vec<u64> = registry.lock().keys().copied().collect();
        assert_eq!(open, [third.id, fourth.id]);
        drop(second);
    }

    #[test]
    fn the_default_limit_leaves_most_descriptors_free() {
        let max = default_max_connections();
        assert!((MIN_DEFAULT_CONNECTIONS..=MAX_DEFAULT_CONNECTIONS).contains(&max));
    }
}
