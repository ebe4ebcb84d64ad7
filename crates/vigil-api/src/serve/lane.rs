//! The direct lane: requests the app's direct handler answers, parsed and answered on the socket
//! itself, before hyper is involved.
//!
//! A load balancer or a client library polling a probe endpoint or a discovery answer sends the
//! same small `GET` over and over on one kept-alive connection. hyper serves it correctly but pays
//! for generality on every request: a header-read timer armed and cleared, a header map filled,
//! the response encoded through its state machine. The lane parses the head with `httparse`
//! (hyper's own parser), answers what [`Direct`] answers, and keeps one deadline per connection
//! that is only re-armed when it fires early. The first request it does not answer — any other
//! method, a body, an upgrade, HTTP/1.0, a head it cannot parse or that outgrows its buffer, or
//! a path the direct handler passes on — hands the connection, with every byte read so far, to
//! hyper for the rest of its life, so the lane never has to be right about anything but the
//! plain case.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode, Uri};
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, Sleep};

use super::mirror::{self, Mirror};
use super::{Busy, Direct, DirectAnswer, ServeLimits, Stream};

/// Most bytes of a request head the lane reads before it leaves the request to hyper (whose own
/// limit is far larger, and which answers `431` past it).
const MAX_HEAD: usize = 8 * 1024;

/// Most header fields the lane parses; a request with more goes to hyper.
const MAX_HEADERS: usize = 32;

/// What the lane's buffer starts with: a request head is a few hundred bytes, and a connection
/// may be held for minutes (a blocking query), so a larger head grows the buffer instead.
const FIRST_READ: usize = 1024;

/// How the lane left a connection.
pub(super) enum End {
    /// Closed: by the client, at a timeout, at eviction or shutdown, or after an I/O error.
    Closed,
    /// A request the lane does not answer: hyper serves the connection from here, starting with
    /// these bytes already read.
    HandOff(BytesMut),
}

/// What ends a wait of the lane other than the socket itself.
pub(super) struct Signals<'a, E, S> {
    /// The connection was chosen to make room for a new one.
    pub evicted: Pin<&'a mut E>,
    /// The server is stopping.
    pub stopping: Pin<&'a mut S>,
}

/// One request head the lane can answer: a `GET` or `HEAD` over HTTP/1.1 with no body.
struct Head {
    method: Method,
    uri: Uri,
    /// The headers that present a token (`Authorization`, `X-Consul-Token`), for the handler's
    /// read guard; the lane keeps no other.
    credentials: Vec<(header::HeaderName, header::HeaderValue)>,
    close: bool,
    /// Bytes of the head, to consume once answered.
    len: usize,
}

