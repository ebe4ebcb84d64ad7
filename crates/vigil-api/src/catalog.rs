//! The registry as this agent holds it, so that discovery is answered with no hop: on a voter,
//! what its own Raft state machine applied; on any other node, a copy that follows a voter's
//! `GET /v1/registry` with blocking queries, so it changes within one round trip of the voter.
//!
//! Also serves `GET /v1/registry[?index=N&wait=D]`, the copy's source: the whole registry with
//! the Raft index it was read at, returned once the index passes `N` (or at the wait).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::debug;
use vigil_cluster::raft::{Leadership, Published};
use vigil_cluster::Cluster;

use crate::error::ApiError;
use crate::{forward, wire, Api};

/// Names the Raft index an answer reflects; a blocking query passes it back as `?index=`.
pub const INDEX: &str = "x-vigil-index";
/// How long a copy's blocking query waits at a voter.
const FOLLOW_WAIT: Duration = Duration::from_secs(10);
/// Pause before asking another voter after a failure (doubled up to [`RETRY_MAX`]).
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// Largest registry a copy accepts from a voter.
const MAX_REGISTRY_BYTES: usize = 256 * 1024 * 1024;

/// The registry this agent answers from. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Catalog {
    current: watch::Receiver<Arc<Published>>,
    source: Source,
}

/// Where the registry comes from.
#[derive(Clone, Debug)]
enum Source {
    /// This voter's state machine.
    Voter(Leadership),
    /// A copy; the time of its last answer from a voter is kept beside it.
    Copy {
        last_answer: Arc<Mutex<Option<Instant>>>,
        _follower: Arc<Follower>,
    },
}

#[derive(Debug)]
struct Follower(JoinHandle<()>);

impl Drop for Follower {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Catalog {
    /// A voter's catalog: its own state machine's registry.
    pub fn of_voter(leadership: &Leadership) -> Catalog {
        Catalog {
            current: leadership.watch_registry(),
            source: Source::Voter(leadership.clone()),
        }
    }

    /// A copy kept by following the live voters of `cluster`, for a node that is not one,
    /// reading with the token `readers` present. Must be called inside a tokio runtime.
    pub fn follow(cluster: Cluster, readers: crate::auth::Readers) -> Catalog {
        let (send, current) = watch::channel(Arc::new(Published::default()));
        let last_answer = Arc::new(Mutex::new(None));
        let task = tokio::spawn(follow(cluster, readers, send, last_answer.clone()));
        Catalog {
            current,
            source: Source::Copy {
                last_answer,
                _follower: Arc::new(Follower(task)),
            },
        }
    }

    /// A catalog that holds what `current` is sent, for tests. Must be called inside a tokio
    /// runtime.
    #[cfg(test)]
    pub(crate) fn of_watch(current: watch::Receiver<Arc<Published>>) -> Catalog {
        Catalog {
            current,
            source: Source::Copy {
                last_answer: Arc::new(Mutex::new(None)),
                _follower: Arc::new(Follower(tokio::spawn(async {}))),
            },
        }
    }

    /// How old the registry may be, in milliseconds: on a voter, as Raft says
    /// ([`vigil_cluster::raft::LeaderStatus::stale_ms`]); on a copy, the time since a voter
    /// last answered (`None`: never).
    pub fn stale_ms(&self) -> Option<u64> {
        match &self.source {
            Source::Voter(leadership) => leadership.stale_ms(),
            Source::Copy { last_answer, .. } => last_answer
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .map(|at| u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX)),
        }
    }

    /// The registry as last applied (or copied).
    pub fn current(&self) -> Arc<Published> {
        self.current.borrow().clone()
    }

    /// The registry as last applied, and each change of it: a receiver whose `has_changed` is
    /// a cheap way to tell that something built from the registry is out of date.
    pub fn changes(&self) -> watch::Receiver<Arc<Published>> {
        self.current.clone()
    }

    /// The registry once `index_of` it passes `index`, or as it is after `wait`.
    pub async fn after(
        &self,
        index: u64,
        wait: Duration,
        index_of: impl Fn(&Published) -> u64,
    ) -> Arc<Published> {
        let mut changes = self.current.clone();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let now = changes.borrow_and_update().clone();
            if index_of(&now) > index {
                return now;
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) | Err(_) => return self.current(),
            }
        }
    }

    /// Tells of every change.
    pub fn watch(&self) -> watch::Receiver<Arc<Published>> {
        self.current.clone()
    }
}

