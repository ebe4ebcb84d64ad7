//! Discovery reads answered ahead of the router from bodies already rendered, as the probe
//! endpoints are (see [`crate::serve::App::direct`]): vigil's `GET /v1/services/{name}` and
//! Consul's `GET /v1/health/service/{name}`. A load balancer, Prometheus or a client library
//! that polls `?healthy` / `?passing` asks the same question many times between two registry
//! changes, and serializing the same instances to JSON for each of them cost the agent more than
//! the socket.
//!
//! A body is kept per request target (path and query) and is good for as long as the catalog
//! holds the registry it was rendered from and this agent's membership holds each of the
//! service's nodes as it did then — gone or not (a node gone here makes its instances critical
//! before the registry says so), at the same address with the same tags (Consul's answer shows
//! them). Blocking and `?consistent` queries, unknown services and bad queries are left to the
//! router, so the answers are its answers. The cache is bounded in entries and bytes: every
//! distinct query string is a new key, and anyone can send those.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Weak};

use arc_swap::ArcSwap;

use axum::extract::Query;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use vigil_cluster::raft::Published;
use vigil_cluster::ClusterView;

use crate::catalog::INDEX;
use crate::discovery::{gone_here, service_body, Discovery};
use crate::error::ApiError;
use crate::leader::{SERVED_BY, STALE_MS};
use crate::serve::DirectAnswer;
use crate::{consul, Api};

/// The header names, made once rather than parsed per answer.
const INDEX_HEADER: HeaderName = HeaderName::from_static(INDEX);
const SERVED_BY_HEADER: HeaderName = HeaderName::from_static(SERVED_BY);
const STALE_MS_HEADER: HeaderName = HeaderName::from_static(STALE_MS);
/// Most answers kept.
const MAX_ANSWERS: usize = 256;
/// Most bytes of bodies and keys kept; a body larger than a quarter of it is never kept, so
/// that one service's answer cannot push out all the others.
const MAX_BYTES: usize = 16 * 1024 * 1024;

/// Discovery answers already rendered, by request target.
#[derive(Debug, Default)]
pub(crate) struct Answers {
    /// Swapped whole when an answer is added, so that reading it takes no lock: a lock's count
    /// of readers would bounce between the cores that serve requests.
    kept: ArcSwap<Kept>,
}

#[derive(Clone, Debug, Default)]
struct Kept {
    by_target: HashMap<Arc<str>, Arc<Answer>>,
    /// Bytes of every body and key in `by_target`.
    bytes: usize,
}

/// The API a kept answer belongs to, which decides how it is rendered and the headers that
/// change from request to request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Surface {
    /// `GET /v1/services/{name}`.
    Vigil,
    /// `GET /v1/health/service/{name}`.
    Consul,
}

impl Surface {
    /// The surface `path` asks and the service it names.
    fn of(path: &str) -> Option<(Surface, &str)> {
        if let Some(name) = path.strip_prefix("/v1/services/") {
            return Some((Surface::Vigil, name));
        }
        path.strip_prefix("/v1/health/service/")
            .map(|name| (Surface::Consul, name))
    }

    /// How the read `uri` can be answered from a kept body, or `None` for a read the router
    /// answers.
    fn read(self, uri: &Uri) -> Option<consul::KeptRead> {
        match self {
            // Blocking reads of vigil's own API are the router's; `render` tells the rest.
            Surface::Vigil => Some(consul::KeptRead::Now),
            Surface::Consul => consul::kept_read(uri),
        }
    }

    /// The headers and body of `name`'s answer to `uri` from `published`, or `None` for a read
    /// the router answers.
    fn render(
        self,
        api: &Api,
        published: &Published,
        view: &ClusterView,
        name: &str,
        uri: &Uri,
    ) -> Option<(HeaderMap, Bytes)> {
        let mut headers = HeaderMap::with_capacity(4);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let body = match self {
            Surface::Vigil => {
                let Query(query) = Query::<Discovery>::try_from_uri(uri).ok()?;
                let filter = query.plain_filter()?;
                if let Ok(node) = HeaderValue::from_str(api.engine.snapshot().node_id()) {
                    headers.insert(SERVED_BY_HEADER, node);
                }
                headers.insert(INDEX_HEADER, published.registry.service_index(name).into());
                let body = service_body(published, Some(view), name.to_owned(), &filter);
                serde_json::to_vec(&body).ok()?
            }
            Surface::Consul => {
                let (index, body) = consul::kept_body(published, view, name, uri)?;
                headers.insert(consul::INDEX, index.into());
                body
            }
        };
        Some((headers, Bytes::from(body)))
    }