/// Serves `stream` in the lane until it closes or hands off.
pub(super) async fn serve<E, S, T>(
    stream: &mut impl Stream,
    direct: &Direct,
    limits: ServeLimits,
    busy: &Arc<AtomicUsize>,
    signals: Signals<'_, E, S>,
) -> End
where
    E: std::future::Future<Output = ()>,
    S: std::future::Future<Output = T>,
{
    let Signals {
        mut evicted,
        mut stopping,
    } = signals;
    let mut input = BytesMut::with_capacity(FIRST_READ);
    let mut head_bytes = Vec::with_capacity(256);
    let mut chunks = Vec::new();
    // One timer for the connection's life: moving the deadline is a read of the coarse clock and
    // a store, and the timer is re-armed only when it fires before the deadline it last saw.
    let mut deadline = Deadline::after(limits.header_read_timeout);
    let timer = tokio::time::sleep(limits.header_read_timeout);
    tokio::pin!(timer);
    loop {
        let head = match parse(&input) {
            Parsed::Answerable(head) => head,
            Parsed::NotForTheLane => return End::HandOff(input),
            Parsed::Partial if input.len() >= MAX_HEAD => return End::HandOff(input),
            Parsed::Partial => {
                if input.len() == input.capacity() {
                    input.reserve(FIRST_READ);
                }
                tokio::select! {
                    biased;
                    read = stream.read_buf(&mut input) => match read {
                        Ok(0) | Err(_) => return End::Closed,
                        Ok(_) => continue,
                    },
                    () = timer.as_mut() => {
                        if !rearm(timer.as_mut(), deadline) {
                            return End::Closed;
                        }
                        continue;
                    }
                    () = evicted.as_mut() => return End::Closed,
                    _ = stopping.as_mut() => return End::Closed,
                }
            }
        };
        let (mut parts, ()) = Request::new(()).into_parts();
        parts.method = head.method;
        parts.uri = head.uri;
        parts.headers.extend(head.credentials);
        let Some(answer) = direct(&parts) else {
            return End::HandOff(input);
        };
        let _busy = Busy::enter(busy);
        let response = match answer {
            DirectAnswer::Now(response) => response,
            // A blocking query may wait minutes: the connection must still go when evicted or
            // when the server stops.
            later => tokio::select! {
                biased;
                response = later.within(limits.request_timeout) => response,
                () = evicted.as_mut() => return End::Closed,
                _ = stopping.as_mut() => return End::Closed,
            },
        };
        let Ok(mirror) = encode(
            response,
            parts.method == Method::HEAD,
            head.close,
            &mut head_bytes,
            &mut chunks,
        )
        .await
        else {
            return End::Closed;
        };
        let _ = input.split_to(head.len);
        deadline = Deadline::after(limits.stall_timeout);
        let mut rearmed_for_stall = false;
        let written = {
            let write = send(stream, &head_bytes, &chunks, mirror.as_ref());
            tokio::pin!(write);
            loop {
                tokio::select! {
                    biased;
                    written = write.as_mut() => break written,
                    () = timer.as_mut() => {
                        if !rearm(timer.as_mut(), deadline) {
                            return End::Closed;
                        }
                        rearmed_for_stall = true;
                    }
                    () = evicted.as_mut() => return End::Closed,
                }
            }
        };
        chunks.clear();
        if written.is_err() || head.close {
            return End::Closed;
        }
        deadline = Deadline::after(limits.header_read_timeout);
        if rearmed_for_stall {
            // The timer now points at the stall deadline, which may lie beyond the next head's.
            timer
                .as_mut()
                .reset(Instant::now() + limits.header_read_timeout);
        }
    }
}

/// After the timer fired: points it at what is left of `deadline` and says so if anything is, or
/// says the deadline has passed.
fn rearm(timer: Pin<&mut Sleep>, deadline: Deadline) -> bool {
    match deadline.left() {
        Some(left) => {
            timer.reset(Instant::now() + left);
            true
        }
        None => false,
    }
}

/// A time limit counted on the coarse monotonic clock (a few milliseconds' resolution), which
/// costs a fraction of the precise one to read; the lane reads it twice per request.
#[derive(Clone, Copy)]
struct Deadline {
    at_ms: u64,
}

impl Deadline {
    fn after(limit: Duration) -> Self {
        let limit = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
        Deadline {
            at_ms: coarse_now_ms().saturating_add(limit),
        }
    }

    /// The time left, if any.
    fn left(self) -> Option<Duration> {
        let left = self.at_ms.saturating_sub(coarse_now_ms());
        (left > 0).then(|| Duration::from_millis(left))
    }
}

fn coarse_now_ms() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let millis = u64::try_from(now.tv_nsec / 1_000_000).unwrap_or(0);
    secs.saturating_mul(1000).saturating_add(millis)
}

/// What the bytes read so far hold.
enum Parsed {
    Answerable(Head),
    /// A complete head the lane leaves to hyper, or bytes that are no HTTP/1.1 head at all.
    NotForTheLane,
    Partial,
}

