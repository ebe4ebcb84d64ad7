//! Webhooks: the agent's events (those `/v1/events` streams) posted to URLs a team chose — a chat
//! channel's incoming webhook, an incident tool, its own receiver.
//!
//! Each webhook takes the categories it wants (status, check, member, leader, service, election,
//! neighbor) at or above a minimum severity. The body is JSON with a one-line `text` (what
//! Slack-style incoming webhooks show) beside the event itself (`type`, `severity`, `node`,
//! `event`), so a chat channel and a program both take it as it is. With a secret, each request
//! carries `X-Vigil-Timestamp` (Unix seconds) and `X-Vigil-Signature: sha256=HEX`, the
//! HMAC-SHA256 of `TIMESTAMP.BODY` under the secret: a receiver checks the signature and refuses
//! old timestamps, so a recorded request cannot be replayed later.
//!
//! Delivery never holds the agent up: events go into a bounded queue per webhook, dropped (and
//! counted) when it is full; a failed delivery is retried with exponential backoff and jitter a
//! bounded number of times, then counted as failed. `vigil_webhook_deliveries_total{url,outcome}`
//! tells delivered, retried, failed and dropped.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use bytes::Bytes;
use rand::Rng;
use serde::Serialize;
use tokio::sync::mpsc;
use tracing::warn;

use crate::events::{Feed, FeedItem, Notice};
use crate::Api;

/// How bad an event is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Things as they should be, or a change made on purpose.
    Info,
    /// Something degraded: a check warning, a member suspected, a service short of instances.
    Warning,
    /// Something down: a critical check, a dead member, a service with no healthy instance.
    Critical,
}

impl Severity {
    /// Every severity, mildest first.
    pub const ALL: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Critical];

    /// Its name in config and payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// What an event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    /// The node's own status.
    Status,
    /// One of the node's checks.
    Check,
    /// A cluster member joining, failing, leaving.
    Member,
    /// The cluster's Raft leader.
    Leader,
    /// A registered service's instances.
    Service,
    /// An election or a lock of users' services.
    Election,
    /// A neighbour this node watches.
    Neighbor,
}

impl Category {
    /// Every category.
    pub const ALL: [Category; 7] = [
        Category::Status,
        Category::Check,
        Category::Member,
        Category::Leader,
        Category::Service,
        Category::Election,
        Category::Neighbor,
    ];

    /// Its name in config.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Status => "status",
            Category::Check => "check",
            Category::Member => "member",
            Category::Leader => "leader",
            Category::Service => "service",
            Category::Election => "election",
            Category::Neighbor => "neighbor",
        }
    }
}

/// A name that is none of a closed set's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} \"{given}\": write one of {choices}")]
pub struct UnknownName {
    what: &'static str,
    given: String,
    choices: String,
}

