//! The probe endpoints as an axum router: `/health*`, `/livez`, `/readyz` and `/metrics`.
//!
//! Handlers only read the engine's latest [`Snapshot`](crate::Snapshot); none runs a probe. JSON bodies follow
//! the CHORUS schema (`latency` and `uptime` in nanoseconds, timestamps RFC 3339), with vigil's
//! state fields added.
//!
//! | path | 200 when | 503 when |
//! | --- | --- | --- |
//! | `/health` | healthy or degraded | starting, unhealthy, stopping |
//! | `/health/ready` | healthy or degraded | otherwise |
//! | `/health/live` | not stopping | stopping |
//! | `/health/checks`, `/health/summary`, `/metrics` | always | — |
//! | `/livez`, `/readyz` | as live / ready, kube-apiserver text, `?verbose`, `?exclude=NAME` | |

use std::collections::{BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use serde::Serialize;
use vigil_text::go_duration;

use crate::check::CheckState;
use crate::engine::Engine;
use crate::metrics;
use crate::snapshot::rfc3339;
use crate::status::Status;
use crate::wire;

/// The probe endpoints and `/metrics`, ready to merge into any axum app.
pub fn router<S: Clone + Send + Sync + 'static>(engine: Engine) -> Router<S> {
    probe_routes(engine.clone()).merge(
        Router::new()
            .route("/metrics", get(metrics_handler))
            .with_state(engine),
    )
}

/// The probe endpoints without `/metrics`, for apps that serve a `/metrics` of their own and
/// append [`metrics::render`] to it (or send [`metrics::shared`] and [`metrics::uptime`]).
pub fn probe_routes<S: Clone + Send + Sync + 'static>(engine: Engine) -> Router<S> {
    PROBES
        .iter()
        .fold(Router::new(), |router, &(path, respond)| {
            router.route(
                path,
                get(
                    move |State(engine): State<Engine>, RawQuery(query): RawQuery| async move {
                        respond(&engine, query.as_deref())
                    },
                ),
            )
        })
        .with_state(engine)
}

/// Answers a `GET` or `HEAD` of a probe endpoint, `None` for any other path. The answer is the
/// one [`probe_routes`] gives, made without a router, extractors or middleware: a server can
/// ask this first so that a kubelet's or load balancer's probes cost it as little as a static
/// file costs nginx. Methods are the caller's to check.
pub fn respond(engine: &Engine, path: &str, query: Option<&str>) -> Option<Response> {
    PROBES
        .iter()
        .find(|(probe, _)| *probe == path)
        .map(|(_, respond)| respond(engine, query))
}

/// Answers a `GET` or `HEAD` of the probe endpoints a kubelet or load balancer polls (`/livez`,
/// `/readyz`, `/health/live`, `/health/ready`) as a caller without access to check details sees
/// them: the same status code, with no status message and no `verbose` check list; `None` for
/// any other path.
pub fn respond_public(engine: &Engine, path: &str, query: Option<&str>) -> Option<Response> {
    PUBLIC_PROBES
        .iter()
        .find(|(probe, _)| *probe == path)
        .map(|(_, respond)| respond(engine, query))
}

/// How a probe endpoint answers: from the engine's latest snapshot and the raw query string.
type Responder = fn(&Engine, Option<&str>) -> Response;

/// The probe endpoints open to anyone, as [`respond_public`] answers them.
const PUBLIC_PROBES: [(&str, Responder); 4] = [
    ("/health/ready", ready_public),
    ("/health/live", live),
    ("/livez", |engine, query| {
        livez(engine, query, Disclosure::StatusOnly)
    }),
    ("/readyz", |engine, query| {
        readyz(engine, query, Disclosure::StatusOnly)
    }),
];

/// How much of the checks a probe answer may show.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Disclosure {
    /// Whatever the query asks for.
    Full,
    /// Whether the node is up, nothing of its checks.
    StatusOnly,
}

/// Every probe endpoint, by path.
const PROBES: [(&str, Responder); 7] = [
    ("/health", health),
    ("/health/ready", ready),
    ("/health/live", live),
    ("/health/checks", checks),
    ("/health/summary", summary),
    ("/livez", |engine, query| {
        livez(engine, query, Disclosure::Full)
    }),
    ("/readyz", |engine, query| {
        readyz(engine, query, Disclosure::Full)
    }),
];

