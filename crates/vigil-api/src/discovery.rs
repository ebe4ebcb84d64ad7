//! Discovery: `GET /v1/services/{name}` with `?healthy`, `?tag=`, `?node=` and blocking
//! `?index=N&wait=D`, answered by every agent from its own catalog with no hop to a voter
//! (`?consistent` still asks the leader). Every answer carries `X-Vigil-Index`, the Raft index
//! of the service's last change.
//!
//! An instance's state is the registry's, except that an instance whose node this agent's
//! membership already holds dead or gone is critical at once, before the leader records it.

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use vigil_cluster::raft::{InstanceState, Published, Registry, ServiceInstance};
use vigil_cluster::{Cluster, ClusterView};
use vigil_gossip::MemberState;
use vigil_health::metrics::{Kind, Writer};

use crate::catalog::{index_header, Blocking};
use crate::error::ApiError;
use crate::leader::{VoterRead, SERVED_BY, STALE_MS};
use crate::services::instance_body;
use crate::{wire, Api};

/// Which states an answer keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Wanted {
    /// Every instance, whatever its state.
    #[default]
    Any,
    /// Passing instances only.
    Passing,
    /// Passing and warning instances.
    PassingOrWarning,
}

impl Wanted {
    /// Whether an instance in `state` is kept.
    pub fn keeps(self, state: InstanceState) -> bool {
        match self {
            Wanted::Any => true,
            Wanted::Passing => state == InstanceState::Passing,
            Wanted::PassingOrWarning => {
                matches!(state, InstanceState::Passing | InstanceState::Warning)
            }
        }
    }
}

/// What a discovery query asks for.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// The states kept.
    pub wanted: Wanted,
    /// Only instances with this tag.
    pub tag: Option<String>,
    /// Only instances on this node.
    pub node: Option<String>,
}

/// The instances of `service` that `filter` keeps, each with its state as this agent sees it.
pub fn discover<'a>(
    registry: &'a Registry,
    cluster: Option<&Cluster>,
    service: &str,
    filter: &Filter,
) -> Vec<(&'a ServiceInstance, InstanceState)> {
    let view = cluster.map(Cluster::view);
    discover_in(registry, view.as_deref(), service, filter)
}

/// [`discover`] with this agent's membership as `view` holds it (`None`: no cluster).
pub fn discover_in<'a>(
    registry: &'a Registry,
    view: Option<&ClusterView>,
    service: &str,
    filter: &Filter,
) -> Vec<(&'a ServiceInstance, InstanceState)> {
    let Some(of) = registry.services.get(service) else {
        return Vec::new();
    };
    of.values()
        .filter(|i| filter.node.as_ref().is_none_or(|n| &i.node == n))
        .filter(|i| filter.tag.as_ref().is_none_or(|t| i.tags.contains(t)))
        .map(|i| {
            let mut state = registry.instance_state(i);
            let gone = view.is_some_and(|v| gone_here(v, &i.node));
            if gone && state != InstanceState::Maintenance {
                state = InstanceState::Critical;
            }
            (i, state)
        })
        .filter(|(_, state)| filter.wanted.keeps(*state))
        .collect()
}

/// Whether this agent's membership holds `node` dead or gone, which makes its instances
/// critical here whatever the registry says (but for those in maintenance).
pub fn gone_here(view: &ClusterView, node: &str) -> bool {
    view.member(node)
        .is_some_and(|m| matches!(m.state, MemberState::Dead | MemberState::Left))
}

/// `host:port` to dial an instance at, an IPv6 address in brackets.
pub fn dial_address(address: &str, port: u16) -> String {
    if address.contains(':') && !address.starts_with('[') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

/// `GET /v1/services/{name}`'s parameters.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct Discovery {
    /// Only healthy instances: `?healthy` (or `=passing`, `=true`) passing ones,
    /// `?healthy=warning` passing and warning ones; `=false` or left out: all.
    healthy: Option<String>,
    /// Only instances with this tag.
    tag: Option<String>,
    /// Only instances on this node.
    node: Option<String>,
    /// Blocking query: answer once the service's index passes this one (or at the wait).
    index: Option<u64>,
    /// How long a blocking query waits (`30s`, `5m`; at most 10m; default 5m).
    wait: Option<String>,
    /// Read from the leader after it confirmed its leadership (any value but `false`).
    consistent: Option<String>,
}