    /// Adds the headers that change from request to request to an answer: how stale this
    /// agent's copy is (`None`: no leader known).
    fn stamp(self, headers: &mut HeaderMap, stale_ms: Option<u64>) {
        match self {
            Surface::Vigil => {
                // A leader with quorum says 0 on every request: a static value spares an
                // allocation.
                let stale = match stale_ms {
                    Some(0) => HeaderValue::from_static("0"),
                    Some(ms) => HeaderValue::from(ms),
                    None => HeaderValue::from_static("unknown"),
                };
                headers.insert(STALE_MS_HEADER, stale);
            }
            Surface::Consul => consul::leader_contact(headers, stale_ms),
        }
    }
}

/// What an answer shows of a node from this agent's membership: whether it is gone, its address
/// and its tags, hashed.
fn node_seen(view: &ClusterView, node: &str) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    gone_here(view, node).hash(&mut hasher);
    if let Some(member) = view.member(node) {
        member.addr.hash(&mut hasher);
        member.tags.hash(&mut hasher);
    }
    hasher.finish()
}

/// One rendered answer and what it was rendered from.
#[derive(Debug)]
struct Answer {
    /// Which API it answers.
    surface: Surface,
    /// The registry it was rendered from. Weak, so that an answer kept does not keep an old
    /// registry alive; while it is held the allocation stays, so an equal pointer is the same
    /// registry.
    published: Weak<Published>,
    /// Each node the service's instances are on, and what this agent's membership showed of it
    /// when the answer was rendered ([`node_seen`]).
    nodes: Vec<(String, u64)>,
    /// Every header but those [`Surface::stamp`] adds.
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    /// Whether the answer still holds for `published` and this agent's membership `view`.
    fn holds(&self, published: &Arc<Published>, view: &ClusterView) -> bool {
        std::ptr::eq(self.published.as_ptr(), Arc::as_ptr(published))
            && self
                .nodes
                .iter()
                .all(|(node, seen)| node_seen(view, node) == *seen)
    }

    fn size(&self, target: &str) -> usize {
        self.body.len() + target.len()
    }

    /// The answer, stamped with how stale this agent's copy is.
    fn response(&self, stale_ms: Option<u64>) -> Response {
        let mut response = Response::new(vigil_health::http::shared_body([self.body.clone()]));
        *response.headers_mut() = self.headers.clone();
        self.surface.stamp(response.headers_mut(), stale_ms);
        response
    }
}

impl Answers {
    /// The answer kept for `target`, stamped with `stale_ms`, if it still holds.
    fn respond(
        &self,
        target: &str,
        published: &Arc<Published>,
        view: &ClusterView,
        stale_ms: Option<u64>,
    ) -> Option<Response> {
        let kept = self.kept.load();
        let answer = kept.by_target.get(target)?;
        answer
            .holds(published, view)
            .then(|| answer.response(stale_ms))
    }

    /// Keeps `answer` for `target`, making room first: answers of an older registry go, then
    /// any others until it fits.
    fn put(&self, target: &str, answer: Arc<Answer>, published: &Arc<Published>) {
        let size = answer.size(target);
        if size > MAX_BYTES / 4 {
            return;
        }
        let target: Arc<str> = target.into();
        self.kept.rcu(|kept| {
            let mut kept = Kept::clone(kept);
            kept.make_room(&target, size, published);
            kept.bytes += size;
            kept.by_target.insert(target.clone(), answer.clone());
            kept
        });
    }

    #[cfg(test)]
    fn len(&self) -> (usize, usize) {
        let kept = self.kept.load();
        (kept.by_target.len(), kept.bytes)
    }
}