/// The bodies of one snapshot that do not change from request to request, each rendered by the
/// first request that needs it and then shared: a probe endpoint under load answers from bytes
/// already made.
#[derive(Debug, Default)]
pub(crate) struct Bodies {
    /// `/health` up to its `uptime`, which alone changes per request.
    health_prefix: OnceLock<Bytes>,
    /// `/health/ready`.
    ready: OnceLock<Bytes>,
    /// `/health/ready` without its status message.
    ready_public: OnceLock<Bytes>,
    /// `/livez` without a query.
    livez: OnceLock<KubeAnswer>,
    /// `/readyz` without a query.
    readyz: OnceLock<KubeAnswer>,
}

fn code(ok: bool) -> StatusCode {
    if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// A JSON response of `body`.
fn json_body(status: StatusCode, body: &impl Serialize) -> Response {
    json_chunks(status, [Bytes::from(to_json(body))])
}

/// `body` as JSON; `{}` for the value no wire type can produce (a map with non-string keys).
fn to_json(body: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec())
}

/// A response body of several shared chunks, written with one vectored write and no copy: the
/// per-check JSON is rendered once per snapshot and then only referenced by each response.
struct Chunks(VecDeque<Bytes>);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Poll::Ready(
            self.0
                .pop_front()
                .map(|chunk| Ok(http_body::Frame::data(chunk))),
        )
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.0.iter().map(|c| c.len() as u64).sum())
    }
}

/// A body of shared chunks sent without copying them, with its length known up front (so it
/// goes out with `Content-Length`, not chunked).
pub fn shared_body(chunks: impl IntoIterator<Item = Bytes>) -> axum::body::Body {
    axum::body::Body::new(Chunks(chunks.into_iter().collect()))
}

fn json_chunks(status: StatusCode, chunks: impl IntoIterator<Item = Bytes>) -> Response {
    let body = shared_body(chunks);
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// Serializes `head`, leaving its object open for the `"checks"` that follow.
fn open_object(head: &impl Serialize) -> Vec<u8> {
    let mut body = to_json(head);
    body.pop();
    if body.len() > 1 {
        body.push(b',');
    }
    body.extend_from_slice(b"\"checks\":");
    body
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn health(engine: &Engine, _: Option<&str>) -> Response {
    let s = engine.snapshot();
    let prefix = s
        .bodies
        .health_prefix
        .get_or_init(|| {
            let head = wire::HealthHead {
                status: s.status(),
                message: s.message().to_owned(),
                start_time: rfc3339(s.start_time()),
                last_update: rfc3339(s.last_update()),
                version: s.version().to_owned(),
                node_id: s.node_id().to_owned(),
                score: s.system_score(),
            };
            let mut prefix = open_object(&head);
            prefix.extend_from_slice(&s.checks_json());
            prefix.extend_from_slice(b",\"uptime\":");
            Bytes::from(prefix)
        })
        .clone();
    let uptime = Bytes::from(format!("{}}}", nanos(s.uptime())));
    json_chunks(code(s.status().is_ready()), [prefix, uptime])
}

fn ready(engine: &Engine, _: Option<&str>) -> Response {
    ready_as(engine, Disclosure::Full)
}

fn ready_public(engine: &Engine, _: Option<&str>) -> Response {
    ready_as(engine, Disclosure::StatusOnly)
}

fn ready_as(engine: &Engine, disclosure: Disclosure) -> Response {
    let s = engine.snapshot();
    let ready = s.status().is_ready();
    let (cache, message) = match disclosure {
        Disclosure::Full => (&s.bodies.ready, s.message()),
        Disclosure::StatusOnly => (&s.bodies.ready_public, ""),
    };
    let body = cache
        .get_or_init(|| {
            let body = wire::Ready {
                message: message.to_owned(),
                ready,
                status: s.status(),
            };
            Bytes::from(to_json(&body))
        })
        .clone();
    json_chunks(code(ready), [body])
}

fn live(engine: &Engine, _: Option<&str>) -> Response {
    let s = engine.snapshot();
    let live = s.status().is_live();
    let body = wire::Live {
        live,
        status: s.status(),
        uptime: go_duration(s.uptime()),
    };
    json_body(code(live), &body)
}

fn checks(engine: &Engine, _: Option<&str>) -> Response {
    let s = engine.snapshot();
    let head = wire::ChecksHead {
        timestamp: rfc3339(s.last_update()),
        total: s.checks().len(),
    };
    let open = Bytes::from(open_object(&head));
    json_chunks(
        StatusCode::OK,
        [open, s.checks_json(), Bytes::from_static(b"}")],
    )
}

fn summary(engine: &Engine, _: Option<&str>) -> Response {
    let s = engine.snapshot();
    let config = engine.config();
    let count = |state: CheckState| {
        s.checks()
            .filter(|v| v.spec.enabled && v.state == state)
            .count()
    };
    let runs: u64 = s.checks().map(|v| v.stats.runs()).sum();
    let failed: u64 = s.checks().map(|v| v.stats.failed).sum();
    let last_check = s
        .checks()
        .filter_map(|v| v.last.as_ref().map(|r| r.timestamp))
        .max()
        .map(rfc3339);
    let body = wire::Summary {
        check_runs_failed: failed,
        check_runs_total: runs,
        component_scores: s
            .component_scores()
            .iter()
            .map(|(name, score)| (name.to_string(), *score))
            .collect(),
        key_metrics: wire::KeyMetrics {
            checks_critical: count(CheckState::Critical),
            checks_passing: count(CheckState::Passing),
            checks_registered: s.checks().len(),
            checks_unknown: count(CheckState::Unknown),
            checks_warning: count(CheckState::Warning),
            uptime: go_duration(s.uptime()),
        },
        last_check,
        message: s.message().to_owned(),
        node_id: s.node_id().to_owned(),
        overall_score: s.system_score(),
        status: s.status(),
        thresholds: wire::Thresholds {
            degraded: config.degraded_threshold,
            healthy: config.healthy_threshold,
        },
        // Check runs since start, not checks: `total_checks` is the CHORUS schema's name for it.
        total_checks: runs,
        version: s.version().to_owned(),
    };
    json_body(StatusCode::OK, &body)
}

async fn metrics_handler(State(engine): State<Engine>) -> Response {
    let snapshot = engine.snapshot();
    let shared = metrics::shared(&snapshot).await;
    let mut uptime = String::new();
    metrics::uptime(&snapshot, &mut uptime);
    let body = shared_body([shared, Bytes::from(uptime)]);
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], body).into_response()
}