fn parse_named<T: Copy>(
    text: &str,
    what: &'static str,
    all: &[T],
    name: impl Fn(T) -> &'static str,
) -> Result<T, UnknownName> {
    all.iter()
        .copied()
        .find(|v| name(*v) == text)
        .ok_or_else(|| UnknownName {
            what,
            given: text.to_owned(),
            choices: all
                .iter()
                .map(|v| format!("\"{}\"", name(*v)))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

impl FromStr for Severity {
    type Err = UnknownName;
    fn from_str(text: &str) -> Result<Self, UnknownName> {
        parse_named(text, "severity", &Severity::ALL, Severity::as_str)
    }
}

impl FromStr for Category {
    type Err = UnknownName;
    fn from_str(text: &str) -> Result<Self, UnknownName> {
        parse_named(text, "event category", &Category::ALL, Category::as_str)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One webhook, as configured (`[[webhooks]]`).
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSpec {
    /// Where events are posted (`http://` or `https://`).
    pub url: String,
    /// The categories it wants.
    pub categories: Vec<Category>,
    /// Events milder than this are not sent.
    pub min_severity: Severity,
    /// The HMAC-SHA256 key of the signature header; none: unsigned.
    pub secret: Option<String>,
    /// How long one delivery attempt may take.
    pub timeout: Duration,
    /// Attempts after the first before an event is given up.
    pub retries: u32,
    /// Events waiting for delivery at most; more are dropped.
    pub queue: usize,
}

impl fmt::Debug for WebhookSpec {
    /// The secret stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSpec")
            .field("url", &self.url)
            .field("categories", &self.categories)
            .field("min_severity", &self.min_severity)
            .field("secret", &self.secret.as_ref().map(|_| "<set>"))
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("queue", &self.queue)
            .finish()
    }
}

impl WebhookSpec {
    /// Whether this webhook wants `notice`.
    fn wants(&self, notice: &Notice) -> bool {
        notice.severity >= self.min_severity && self.categories.contains(&notice.category)
    }
}

/// The first retry waits this long; each next one twice as long, up to [`BACKOFF_MAX`].
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
/// The longest wait between two attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// How long to wait before retry number `attempt` (0 for the first retry): doubling from
/// 250 ms up to 30 s, between half and all of it at random, so that many
/// agents whose receiver came back do not all retry at once.
pub fn backoff(attempt: u32, rng: &mut impl Rng) -> Duration {
    let full = BACKOFF_FIRST
        .saturating_mul(2u32.saturating_pow(attempt.min(16)))
        .min(BACKOFF_MAX);
    full.mul_f64(rng.random_range(0.5..=1.0))
}

/// `sha256=HEX`, the HMAC-SHA256 of `TIMESTAMP.BODY` under `secret`.
pub fn signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let mut context = ring::hmac::Context::with_key(&key);
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    let tag = context.sign();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for byte in tag.as_ref() {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// The body of a delivery.
#[derive(Serialize)]
struct Payload<'a> {
    /// One line for people (what chat webhooks show).
    text: String,
    #[serde(rename = "type")]
    kind: &'a str,
    severity: Severity,
    node: &'a str,
    event: &'a serde_json::Value,
}

/// Outcomes counted per webhook.
#[derive(Debug, Default)]
struct Counts {
    delivered: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

/// One running webhook: its spec, its counts and its queue.
#[derive(Debug)]
struct Hook {
    spec: WebhookSpec,
    counts: Counts,
    queue: mpsc::Sender<Bytes>,
}

/// The agent's webhooks, running. Cheap to clone; every clone sees the same set, which
/// [`Webhooks::replace`] swaps whole (a config reload).
#[derive(Clone, Debug, Default)]
pub struct Webhooks {
    hooks: Arc<ArcSwap<Vec<Arc<Hook>>>>,
    client: reqwest::Client,
}

impl Webhooks {
    /// Starts delivering `api`'s events to each of `specs` — and to the webhooks of later
    /// [`Webhooks::replace`] calls — until the agent's events end (it stops). Needs a Tokio
    /// runtime.
    pub fn start(api: &Api, specs: Vec<WebhookSpec>) -> Webhooks {
        let client = reqwest::Client::builder()
            .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        let webhooks = Webhooks {
            hooks: Arc::default(),
            client,
        };
        webhooks.replace(specs);
        let node = api.engine.snapshot().node_id().to_owned();
        tokio::spawn(dispatch(Feed::of(api), node, webhooks.hooks.clone()));
        webhooks
    }

    /// Delivers to `specs` from now on. A webhook dropped from the set stops once the event it
    /// is delivering is done (what its queue still held is not sent); one kept (the same spec)
    /// goes on with its queue and counts.
    pub fn replace(&self, specs: Vec<WebhookSpec>) {
        let running = self.hooks.load_full();
        let hooks = specs
            .into_iter()
            .map(|spec| {
                if let Some(kept) = running.iter().find(|hook| hook.spec == spec) {
                    return kept.clone();
                }
                let (queue, receive) = mpsc::channel(spec.queue.max(1));
                let hook = Arc::new(Hook {
                    spec,
                    counts: Counts::default(),
                    queue,
                });
                tokio::spawn(deliver(Arc::downgrade(&hook), self.client.clone(), receive));
                hook
            })
            .collect();
        self.hooks.store(Arc::new(hooks));
    }

    /// `vigil_webhook_deliveries_total`, for `/metrics`.
    pub(crate) fn render_metrics(&self, out: &mut String) {
        let hooks = self.hooks.load();
        if hooks.is_empty() {
            return;
        }
        out.push_str(
            "# HELP vigil_webhook_deliveries_total Events by webhook and outcome: delivered, \
             retried (attempts after a failure), failed (given up after the retries), dropped \
             (the queue was full).\n# TYPE vigil_webhook_deliveries_total counter\n",
        );
        for hook in hooks.iter() {
            let url = hook.spec.url.replace('\\', "\\\\").replace('"', "\\\"");
            let counts = &hook.counts;
            for (outcome, count) in [
                ("delivered", &counts.delivered),
                ("retried", &counts.retried),
                ("failed", &counts.failed),
                ("dropped", &counts.dropped),
            ] {
                out.push_str(&format!(
                    "vigil_webhook_deliveries_total{{url=\"{url}\",outcome=\"{outcome}\"}} {}\n",
                    count.load(Ordering::Relaxed)
                ));
            }
        }
    }
}

/// Reads the agent's events and queues each for the webhooks that want it.
async fn dispatch(mut feed: Feed, node: String, hooks: Arc<ArcSwap<Vec<Arc<Hook>>>>) {
    while let Some(item) = feed.next().await {
        let hooks = hooks.load();
        let notice = match item {
            FeedItem::Event(notice) => notice,
            FeedItem::Lagged(missed) => {
                // Events the feed itself missed: none of the webhooks got them.
                for hook in hooks.iter() {
                    hook.counts.dropped.fetch_add(missed, Ordering::Relaxed);
                }
                continue;
            }
        };
        let wanted: Vec<&Arc<Hook>> = hooks.iter().filter(|h| h.spec.wants(&notice)).collect();
        if wanted.is_empty() {
            continue;
        }
        let payload = Payload {
            text: format!("[{node}] {}", notice.text),
            kind: &notice.kind,
            severity: notice.severity,
            node: &node,
            event: &notice.data,
        };
        let Ok(body) = serde_json::to_vec(&payload) else {
            continue;
        };
        let body = Bytes::from(body);
        for hook in wanted {
            if hook.queue.try_send(body.clone()).is_err() {
                hook.counts.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Delivers one webhook's queued events in order, each retried with backoff until it is
/// delivered or its retries run out.
async fn deliver(hook: Weak<Hook>, client: reqwest::Client, mut queue: mpsc::Receiver<Bytes>) {
    // The queue ends once the webhook left the set (its sender is dropped with it) and is empty.
    while let Some(body) = queue.recv().await {
        let Some(hook) = hook.upgrade() else {
            return;
        };
        let mut attempt = 0;
        loop {
            match post(&client, &hook.spec, body.clone()).await {
                Ok(()) => {
                    hook.counts.delivered.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(error) if attempt < hook.spec.retries => {
                    hook.counts.retried.fetch_add(1, Ordering::Relaxed);
                    let wait = backoff(attempt, &mut rand::rng());
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                    if attempt == 1 {
                        warn!(url = %hook.spec.url, %error, "webhook delivery failed; retrying");
                    }
                }
                Err(error) => {
                    hook.counts.failed.fetch_add(1, Ordering::Relaxed);
                    warn!(url = %hook.spec.url, %error, retries = hook.spec.retries, "webhook event given up");
                    break;
                }
            }
        }
    }
}

/// One attempt: `Ok` for a 2xx answer.
async fn post(client: &reqwest::Client, spec: &WebhookSpec, body: Bytes) -> Result<(), String> {
    let mut request = client
        .post(&spec.url)
        .timeout(spec.timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    if let Some(secret) = &spec.secret {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        request = request.header("X-Vigil-Timestamp", timestamp).header(
            "X-Vigil-Signature",
            signature(secret.as_bytes(), timestamp, &body),
        );
    }
    let response = request.body(body).send().await.map_err(|e| e.to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("answered {}", response.status()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_unknown_ones_say_what_would_do() {
        assert_eq!("warning".parse::<Severity>(), Ok(Severity::Warning));
        assert_eq!("election".parse::<Category>(), Ok(Category::Election));
        let error = "loud".parse::<Severity>().unwrap_err().to_string();
        assert_eq!(
            error,
            "unknown severity \"loud\": write one of \"info\", \"warning\", \"critical\""
        );
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_with_jitter() {
        let mut rng = rand::rng();
        for attempt in 0..40 {
            let wait = backoff(attempt, &mut rng);
            let full = BACKOFF_FIRST
                .saturating_mul(2u32.saturating_pow(attempt.min(16)))
                .min(BACKOFF_MAX);
            assert!(wait >= full / 2 && wait <= full, "{attempt}: {wait:?}");
        }
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // RFC 4231 test case 2 (key "Jefe"), whose data is the message below.
        let signed = signature(b"Jefe", 0, b"");
        assert_eq!(signed.len(), 7 + 64);
        let message = b"what do ya want for nothing?";
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"Jefe");
        let tag = ring::hmac::sign(&key, message);
        assert_eq!(
            tag.as_ref()[..4],
            [0x5b, 0xdc, 0xc1, 0x46],
            "ring computes HMAC-SHA256"
        );
        let ours = signature(b"Jefe", 1700000000, b"{}");
        let expected = ring::hmac::sign(&key, b"1700000000.{}");
        let hex: String = expected
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(ours, format!("sha256={hex}"));
    }
}