fn parse(input: &[u8]) -> Parsed {
    if input.is_empty() {
        return Parsed::Partial;
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(input) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::NotForTheLane,
    };
    let method = match request.method {
        Some("GET") => Method::GET,
        Some("HEAD") => Method::HEAD,
        _ => return Parsed::NotForTheLane,
    };
    if request.version != Some(1) {
        return Parsed::NotForTheLane;
    }
    let Some(Ok(uri)) = request.path.map(Uri::try_from) else {
        return Parsed::NotForTheLane;
    };
    if uri.scheme().is_some() {
        return Parsed::NotForTheLane;
    }
    let mut close = false;
    let mut credentials = Vec::new();
    for field in request.headers.iter() {
        let name = field.name;
        if name.eq_ignore_ascii_case("authorization") || name.eq_ignore_ascii_case("x-consul-token")
        {
            let (Ok(name), Ok(value)) = (
                header::HeaderName::from_bytes(name.as_bytes()),
                header::HeaderValue::from_bytes(field.value),
            ) else {
                return Parsed::NotForTheLane;
            };
            credentials.push((name, value));
        } else if name.eq_ignore_ascii_case("connection") {
            match connection_option(field.value) {
                Some(Connection::Close) => close = true,
                Some(Connection::KeepAlive) => {}
                None => return Parsed::NotForTheLane,
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            if field.value.trim_ascii() != b"0" {
                return Parsed::NotForTheLane;
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("expect")
            || name.eq_ignore_ascii_case("upgrade")
        {
            return Parsed::NotForTheLane;
        }
    }
    Parsed::Answerable(Head {
        method,
        uri,
        credentials,
        close,
        len,
    })
}

enum Connection {
    Close,
    KeepAlive,
}

/// A `Connection` header the lane understands: `close` or `keep-alive`, alone.
fn connection_option(value: &[u8]) -> Option<Connection> {
    let value = value.trim_ascii();
    if value.eq_ignore_ascii_case(b"close") {
        Some(Connection::Close)
    } else if value.eq_ignore_ascii_case(b"keep-alive") {
        Some(Connection::KeepAlive)
    } else {
        None
    }
}

/// Writes `response`'s head into `head` and its body's chunks into `chunks`, as hyper would send
/// them: the handler's headers, then `content-length`, `date`, and `connection: close` when the
/// connection ends after it; no body for `HEAD`. Returns the body's [`Mirror`], if it has one.
async fn encode(
    response: Response,
    is_head: bool,
    close: bool,
    head: &mut Vec<u8>,
    chunks: &mut Vec<Bytes>,
) -> Result<Option<Mirror>, axum::Error> {
    let (parts, mut body): (_, Body) = response.into_parts();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            chunks.push(data);
        }
    }
    let bodiless = parts.status.is_informational()
        || parts.status == StatusCode::NO_CONTENT
        || parts.status == StatusCode::NOT_MODIFIED;
    head.clear();
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(parts.status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    head.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        if name == header::CONTENT_LENGTH || name == header::CONNECTION {
            continue;
        }
        field(head, name.as_str().as_bytes(), value.as_bytes());
    }
    if !bodiless {
        let length = chunks.iter().map(Bytes::len).sum::<usize>();
        field(
            head,
            b"content-length",
            itoa::Buffer::new().format(length).as_bytes(),
        );
    }
    if !parts.headers.contains_key(header::DATE) {
        field(head, b"date", &http_date());
    }
    if close {
        field(head, b"connection", b"close");
    }
    head.extend_from_slice(b"\r\n");
    if is_head || bodiless {
        chunks.clear();
    }
    Ok(parts.extensions.get::<Mirror>().cloned())
}

fn field(head: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    head.extend_from_slice(name);
    head.extend_from_slice(b": ");
    head.extend_from_slice(value);
    head.extend_from_slice(b"\r\n");
}

/// Sends `head` and then `chunks`: the chunk `mirror` holds with `sendfile` and what comes before
/// it held back to go with it, or all of them with as few vectored writes as the socket takes.
async fn send(
    stream: &mut impl Stream,
    head: &[u8],
    chunks: &[Bytes],
    mirror: Option<&Mirror>,
) -> io::Result<()> {
    let mirrored = mirror.filter(|m| chunks.get(m.chunk).is_some_and(|c| m.holds(c)));
    let (Some(mirror), Some(tcp)) = (mirrored, stream.tcp()) else {
        return write_all(stream, head, chunks).await;
    };
    let (before, after) = chunks.split_at(mirror.chunk);
    let mut slices = slices_of(head, before);
    mirror::send_more(tcp, &mut slices).await?;
    mirror::send_file(tcp, &mirror.file).await?;
    write_all(stream, &[], after.get(1..).unwrap_or_default()).await
}

/// `head` and `chunks` as the slices of one vectored write, the empty ones left out.
fn slices_of<'a>(head: &'a [u8], chunks: &'a [Bytes]) -> Vec<IoSlice<'a>> {
    std::iter::once(head)
        .chain(chunks.iter().map(|chunk| &chunk[..]))
        .filter(|slice| !slice.is_empty())
        .map(IoSlice::new)
        .collect()
}

/// Writes `head` and then `chunks` with as few vectored writes as the socket takes.
async fn write_all(stream: &mut impl Stream, head: &[u8], chunks: &[Bytes]) -> io::Result<()> {
    let mut slices = slices_of(head, chunks);
    let mut remaining = &mut slices[..];
    while !remaining.is_empty() {
        let written = stream.write_vectored(remaining).await?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut remaining, written);
    }
    // TLS keeps records it could not send yet; on TCP this does nothing.
    stream.flush().await
}