/// `?verbose` and `?exclude=NAME` (repeatable), as kube-apiserver's `/livez` and `/readyz` take.
#[derive(Default)]
struct KubeQuery {
    verbose: bool,
    exclude: BTreeSet<String>,
}

impl KubeQuery {
    fn parse(query: &str) -> Self {
        let mut q = KubeQuery::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "verbose" => q.verbose = value != "false" && value != "0",
                "exclude" => {
                    q.exclude.insert(percent_decode(value));
                }
                _ => {}
            }
        }
        q
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One line of a kube-style verbose report.
struct Line<'a> {
    name: &'a str,
    ok: bool,
    note: &'static str,
}

/// A kube-style answer: whether every line passed, and the text.
#[derive(Clone, Debug)]
pub(crate) struct KubeAnswer {
    ok: bool,
    text: Bytes,
}

impl KubeAnswer {
    fn render(endpoint: &str, lines: &[Line<'_>], query: &KubeQuery) -> Self {
        let ok = lines.iter().all(|l| l.ok);
        let outcome = if ok { "passed" } else { "failed" };
        let mut text = String::new();
        if query.verbose {
            for line in lines {
                if line.ok {
                    let _ = writeln!(text, "[+]{} {}", line.name, line.note);
                } else {
                    let _ = writeln!(text, "[-]{} failed: reason withheld", line.name);
                }
            }
            for excluded in &query.exclude {
                let _ = writeln!(text, "[+]{excluded} excluded: ok");
            }
            let _ = writeln!(text, "{endpoint} check {outcome}");
        } else if ok {
            text.push_str("ok");
        } else {
            let _ = writeln!(text, "failed: {endpoint} check failed");
        }
        KubeAnswer {
            ok,
            text: Bytes::from(text),
        }
    }

    fn into_response(self) -> Response {
        let mut response = Response::new(axum::body::Body::from(self.text));
        *response.status_mut() = code(self.ok);
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}

/// Serves a kube-style endpoint: without a query, the answer cached in `cache` for this
/// snapshot; with one, rendered for it.
fn kube_endpoint(
    query: Option<&str>,
    disclosure: Disclosure,
    cache: &OnceLock<KubeAnswer>,
    render: impl Fn(&KubeQuery) -> KubeAnswer,
) -> Response {
    match query {
        None | Some("") => cache.get_or_init(|| render(&KubeQuery::default())).clone(),
        Some(query) => {
            let mut query = KubeQuery::parse(query);
            query.verbose &= disclosure == Disclosure::Full;
            render(&query)
        }
    }
    .into_response()
}

fn livez(engine: &Engine, query: Option<&str>, disclosure: Disclosure) -> Response {
    let s = engine.snapshot();
    kube_endpoint(query, disclosure, &s.bodies.livez, |query| {
        let mut lines = vec![Line {
            name: "ping",
            ok: true,
            note: "ok",
        }];
        if !query.exclude.contains("shutdown") {
            lines.push(Line {
                name: "shutdown",
                ok: s.status().is_live(),
                note: "ok",
            });
        }
        KubeAnswer::render("livez", &lines, query)
    })
}

fn readyz(engine: &Engine, query: Option<&str>, disclosure: Disclosure) -> Response {
    let s = engine.snapshot();
    kube_endpoint(query, disclosure, &s.bodies.readyz, |query| {
        let mut lines = vec![Line {
            name: "shutdown",
            ok: s.status() != Status::Stopping,
            note: "ok",
        }];
        let mut any_reported = false;
        for view in s.checks().filter(|v| v.spec.enabled) {
            if query.exclude.contains(view.spec.name.as_str()) {
                continue;
            }
            any_reported |= view.state != CheckState::Unknown;
            let (ok, note) = match (view.spec.critical, view.state) {
                (true, CheckState::Critical) => (false, ""),
                (true, CheckState::Unknown) => (false, ""),
                (true, CheckState::Warning) => (true, "ok (warning)"),
                (false, state) if state.is_failing() => (true, "ok (non-critical, failing)"),
                (false, CheckState::Unknown) => (true, "ok (no result yet)"),
                _ => (true, "ok"),
            };
            lines.push(Line {
                name: &view.spec.name,
                ok,
                note,
            });
        }
        if lines.len() > 1 && !any_reported {
            lines.push(Line {
                name: "first-result",
                ok: false,
                note: "",
            });
        }
        KubeAnswer::render("readyz", &lines, query)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Concurrent scrapes of one snapshot get the same text, rendered once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_scrapes_share_one_rendering() {
        use http_body_util::BodyExt;
        use tower::ServiceExt;

        let engine = Engine::builder().node_id("n1").build();
        for i in 0..200 {
            let spec = crate::CheckSpec::new(format!("check-{i}"));
            engine
                .register(spec, || async { crate::Report::pass("ok") })
                .expect("valid check");
        }
        let app: Router = router(engine.clone());
        let before = metrics::RENDERS.load(std::sync::atomic::Ordering::SeqCst);
        let scrapes = (0..32).map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                let request = axum::http::Request::get("/metrics")
                    .body(axum::body::Body::empty())
                    .expect("request");
                let response = app.oneshot(request).await.expect("response");
                assert_eq!(response.status(), StatusCode::OK);
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .expect("body")
                    .to_bytes();
                let text = String::from_utf8(body.to_vec()).expect("UTF-8");
                // The uptime alone changes from scrape to scrape.
                text.lines()
                    .filter(|line| !line.starts_with("vigil_uptime_seconds "))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        });
        let mut bodies = Vec::new();
        for scrape in scrapes {
            bodies.push(scrape.await.expect("scrape"));
        }
        assert!(bodies[0].contains("vigil_check_state{check=\"check-199\""));
        assert!(bodies[0].contains("vigil_uptime_seconds"));
        assert!(bodies.iter().all(|body| body == &bodies[0]));
        let renders = metrics::RENDERS.load(std::sync::atomic::Ordering::SeqCst) - before;
        assert_eq!(
            renders, 1,
            "32 scrapes of one snapshot rendered {renders} times"
        );
    }

    #[test]
    fn kube_query_reads_verbose_and_repeated_excludes() {
        let q = KubeQuery::parse("verbose&exclude=db&exclude=a%3Ab");
        assert!(q.verbose);
        assert_eq!(q.exclude.into_iter().collect::<Vec<_>>(), ["a:b", "db"]);
    }
}