impl Kept {
    /// Drops the answer for `target` and makes room for one of `size` bytes: answers of a
    /// registry older than `published` go, then any others until it fits.
    fn make_room(&mut self, target: &str, size: usize, published: &Arc<Published>) {
        if let Some(old) = self.by_target.remove(target) {
            self.bytes -= old.size(target);
        }
        let full =
            |kept: &Kept| kept.by_target.len() >= MAX_ANSWERS || kept.bytes + size > MAX_BYTES;
        if full(self) {
            let current = Arc::as_ptr(published);
            let mut freed = 0;
            self.by_target.retain(|target, answer| {
                let keep = std::ptr::eq(answer.published.as_ptr(), current);
                if !keep {
                    freed += answer.size(target);
                }
                keep
            });
            self.bytes -= freed;
        }
        while full(self) {
            let Some(target) = self.by_target.keys().next().cloned() else {
                break;
            };
            if let Some(old) = self.by_target.remove(&target) {
                self.bytes -= old.size(&target);
            }
        }
    }
}

/// Answers a `GET` or `HEAD` of `/v1/services/{name}` or `/v1/health/service/{name}` that reads
/// this agent's catalog — at once, or for Consul's surface also once it passes `?index=` — from a
/// kept body when one holds; `None` for any other request, which the router answers. Methods are
/// the caller's to check.
pub(crate) fn respond(api: &Api, answers: &Arc<Answers>, request: &Parts) -> Option<DirectAnswer> {
    let (surface, name) = Surface::of(request.uri.path())?;
    // The router's path extractor decodes `%`; a name with none is the same as it reads it.
    if name.is_empty() || name.contains(['/', '%']) {
        return None;
    }
    // Discovery is served on a node in a cluster only, which is also when it has a catalog.
    let (Some(catalog), Some(_)) = (&api.catalog, &api.cluster) else {
        return None;
    };
    let target = request.uri.path_and_query()?.as_str();
    match surface.read(&request.uri)? {
        consul::KeptRead::Now => {
            let published = catalog.current();
            answer(api, answers, surface, name, target, published, &request.uri)
                .map(DirectAnswer::Now)
        }
        consul::KeptRead::After { index, wait } => {
            let (api, answers, catalog) = (api.clone(), answers.clone(), catalog.clone());
            let (name, target, uri) = (name.to_owned(), target.to_owned(), request.uri.clone());
            let response = async move {
                let published = catalog
                    .after(index, wait, |p| p.registry.service_index(&name))
                    .await;
                answer(&api, &answers, surface, &name, &target, published, &uri).unwrap_or_else(
                    || {
                        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "no answer rendered")
                            .into_response()
                    },
                )
            };
            Some(DirectAnswer::Waiting {
                wait,
                response: Box::pin(response),
            })
        }
    }
}