/// The `Date` header's value for now, formatted once per second per thread.
fn http_date() -> [u8; 29] {
    thread_local! {
        static CACHED: std::cell::Cell<(u64, [u8; 29])> = const { std::cell::Cell::new((u64::MAX, [0; 29])) };
    }
    // The coarse clock tells the second for a fraction of the precise clock's cost; it may lag
    // it by a few milliseconds, as any cached date does.
    let now = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
    let second = u64::try_from(now.tv_sec).unwrap_or(0);
    CACHED.with(|cached| {
        let (at, text) = cached.get();
        if at == second {
            return text;
        }
        let mut text = [0u8; 29];
        let formatted =
            httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(second));
        let bytes = formatted.as_bytes();
        let len = bytes.len().min(text.len());
        text[..len].copy_from_slice(&bytes[..len]);
        cached.set((second, text));
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answerable(request: &[u8]) -> Option<(Method, String, bool, usize)> {
        match parse(request) {
            Parsed::Answerable(head) => {
                Some((head.method, head.uri.to_string(), head.close, head.len))
            }
            _ => None,
        }
    }

    #[test]
    fn plain_gets_and_heads_are_the_lanes() {
        let get = b"GET /health/ready HTTP/1.1\r\nHost: t\r\n\r\nGET /next";
        assert_eq!(
            answerable(get),
            Some((Method::GET, "/health/ready".to_owned(), false, 39))
        );
        let head =
            b"HEAD /livez?verbose HTTP/1.1\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            answerable(head),
            Some((Method::HEAD, "/livez?verbose".to_owned(), true, head.len()))
        );
    }

    #[test]
    fn everything_else_goes_to_hyper() {
        for request in [
            &b"POST /v1/services HTTP/1.1\r\nHost: t\r\n\r\n"[..],
            b"GET /health HTTP/1.0\r\n\r\n",
            b"GET /health HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
            b"GET /health HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET /health HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            b"GET /health HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            b"GET http://elsewhere/health HTTP/1.1\r\n\r\n",
            b"HELLO\r\n\r\n",
        ] {
            assert!(
                matches!(parse(request), Parsed::NotForTheLane),
                "{}",
                String::from_utf8_lossy(request)
            );
        }
        let mut many = b"GET /health HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert!(matches!(parse(&many), Parsed::NotForTheLane));
    }

    #[test]
    fn a_head_in_pieces_is_partial() {
        for request in [
            &b""[..],
            b"GET /hea",
            b"GET /health HTTP/1.1\r\nHost: t\r\n",
        ] {
            assert!(matches!(parse(request), Parsed::Partial));
        }
    }

    #[test]
    fn the_date_is_an_http_date() {
        let date = http_date();
        let text = std::str::from_utf8(&date).expect("ASCII");
        assert!(httpdate::parse_http_date(text).is_ok(), "{text}");
    }
}