impl Discovery {
    fn filter(&self) -> Result<Filter, ApiError> {
        let wanted = match self.healthy.as_deref() {
            None | Some("false") => Wanted::Any,
            Some("" | "true" | "passing") => Wanted::Passing,
            Some("warning") => Wanted::PassingOrWarning,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                "healthy: expected nothing, \"passing\", \"warning\" or \"false\", not {other:?}"
            )))
            }
        };
        Ok(Filter {
            wanted,
            tag: self.tag.clone(),
            node: self.node.clone(),
        })
    }

    fn consistent(&self) -> bool {
        self.consistent.as_deref().is_some_and(|v| v != "false")
    }

    /// The filter of a query that is answered at once from this agent's catalog, so that every
    /// request repeating it while the registry holds still gets the same body; `None` for a
    /// blocking or `?consistent` query, or one the router refuses.
    pub(crate) fn plain_filter(&self) -> Option<Filter> {
        if self.index.is_some() || self.wait.is_some() || self.consistent() {
            return None;
        }
        self.filter().ok()
    }
}

/// `GET /v1/services/{name}[?healthy][&tag=][&node=][&index=&wait=][&consistent]`.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/v1/services/{name}", tag = "services",
    params(("name" = String, Path, description = "The service"), Discovery),
    responses(
        (status = 200, description = "The service's instances that the filters keep, each with its state and checks", body = wire::Service,
            headers(("x-vigil-index" = u64), ("x-vigil-served-by" = String), ("x-vigil-stale-ms" = String))),
        (status = 400, description = "A bad `healthy` or `wait`", body = wire::ErrorBody),
        (status = 404, description = "No such service", body = wire::ErrorBody),
        (status = 503, description = "No quorum (`?consistent`)", body = wire::ErrorBody),
    )))]
pub async fn get_service(
    State(api): State<Api>,
    Path(name): Path<String>,
    Query(query): Query<Discovery>,
    mut parts: Parts,
) -> Response {
    let filter = match query.filter() {
        Ok(filter) => filter,
        Err(e) => return e.into_response(),
    };
    let blocking = Blocking {
        index: query.index,
        wait: query.wait.clone(),
    };
    let wait = match blocking.parse_for(&parts) {
        Ok(wait) => wait,
        Err(e) => return e.into_response(),
    };
    let (published, mut headers) = match (&api.catalog, query.consistent()) {
        (Some(catalog), false) => {
            let published = match wait {
                Some((index, wait)) => {
                    catalog
                        .after(index, wait, |p| p.registry.service_index(&name))
                        .await
                }
                None => catalog.current(),
            };
            let mut headers = axum::http::HeaderMap::new();
            if let Ok(node) = HeaderValue::from_str(api.engine.snapshot().node_id()) {
                headers.insert(SERVED_BY, node);
            }
            let stale = catalog
                .stale_ms()
                .map_or_else(|| "unknown".to_owned(), |ms| ms.to_string());
            if let Ok(stale) = HeaderValue::from_str(&stale) {
                headers.insert(STALE_MS, stale);
            }
            (published, headers)
        }
        _ => match VoterRead::from_request_parts(&mut parts, &api).await {
            Ok(read) => (read.published, read.headers),
            Err(answer) => return answer,
        },
    };
    let registry = &published.registry;
    headers.extend(index_header(registry.service_index(&name)));
    if !registry.services.contains_key(&name) {
        let error = ApiError::not_found(format!("no service {name:?} is registered"));
        return (headers, error).into_response();
    }
    let view = api.cluster.as_ref().map(Cluster::view);
    let body = service_body(&published, view.as_deref(), name, &filter);
    (headers, Json(body)).into_response()
}

/// The body of a discovery answer: the instances of service `name` in `published` that
/// `filter` keeps, with `view` as this agent's membership (`None`: no cluster).
pub(crate) fn service_body(
    published: &Published,
    view: Option<&ClusterView>,
    name: String,
    filter: &Filter,
) -> wire::Service {
    let registry = &published.registry;
    let instances = discover_in(registry, view, &name, filter)
        .into_iter()
        .map(|(instance, state)| wire::Instance {
            state: Some(state),
            ..instance_body(instance, Some(registry))
        })
        .collect();
    wire::Service {
        applied_index: published.applied_index,
        instances,
        name,
    }
}

/// Appends `vigil_service_instances{service, state}`: the instances of each service in each
/// state, as this agent's discovery answers.
pub fn render_metrics(registry: &Registry, cluster: Option<&Cluster>, out: &mut String) {
    let mut w = Writer::new(out);
    w.family(
        "vigil_service_instances",
        Kind::Gauge,
        "Service instances in the registry, by service and by state as discovery answers.",
    );
    for name in registry.services.keys() {
        let mut counts = [0u64; InstanceState::ALL.len()];
        for (_, state) in discover(registry, cluster, name, &Filter::default()) {
            if let Some(i) = InstanceState::ALL.iter().position(|s| *s == state) {
                counts[i] += 1;
            }
        }
        for (state, n) in InstanceState::ALL.iter().zip(counts) {
            w.sample(
                "vigil_service_instances",
                &[("service", name), ("state", state.as_str())],
                n,
            );
        }
    }
}