/// The answer to `target` from `published`: the kept one while it holds, else rendered and kept.
/// Clients that waited for the same change with the same query share one rendering.
fn answer(
    api: &Api,
    answers: &Answers,
    surface: Surface,
    name: &str,
    target: &str,
    published: Arc<Published>,
    uri: &Uri,
) -> Option<Response> {
    let (Some(catalog), Some(cluster)) = (&api.catalog, &api.cluster) else {
        return None;
    };
    let view = cluster.view();
    let stale_ms = catalog.stale_ms();
    if let Some(response) = answers.respond(target, &published, &view, stale_ms) {
        return Some(response);
    }
    let of = published.registry.services.get(name);
    // vigil's own API answers an unknown service with a 404, which is the router's to make;
    // Consul's answers it with an empty list.
    if of.is_none() && surface == Surface::Vigil {
        return None;
    }
    let mut nodes: Vec<(String, u64)> = Vec::new();
    for instance in of.into_iter().flat_map(|of| of.values()) {
        if !nodes.iter().any(|(node, _)| *node == instance.node) {
            nodes.push((instance.node.clone(), node_seen(&view, &instance.node)));
        }
    }
    let (headers, body) = surface.render(api, &published, &view, name, uri)?;
    let answer = Arc::new(Answer {
        surface,
        published: Arc::downgrade(&published),
        nodes,
        headers,
        body,
    });
    answers.put(target, answer.clone(), &published);
    Some(answer.response(stale_ms))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use axum::body::Body;
    use axum::http::Request;
    use tokio::sync::watch;
    use tower::ServiceExt;
    use vigil_cluster::raft::{Registry, ServiceInstance};
    use vigil_cluster::{Cluster, ClusterConfig, MemberView};
    use vigil_gossip::{Health, MemberState, Role};
    use vigil_health::Engine;

    use super::*;
    use crate::catalog::Catalog;
    use crate::Token;

    fn instance(id: &str, node: &str, tags: &[&str], checks: usize) -> ServiceInstance {
        ServiceInstance {
            name: "api".into(),
            id: id.into(),
            address: "10.0.0.1".into(),
            port: 8080,
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            node: node.into(),
            ephemeral: false,
            checks: (0..checks)
                .map(|i| {
                    let mut body = serde_json::Map::new();
                    body.insert("probe".into(), "tcp://10.0.0.1:8080".into());
                    (format!("c{i}"), vigil_cluster::raft::CheckBody::new(&body))
                })
                .collect(),
            deregister_critical_after_ms: None,
        }
    }

    fn published(index: u64, instances: &[ServiceInstance]) -> Arc<Published> {
        let mut registry = Registry::default();
        for i in instances {
            registry
                .services
                .entry(i.name.clone())
                .or_default()
                .insert(i.id.clone(), i.clone());
            registry.modified.insert(i.name.clone(), index);
        }
        Arc::new(Published {
            registry,
            applied_index: Some(index),
        })
    }

    /// The API of node `n1`, alone in its cluster, answering from `current`.
    async fn api(current: watch::Receiver<Arc<Published>>) -> Api {
        let bind = "127.0.0.1:0".parse().unwrap();
        let cluster = Cluster::start(ClusterConfig::new("n1", bind))
            .await
            .unwrap();
        Api {
            engine: Engine::builder().node_id("n1").build(),
            token: Token::new(None),
            read_token: Token::default(),
            cluster: Some(cluster),
            leadership: None,
            neighbors: None,
            catalog: Some(Catalog::of_watch(current)),
            instances: None,
            webhooks: Default::default(),
            reload: Default::default(),
        }
    }

    /// The response of an answer made at once.
    fn now(answer: DirectAnswer) -> Response {
        match answer {
            DirectAnswer::Now(response) => response,
            _ => panic!("answered at once"),
        }
    }

    fn parts(target: &str) -> Parts {
        Request::get(target).body(()).unwrap().into_parts().0
    }

    /// Status, the headers a discovery answer carries and the body.
    async fn read(response: Response) -> (u16, Vec<Option<String>>, Bytes) {
        read_with(
            response,
            &[header::CONTENT_TYPE.as_str(), INDEX, SERVED_BY, STALE_MS],
        )
        .await
    }

    /// Status, the headers `names` and the body.
    async fn read_with(response: Response, names: &[&str]) -> (u16, Vec<Option<String>>, Bytes) {
        let headers = names
            .iter()
            .map(|h| {
                response
                    .headers()
                    .get(*h)
                    .map(|v| v.to_str().unwrap().to_owned())
            })
            .collect();
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, headers, body)
    }

    async fn routed(api: &Api, target: &str) -> (u16, Vec<Option<String>>, Bytes) {
        let request = Request::get(target).body(Body::empty()).unwrap();
        read(api.clone().router().oneshot(request).await.unwrap()).await
    }

    #[tokio::test]
    async fn kept_answers_are_the_routers_answers_and_follow_the_registry() {
        let first = [
            instance("a1", "n1", &["blue"], 0),
            instance("a2", "n2", &[], 0),
            instance("a3", "n2", &["blue"], 1),
        ];
        let (send, current) = watch::channel(published(7, &first));
        let api = api(current).await;
        let answers = Arc::new(Answers::default());
        let targets = [
            "/v1/services/api",
            "/v1/services/api?healthy",
            "/v1/services/api?healthy=passing",
            "/v1/services/api?healthy=warning",
            "/v1/services/api?healthy=false",
            "/v1/services/api?tag=blue",
            "/v1/services/api?node=n2&healthy",
            "/v1/services/api?consistent=false",
        ];
        for round in 0..2 {
            if round == 1 {
                let mut more = first.to_vec();
                more.push(instance("a4", "n1", &["blue"], 0));
                send.send_replace(published(9, &more));
            }
            for target in targets {
                let routed = routed(&api, target).await;
                assert_eq!(routed.0, 200, "{target}");
                for _ in 0..2 {
                    let direct = now(respond(&api, &answers, &parts(target)).expect(target));
                    assert_eq!(read(direct).await, routed, "{target} in round {round}");
                }
            }
            assert_eq!(answers.len().0, targets.len(), "one kept answer per target");
        }
        let (_, headers, body) =
            read(now(respond(&api, &answers, &parts(targets[1])).unwrap())).await;
        assert_eq!(headers[1].as_deref(), Some("9"));
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["instances"].as_array().unwrap().len(), 3);
    }

    /// Status, Consul's headers and the body.
    async fn read_consul(response: Response) -> (u16, Vec<Option<String>>, Bytes) {
        let names = [
            header::CONTENT_TYPE.as_str(),
            "x-consul-index",
            "x-consul-knownleader",
            "x-consul-lastcontact",
        ];
        read_with(response, &names).await
    }

    #[tokio::test]
    async fn kept_consul_answers_are_the_routers_answers() {
        let first = [
            instance("a1", "n1", &["blue"], 0),
            instance("a2", "n1", &[], 1),
        ];
        let (send, current) = watch::channel(published(4, &first));
        let api = api(current).await;
        let answers = Arc::new(Answers::default());
        let targets = [
            "/v1/health/service/api",
            "/v1/health/service/api?passing",
            "/v1/health/service/api?passing=1&tag=blue",
            "/v1/health/service/api?tag=blue&tag=red",
            "/v1/health/service/api?stale",
            "/v1/health/service/api?node-meta=dc:dc1",
        ];
        for round in 0..2 {
            if round == 1 {
                let mut more = first.to_vec();
                more.push(instance("a3", "n1", &["blue"], 0));
                send.send_replace(published(6, &more));
            }
            for target in targets {
                let request = Request::get(target).body(Body::empty()).unwrap();
                let routed = api.clone().router().oneshot(request).await.unwrap();
                let routed = read_consul(routed).await;
                assert_eq!(routed.0, 200, "{target}");
                for _ in 0..2 {
                    let direct = now(respond(&api, &answers, &parts(target)).expect(target));
                    assert_eq!(
                        read_consul(direct).await,
                        routed,
                        "{target} in round {round}"
                    );
                }
            }
        }
        let passing = now(respond(&api, &answers, &parts(targets[1])).unwrap());
        let (_, headers, body) = read_consul(passing).await;
        assert_eq!(headers[1].as_deref(), Some("6"));
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body.as_array().unwrap().len(),
            2,
            "a2's check has no result"
        );
        for target in [
            "/v1/health/service/api?wait=1s",
            "/v1/health/service/api?index=x",
            "/v1/health/service/api?index=5&wait=oops",
            "/v1/health/service/api?consistent",
            "/v1/health/service/api?dc=dc1",
        ] {
            assert!(
                respond(&api, &answers, &parts(target)).is_none(),
                "{target}"
            );
        }
    }

    #[tokio::test]
    async fn a_blocking_consul_read_waits_for_the_change_and_shares_its_answer() {
        let first = [instance("a1", "n1", &[], 0)];
        let (send, current) = watch::channel(published(4, &first));
        let api = api(current).await;
        let answers = Arc::new(Answers::default());
        let target = "/v1/health/service/api?passing&index=4&wait=30s";
        let waiting = || match respond(&api, &answers, &parts(target)) {
            Some(DirectAnswer::Waiting { wait, response }) => {
                assert_eq!(wait, Duration::from_secs(30));
                tokio::spawn(response)
            }
            _ => panic!("a blocking read waits"),
        };
        let (one, two) = (waiting(), waiting());
        tokio::task::yield_now().await;
        assert!(!one.is_finished(), "nothing changed yet");
        let mut more = first.to_vec();
        more.push(instance("a2", "n1", &[], 0));
        send.send_replace(published(5, &more));
        let bound = Duration::from_secs(10);
        let one = read_consul(tokio::time::timeout(bound, one).await.unwrap().unwrap()).await;
        let two = read_consul(tokio::time::timeout(bound, two).await.unwrap().unwrap()).await;
        assert_eq!(one, two);
        assert_eq!(one.1[1].as_deref(), Some("5"));
        let routed = api
            .clone()
            .router()
            .oneshot(Request::get(target).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(read_consul(routed).await, one, "the router's answer");
        assert_eq!(answers.len().0, 1, "one rendering for both");
        let unknown = "/v1/health/service/nope?index=1&wait=1s";
        match respond(&api, &answers, &parts(unknown)) {
            Some(DirectAnswer::Waiting { response, .. }) => {
                let (status, _, body) = read_consul(response.await).await;
                assert_eq!((status, body.as_ref()), (200, b"[]".as_ref()));
            }
            _ => panic!("a blocking read of an unknown service waits too"),
        }
    }

    #[tokio::test]
    async fn blocking_consistent_bad_and_unknown_queries_are_left_to_the_router() {
        let (_send, current) = watch::channel(published(3, &[instance("a1", "n1", &[], 0)]));
        let api = api(current).await;
        let answers = Arc::new(Answers::default());
        for target in [
            "/v1/services/api?index=2",
            "/v1/services/api?index=2&wait=1s",
            "/v1/services/api?wait=oops",
            "/v1/services/api?consistent",
            "/v1/services/api?healthy=maybe",
            "/v1/services/api?healthy&healthy",
            "/v1/services/nope",
            "/v1/services/a%70i",
            "/v1/services/api/a1",
            "/v1/services/",
        ] {
            assert!(
                respond(&api, &answers, &parts(target)).is_none(),
                "{target}"
            );
        }
        assert_eq!(answers.len().0, 0);
    }

    #[tokio::test]
    async fn the_kept_answers_are_bounded() {
        let (_send, current) = watch::channel(published(3, &[instance("a1", "n1", &[], 0)]));
        let api = api(current).await;
        let answers = Arc::new(Answers::default());
        for i in 0..MAX_ANSWERS * 3 {
            let target = format!("/v1/services/api?tag=t{i}");
            assert_eq!(
                read(now(respond(&api, &answers, &parts(&target)).unwrap()))
                    .await
                    .0,
                200
            );
            let (count, bytes) = answers.len();
            assert!(
                count <= MAX_ANSWERS && bytes <= MAX_BYTES,
                "{count} answers, {bytes} bytes"
            );
        }
        assert_eq!(answers.len().0, MAX_ANSWERS);
    }

    fn view(n2: MemberState) -> ClusterView {
        let member = |id: &str, state| MemberView {
            id: id.into(),
            addr: "127.0.0.1:7946".parse().unwrap(),
            state,
            incarnation: 1,
            role: Role::Member,
            tags: Default::default(),
            api_addr: None,
            health: Health::Healthy,
            score: 100,
            phi: None,
            last_heard: Some(SystemTime::now()),
        };
        ClusterView {
            local_id: "n1".into(),
            members: vec![member("n1", MemberState::Alive), member("n2", n2)],
            has_quorum: true,
            voters_total: 0,
            voters_reachable: 0,
            stats: Default::default(),
            local_health: 0,
            protocol_version: vigil_gossip::version::PROTOCOL_MAX,
        }
    }

    #[test]
    fn an_answer_holds_while_its_registry_and_what_it_shows_of_its_nodes_do() {
        let registry = published(3, &[instance("a1", "n2", &[], 0)]);
        let alive = view(MemberState::Alive);
        let answer = Answer {
            surface: Surface::Vigil,
            published: Arc::downgrade(&registry),
            nodes: vec![("n2".into(), node_seen(&alive, "n2"))],
            headers: HeaderMap::new(),
            body: Bytes::new(),
        };
        assert!(answer.holds(&registry, &alive));
        assert!(answer.holds(&registry, &view(MemberState::Suspect)));
        let mut tagged = view(MemberState::Alive);
        tagged.members[1].tags.insert("dc".into(), "eu-1".into());
        assert!(
            !answer.holds(&registry, &tagged),
            "Consul's answer shows tags"
        );
        assert!(!answer.holds(&registry, &view(MemberState::Dead)));
        assert!(!answer.holds(&registry, &view(MemberState::Left)));
        let same_content = published(3, &[instance("a1", "n2", &[], 0)]);
        assert!(!answer.holds(&same_content, &alive));
    }
}