/// Keeps `send` in step with a live voter's registry, one blocking query after another.
async fn follow(
    cluster: Cluster,
    readers: crate::auth::Readers,
    send: watch::Sender<Arc<Published>>,
    last_answer: Arc<Mutex<Option<Instant>>>,
) {
    let client = forward::peer_client();
    let mut retry = RETRY_MIN;
    let mut turn = 0usize;
    loop {
        let voters = forward::voters(&cluster);
        if voters.is_empty() {
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(RETRY_MAX);
            continue;
        }
        let voter = voters[turn % voters.len()];
        let index = send.borrow().applied_index.unwrap_or(0);
        let url = forward::peer_url(
            voter,
            &format!("/v1/registry?index={index}&wait={}s", FOLLOW_WAIT.as_secs()),
        );
        match fetch(client, &url, &readers).await {
            Ok(copy) => {
                retry = RETRY_MIN;
                *last_answer.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
                if copy.applied_index.unwrap_or(0) >= index {
                    send.send_replace(Arc::new(Published {
                        registry: copy.registry,
                        applied_index: copy.applied_index,
                    }));
                }
            }
            Err(e) => {
                debug!(%voter, error = %e, "registry copy: voter did not answer");
                turn = turn.wrapping_add(1);
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(RETRY_MAX);
            }
        }
    }
}

async fn fetch(
    client: &reqwest::Client,
    url: &str,
    readers: &crate::auth::Readers,
) -> Result<wire::RegistryCopy, String> {
    let mut request = client
        .get(url)
        .timeout(FOLLOW_WAIT + Duration::from_secs(5));
    if let Some(bearer) = readers.bearer() {
        request = request.header(axum::http::header::AUTHORIZATION, bearer);
    }
    let mut answer = request.send().await.map_err(|e| e.to_string())?;
    if !answer.status().is_success() {
        return Err(format!("status {}", answer.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_REGISTRY_BYTES {
            return Err(format!("registry larger than {MAX_REGISTRY_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| e.to_string())
}

/// `GET /v1/registry`, on a voter.
pub(crate) fn routes(api: &Api) -> Router {
    if api.leadership.is_none() {
        return Router::new();
    }
    Router::new()
        .route("/v1/registry", get(registry))
        .with_state(api.clone())
}

/// A blocking query's parameters: `?index=N&wait=D`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct Blocking {
    /// Answer once the index passes this one (or at the wait).
    pub(crate) index: Option<u64>,
    /// How long to wait for a change (`30s`, `5m`; at most 10m; default 5m).
    pub(crate) wait: Option<String>,
}

/// Default wait of a blocking query, as Consul's.
const DEFAULT_WAIT: Duration = Duration::from_secs(300);

impl Blocking {
    /// The index to wait past and for how long, or `None` for an answer at once; a bad `wait`
    /// is a 400. The wait is allowed to the request of `parts` (see [`crate::serve::Patience`]),
    /// which would otherwise time out long before a wait of minutes.
    pub fn parse_for(&self, parts: &Parts) -> Result<Option<(u64, Duration)>, ApiError> {
        let blocking = self.parse()?;
        if let Some((_, wait)) = blocking {
            crate::serve::allow_wait(parts, wait);
        }
        Ok(blocking)
    }

    /// [`Blocking::parse_for`] for a caller that makes room for the wait itself.
    pub(crate) fn parse(&self) -> Result<Option<(u64, Duration)>, ApiError> {
        let wait = match &self.wait {
            Some(text) => vigil_text::limits::QUERY_WAIT
                .parse(text)
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
            None => DEFAULT_WAIT,
        };
        Ok(self.index.map(|index| (index, wait)))
    }
}

/// `X-Vigil-Index: index`.
pub fn index_header(index: u64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(INDEX, index.into());
    headers
}

/// `GET /v1/registry`: the whole registry, for agents that keep a copy.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/v1/registry", tag = "services",
    params(Blocking),
    responses(
        (status = 200, description = "The registry and the Raft index it was read at (voters only; other agents follow it)",
            body = wire::RegistryCopy, headers(("x-vigil-index" = u64))),
        (status = 400, description = "A bad `wait`", body = wire::ErrorBody),
    )))]
pub async fn registry(
    State(api): State<Api>,
    Query(blocking): Query<Blocking>,
    parts: Parts,
) -> Response {
    let Some(catalog) = &api.catalog else {
        return ApiError::not_found("this node holds no registry").into_response();
    };
    let published = match blocking.parse_for(&parts) {
        Ok(Some((index, wait))) => {
            catalog
                .after(index, wait, |p| p.applied_index.unwrap_or(0))
                .await
        }
        Ok(None) => catalog.current(),
        Err(e) => return e.into_response(),
    };
    let index = published.applied_index.unwrap_or(0);
    let body = wire::RegistryCopy {
        applied_index: published.applied_index,
        registry: published.registry.clone(),
    };
    (index_header(index), Json(body)).into_response()
}
