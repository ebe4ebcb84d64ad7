//! The checks of the service instances on this node. They run in a health engine of their own
//! (the same scheduler, thresholds, history and events as the node's checks, without a say in
//! the node's own status), are kept in step with the registry — added, replaced and removed as
//! instances are — and whenever a check changes state, the instance's checks are reported to the
//! registry through Raft (`POST /v1/instance-reports` on the leader), so every agent sees it.
//!
//! Reports go out at once on a change and again, for whatever the registry still disagrees
//! with, every second: a report lost with a leader is sent again, never waited for.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Json, Router};
use imbl::ordmap::DiffItem;
use imbl::OrdMap;
use serde::Deserialize;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::task::JoinHandle;
use tracing::{debug, warn};
use vigil_cluster::raft::{
    compacted, CheckBody, CheckMap, CheckReport, InstanceReport, JsonObject, Leadership, Registry,
    ServiceInstance,
};
use vigil_cluster::Cluster;
use vigil_health::{CheckState, Engine, EngineConfig, Event, TtlError, Verdict};

use crate::catalog::Catalog;
use crate::checkdef::CheckDefinition;
use crate::error::ApiError;
use crate::forward::{self, Incoming};
use crate::{auth, checks, services, wire, Api, Readers};

/// Where reports of instance checks are sent, agent to agent.
pub const REPORTS_PATH: &str = "/v1/instance-reports";
/// How often what the registry holds is compared with the checks' states.
const RESYNC_EVERY: Duration = Duration::from_secs(1);
/// A report the registry does not show yet is sent again after this long.
const RESEND_AFTER: Duration = Duration::from_secs(2);
/// Most instances in one report, so one Raft entry: a node whose thousands of instances change
/// at once (it starts, or their shared dependency fails) sends entries of bounded size.
const REPORT_BATCH: usize = 256;

/// An instance by service name and id.
type InstanceKey = (String, String);

/// The running instance checks of this node. Cheap to clone.
#[derive(Clone, Debug)]
pub struct InstanceChecks {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    engine: Engine,
    node: String,
    names: Mutex<Names>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self.task.get_mut().ok().and_then(Option::take) {
            task.abort();
        }
    }
}

/// Which engine check runs which instance check, both ways. Engine names are generated
/// (`instance-N`), since service names and ids may hold characters check names may not.
#[derive(Debug, Default)]
struct Names {
    /// The running checks of each local instance, by check name.
    running: HashMap<InstanceKey, CheckMap<Running>>,
    /// The instance each engine check belongs to.
    owner: HashMap<Arc<str>, InstanceKey>,
    next: u64,
}

#[derive(Debug)]
struct Running {
    engine_name: Arc<str>,
    body: CheckBody,
}

/// How this node gets a report into the registry.
#[derive(Clone, Debug)]
struct Reporter {
    leadership: Option<Leadership>,
    cluster: Cluster,
    readers: Readers,
}

impl InstanceChecks {
    /// Starts running the checks of the instances on `node` as `catalog` lists them; `config`
    /// is the node engine's (history, score window, most checks). Reports go to other agents
    /// with the token `readers` present.
    pub fn start(
        node: &str,
        config: EngineConfig,
        catalog: Catalog,
        cluster: Cluster,
        leadership: Option<Leadership>,
        readers: Readers,
    ) -> InstanceChecks {
        let engine = Engine::builder()
            .config(EngineConfig {
                node_id: node.to_owned(),
                ..config
            })
            .build();
        engine.start();
        let checks = InstanceChecks {
            inner: Arc::new(Inner {
                engine,
                node: node.to_owned(),
                names: Mutex::new(Names::default()),
                task: Mutex::new(None),
            }),
        };
        let reporter = Reporter {
            leadership,
            cluster,
            readers,
        };
        let task = tokio::spawn(run(Arc::downgrade(&checks.inner), catalog, reporter));
        *checks
            .inner
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(task);
        checks
    }

    /// The engine the instance checks run in.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Feeds a TTL check of a local instance of `registry`: `check` names it, or, when `None`,
    /// the instance's only TTL check. Says which check it fed and the state it is in now.
    pub fn update_ttl(
        &self,
        registry: &Registry,
        instance: &ServiceInstance,
        check: Option<&str>,
        verdict: Verdict,
        note: Option<String>,
    ) -> Result<(String, Option<CheckState>), ApiError> {
        let ttl_checks: Vec<&String> = instance
            .checks
            .keys()
            .filter(|c| instance.has_ttl_check(c))
            .collect();
        let check = match (check, ttl_checks.as_slice()) {
            (Some(check), _) if instance.has_ttl_check(check) => check.to_owned(),
            (Some(check), _) => {
                return Err(ApiError::not_found(format!(
                    "instance {:?} of {:?} has no TTL check {check:?}",
                    instance.id, instance.name
                )))
            }
            (None, [only]) => (*only).clone(),
            (None, []) => {
                return Err(ApiError::not_found(format!(
                    "instance {:?} of {:?} has no TTL check",
                    instance.id, instance.name
                )))
            }
            (None, _) => {
                return Err(ApiError::bad_request(format!(
                    "instance {:?} of {:?} has several TTL checks; name one with ?check=",
                    instance.id, instance.name
                )))
            }
        };
        let key = key_of(instance);
        let running = |names: &Names| {
            names
                .running
                .get(&key)
                .and_then(|checks| checks.get(&check))
                .map(|r| r.engine_name.clone())
        };
        // An instance registered a moment ago may not have reached the reconcile loop yet;
        // its first renewal should not have to wait for it.
        let engine_name = {
            let mut names = self.inner.lock_names();
            running(&names).or_else(|| {
                self.inner
                    .reconcile_instance(&mut names, registry, key.clone());
                running(&names)
            })
        }
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("TTL check {check:?} is not running here yet; retry shortly"),
            )
        })?;
        self.inner
            .engine
            .update_ttl(&engine_name, verdict, note)
            .map_err(|e| match e {
                TtlError::Unknown(_) => ApiError::not_found(e.to_string()),
                TtlError::NotTtl(_) => ApiError::bad_request(e.to_string()),
            })?;
        let state = self
            .inner
            .engine
            .snapshot()
            .check(&engine_name)
            .map(|v| v.state);
        Ok((check, state))
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.inner.node
    }
}

impl Inner {
    fn lock_names(&self) -> std::sync::MutexGuard<'_, Names> {
        self.names.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers, replaces and removes engine checks so that every instance matches `registry`.
    fn reconcile(&self, registry: &Registry) {
        let mut names = self.lock_names();
        let mut instances: BTreeSet<InstanceKey> = names.running.keys().cloned().collect();
        instances.extend(local_instances(registry, &self.node).map(key_of));
        for instance in instances {
            self.reconcile_instance(&mut names, registry, instance);
        }
    }

    /// Does what [`Inner::reconcile`] does for the instances that differ between `before` and
    /// `after` (skipping the structure the two share), and says which instances those are,
    /// with those whose recorded health changed.
    fn reconcile_changes(&self, before: &Registry, after: &Registry) -> BTreeSet<InstanceKey> {
        let mut touched = changed_instances(&before.services, &after.services);
        let mut names = self.lock_names();
        for instance in &touched {
            self.reconcile_instance(&mut names, after, instance.clone());
        }
        touched.extend(changed_instances(
            &before.instance_health,
            &after.instance_health,
        ));
        touched
    }

    /// Makes the engine run exactly the checks `registry` gives `instance` if it is on this
    /// node, and none otherwise.
    fn reconcile_instance(&self, names: &mut Names, registry: &Registry, instance: InstanceKey) {
        let wanted: BTreeMap<&String, &CheckBody> = registry
            .services
            .get(&instance.0)
            .and_then(|of| of.get(&instance.1))
            .filter(|i| i.node == self.node)
            .map(|i| i.checks.iter().collect())
            .unwrap_or_default();
        let Names {
            running,
            owner,
            next,
        } = names;
        let mut checks = running.remove(&instance).unwrap_or_default();
        checks.retain(|check, run| {
            let keep = wanted.contains_key(check);
            if !keep {
                let _ = self.engine.unregister(&run.engine_name);
                owner.remove(&run.engine_name);
            }
            keep
        });
        for (check, body) in wanted {
            if checks.get(check).is_some_and(|r| &r.body == body) {
                continue;
            }
            let engine_name: Arc<str> = match checks.get(check) {
                Some(r) => r.engine_name.clone(),
                None => {
                    *next += 1;
                    format!("instance-{next}").into()
                }
            };
            match plan(body, &engine_name).map(|p| p.register(&self.engine)) {
                Ok(Ok(_)) => {
                    owner.insert(engine_name.clone(), instance.clone());
                    checks.insert(
                        check.clone(),
                        Running {
                            engine_name,
                            body: body.clone(),
                        },
                    );
                }
                Ok(Err(e)) => {
                    warn!(service = %instance.0, id = %instance.1, %check, error = %e, "instance check not started")
                }
                Err(e) => {
                    warn!(service = %instance.0, id = %instance.1, %check, error = %e, "instance check not valid")
                }
            }
        }
        if !checks.is_empty() {
            running.insert(instance, compacted(checks));
        }
    }

    /// What the registry should say of the local instances whose checks it does not show as
    /// they are — of every one, or only of those in `only` — taken in key order after `after`,
    /// those `wanted` passes, at most `limit` of them. Callers take a batch at a time: a node
    /// whose ten thousand instances all changed would otherwise hold a megabyte of reports at
    /// once, and every buffer that large left behind fragments the heap for good.
    fn disagreements(
        &self,
        registry: &Registry,
        only: Option<&BTreeSet<InstanceKey>>,
        after: Option<&InstanceKey>,
        limit: usize,
        wanted: impl Fn(&InstanceReport) -> bool,
    ) -> Vec<InstanceReport> {
        let snapshot = self.engine.snapshot();
        let names = self.lock_names();
        let disagreement = |instance: &ServiceInstance| {
            let running = names.running.get(&key_of(instance));
            let checks: CheckMap<CheckReport> = instance
                .checks
                .keys()
                .filter_map(|check| {
                    let running = running?.get(check)?;
                    let view = snapshot.check(&running.engine_name)?;
                    let output = view.last.as_ref().map_or("", |r| r.message.as_str());
                    Some((check.clone(), CheckReport::new(view.state, output)))
                })
                .filter(|(_, report)| report.state != CheckState::Unknown)
                .collect();
            let recorded = registry.health_of(instance).map(|h| &h.checks);
            let same = match recorded {
                Some(recorded) => {
                    recorded.len() == checks.len()
                        && recorded
                            .iter()
                            .zip(checks.iter())
                            .all(|((a, x), (b, y))| a == b && x.state == y.state)
                }
                None => checks.is_empty(),
            };
            (!same).then(|| InstanceReport {
                name: instance.name.clone(),
                id: instance.id.clone(),
                checks,
            })
        };
        let is_after = |instance: &&ServiceInstance| {
            after.is_none_or(|(name, id)| {
                (instance.name.as_str(), instance.id.as_str()) > (name.as_str(), id.as_str())
            })
        };
        let candidates: Box<dyn Iterator<Item = &ServiceInstance>> = match only {
            None => Box::new(local_instances(registry, &self.node)),
            Some(keys) => Box::new(
                keys.iter()
                    .filter_map(|(name, id)| registry.services.get(name)?.get(id))
                    .filter(|i| i.node == self.node),
            ),
        };
        candidates
            .filter(is_after)
            .filter_map(disagreement)
            .filter(|report| wanted(report))
            .take(limit)
            .collect()
    }

    /// The instance an engine check belongs to.
    fn owner_of(&self, engine_name: &str) -> Option<InstanceKey> {
        self.lock_names().owner.get(engine_name).cloned()
    }
}

fn key_of(instance: &ServiceInstance) -> InstanceKey {
    (instance.name.clone(), instance.id.clone())
}

/// The instances (by service, then id) whose entry differs between two maps of maps.
fn changed_instances<V: Clone + PartialEq>(
    before: &OrdMap<String, OrdMap<String, V>>,
    after: &OrdMap<String, OrdMap<String, V>>,
) -> BTreeSet<InstanceKey> {
    let mut touched = BTreeSet::new();
    let mut all_of = |name: &String, of: &OrdMap<String, V>| {
        for id in of.keys() {
            touched.insert((name.clone(), id.clone()));
        }
    };
    let mut changed = Vec::new();
    for change in before.diff(after) {
        match change {
            DiffItem::Add(name, of) | DiffItem::Remove(name, of) => all_of(name, of),
            DiffItem::Update {
                old: (name, old),
                new: (_, new),
            } => changed.push((name, old, new)),
        }
    }
    for (name, old, new) in changed {
        for change in old.diff(new) {
            let id = match change {
                DiffItem::Add(id, _) | DiffItem::Remove(id, _) => id,
                DiffItem::Update { new: (id, _), .. } => id,
            };
            touched.insert((name.clone(), id.clone()));
        }
    }
    touched
}

fn local_instances<'a>(
    registry: &'a Registry,
    node: &'a str,
) -> impl Iterator<Item = &'a ServiceInstance> + 'a {
    registry.instances().filter(move |i| i.node == node)
}

/// Why a registered check body does not make a check; `field` names the offending key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct BodyError {
    /// The key the error is about.
    pub field: String,
    /// What is wrong, for people.
    pub message: String,
}

/// The check a registered body defines, under the engine name `name`.
pub fn plan(body: &CheckBody, name: &str) -> Result<crate::checkdef::CheckPlan, BodyError> {
    let definition = body.parse::<CheckDefinition>().map_err(|e| BodyError {
        field: blamed_key(&body.object()).unwrap_or_else(|| "checks".to_owned()),
        message: e.to_string(),
    })?;
    definition.plan(Some(name)).map_err(|e| BodyError {
        field: e.field.to_owned(),
        message: e.message,
    })
}

/// The key whose removal turns a body serde refuses into one it takes (or into one it refuses
/// only for that key missing): serde's messages name the problem, not always the key, least of
/// all in a flattened part.
fn blamed_key(body: &JsonObject) -> Option<String> {
    body.keys().find_map(|key| {
        let mut without = body.clone();
        without.remove(key);
        let cleared = match serde_json::from_value::<CheckDefinition>(without.into()) {
            Ok(_) => true,
            Err(e) => e.to_string().contains(&format!("missing field `{key}`")),
        };
        cleared.then(|| key.clone())
    })
}

/// Milliseconds since the Unix epoch, as commands and reports record times.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What a wake-up of the report loop found to look at.
#[derive(Default)]
struct Dirty {
    /// Every local instance (a periodic resync, or events missed).
    all: bool,
    /// These instances.
    instances: BTreeSet<InstanceKey>,
}

/// Follows the registry and the engine until the checks are dropped. Only what changed is
/// looked at on a change (the registry's changed instances, the instance of a check that moved),
/// so the work per change does not grow with the number of instances; everything is compared
/// once per [`RESYNC_EVERY`].
async fn run(weak: std::sync::Weak<Inner>, catalog: Catalog, reporter: Reporter) {
    let Some(strong) = weak.upgrade() else {
        return;
    };
    let mut events = strong.engine.subscribe();
    let mut registry = catalog.watch();
    let mut seen = registry.borrow_and_update().clone();
    strong.reconcile(&seen.registry);
    drop(strong);
    let mut resync = tokio::time::interval(RESYNC_EVERY);
    let mut sent: HashMap<InstanceKey, (InstanceReport, Instant)> = HashMap::new();
    loop {
        let mut dirty = Dirty::default();
        let mut event = None;
        tokio::select! {
            changed = registry.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            received = events.recv() => event = Some(received),
            _ = resync.tick() => dirty.all = true,
        }
        let Some(inner) = weak.upgrade() else {
            return;
        };
        // Everything that is already waiting is handled in this one pass (and one report).
        while let Some(received) = event.take().or_else(|| match events.try_recv() {
            Err(TryRecvError::Empty) => None,
            other => Some(other.map_err(|e| match e {
                TryRecvError::Lagged(n) => RecvError::Lagged(n),
                _ => RecvError::Closed,
            })),
        }) {
            match received {
                Ok(Event::CheckChanged { check, .. }) => {
                    if let Some(instance) = inner.owner_of(&check) {
                        dirty.instances.insert(instance);
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => dirty.all = true,
                Err(RecvError::Closed) => return,
            }
        }
        let current = registry.borrow_and_update().clone();
        if !Arc::ptr_eq(&current, &seen) {
            dirty
                .instances
                .extend(inner.reconcile_changes(&seen.registry, &current.registry));
            seen = current;
        }
        if !dirty.all && dirty.instances.is_empty() {
            continue;
        }
        let only = (!dirty.all).then_some(&dirty.instances);
        let now = Instant::now();
        if dirty.all {
            sent.retain(|_, (_, at)| now.duration_since(*at) < RESEND_AFTER);
        }
        let node = inner.node.clone();
        drop(inner);
        let mut after = None;
        loop {
            let Some(inner) = weak.upgrade() else {
                return;
            };
            let batch = inner.disagreements(
                &seen.registry,
                only,
                after.as_ref(),
                REPORT_BATCH,
                |report| {
                    !sent.get(&key_of_report(report)).is_some_and(|(last, at)| {
                        last == report && now.duration_since(*at) < RESEND_AFTER
                    })
                },
            );
            drop(inner);
            let Some(last) = batch.last() else {
                break;
            };
            after = Some(key_of_report(last));
            let full = batch.len() == REPORT_BATCH;
            let reports = wire::InstanceReports {
                node: node.clone(),
                at_ms: now_ms(),
                instances: batch,
            };
            if let Err(e) = reporter.send(&reports).await {
                debug!(error = %e, "instance report postponed");
                break;
            }
            for report in reports.instances {
                sent.insert(key_of_report(&report), (report, now));
            }
            if !full {
                break;
            }
        }
    }
}

fn key_of_report(report: &InstanceReport) -> InstanceKey {
    (report.name.clone(), report.id.clone())
}

impl Reporter {
    /// `reports` as the request another agent takes them in.
    fn request(&self, reports: &wire::InstanceReports) -> Result<Incoming, String> {
        let body = serde_json::to_vec(reports).map_err(|e| e.to_string())?;
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(bearer) = self.readers.bearer() {
            headers.insert(header::AUTHORIZATION, bearer);
        }
        Ok(Incoming {
            method: Method::POST,
            uri: Uri::from_static(REPORTS_PATH),
            headers,
            body: Bytes::from(body),
        })
    }

    /// Commits the reports through this voter, or sends them to the leader (or a voter) over
    /// HTTP.
    async fn send(&self, reports: &wire::InstanceReports) -> Result<(), String> {
        let answer = match &self.leadership {
            Some(leadership) => match leadership.write(reports.clone().into_command()).await {
                Ok(_) => return Ok(()),
                Err(e) => services::write_failed(e, &self.request(reports)?).await,
            },
            None => forward::to_a_voter(&self.request(reports)?, Some(&self.cluster)).await,
        };
        if answer.status().is_success() {
            Ok(())
        } else {
            Err(format!("the registry answered {}", answer.status()))
        }
    }
}

/// `POST /v1/instance-reports` and the TTL updates of instances; both need the token.
pub(crate) fn routes(api: &Api) -> Router {
    if api.cluster.is_none() {
        return Router::new();
    }
    Router::new()
        .route(REPORTS_PATH, auth::guarded(&api.token, post(report)))
        .route(
            "/v1/services/{name}/{id}/{verdict}",
            auth::guarded(&api.token, put(put_ttl)),
        )
        .with_state(api.clone())
}

/// `?check=`: which TTL check of the instance an update is for.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct TtlTarget {
    /// The TTL check's name; may be left out when the instance has one TTL check.
    check: Option<String>,
}

/// `PUT /v1/services/{name}/{id}/pass|warn|fail`: the instance renews its TTL check. Sent to
/// any agent; passed on to the agent of the instance's node, which runs the check.
#[cfg_attr(feature = "openapi", utoipa::path(put, path = "/v1/services/{name}/{id}/{verdict}", tag = "services",
    params(("name" = String, Path, description = "The service"),
           ("id" = String, Path, description = "The instance"),
           ("verdict" = vigil_health::Verdict, Path, description = "`pass`, `warn` or `fail`"),
           TtlTarget),
    request_body(description = "The note: JSON `{\"note\": \"...\"}`, or any other text as the note itself",
        content((Option<wire::Note> = "application/json"), (Option<String> = "text/plain"))),
    security(("token" = [])),
    responses(
        (status = 200, description = "Updated", body = wire::TtlUpdated),
        (status = 400, description = "A malformed note, or several TTL checks and no `?check=`", body = wire::ErrorBody),
        (status = 401, description = "No or a wrong token", body = wire::ErrorBody),
        (status = 404, description = "No such instance or TTL check, or an unknown verdict", body = wire::ErrorBody),
        (status = 503, description = "The instance's node cannot be reached", body = wire::ErrorBody),
    )))]
pub async fn put_ttl(
    State(api): State<Api>,
    Path((name, id, verdict)): Path<(String, String, String)>,
    Query(target): Query<TtlTarget>,
    request: Incoming,
    body: Bytes,
) -> Response {
    match ttl_update(
        &api,
        &name,
        &id,
        &verdict,
        target.check.as_deref(),
        request,
        body,
    )
    .await
    {
        Ok(answer) | Err(answer) => answer,
    }
}

pub(crate) async fn ttl_update(
    api: &Api,
    name: &str,
    id: &str,
    verdict: &str,
    check: Option<&str>,
    request: Incoming,
    body: Bytes,
) -> Result<Response, Response> {
    let verdict = checks::parse_verdict(verdict).map_err(IntoResponse::into_response)?;
    let note = checks::note_from_body(&body).map_err(IntoResponse::into_response)?;
    let (Some(catalog), Some(checks)) = (&api.catalog, &api.instances) else {
        return Err(ApiError::not_found("this node holds no registry").into_response());
    };
    let current = catalog.current();
    let instance = current
        .registry
        .services
        .get(name)
        .and_then(|of| of.get(id))
        .ok_or_else(|| {
            ApiError::not_found(format!("no instance {id:?} of service {name:?}")).into_response()
        })?;
    if instance.node != checks.node() {
        let at = api
            .cluster
            .as_ref()
            .and_then(|c| c.view().member(&instance.node).and_then(|m| m.api_addr));
        let Some(at) = at else {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the instance's node {:?} has no known API address",
                    instance.node
                ),
            )
            .into_response());
        };
        let request = Incoming { body, ..request };
        let why = format!("the instance runs on {}", instance.node);
        return Ok(forward::forward(&request, at, &why).await);
    }
    let (check, state) = checks
        .update_ttl(&current.registry, instance, check, verdict, note)
        .map_err(IntoResponse::into_response)?;
    Ok(Json(wire::TtlUpdated { check, state }).into_response())
}

/// `POST /v1/instance-reports`: an agent records the checks of instances on its node.
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/v1/instance-reports", tag = "services",
    request_body = wire::InstanceReports,
    security(("token" = [])),
    responses(
        (status = 204, description = "Recorded (reports about instances not on that node are ignored)"),
        (status = 400, description = "A malformed report", body = wire::ErrorBody),
        (status = 401, description = "No or a wrong token", body = wire::ErrorBody),
        (status = 503, description = "No quorum", body = wire::ErrorBody),
    )))]
pub async fn report(State(api): State<Api>, request: Incoming, body: Bytes) -> Response {
    let reports: wire::InstanceReports = match serde_json::from_slice(&body) {
        Ok(reports) => reports,
        Err(e) => return ApiError::bad_request(format!("invalid body: {e}")).into_response(),
    };
    let request = Incoming { body, ..request };
    let Some(leadership) = &api.leadership else {
        return forward::to_a_voter(&request, api.cluster.as_ref()).await;
    };
    match leadership.write(reports.into_command()).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => services::write_failed(e, &request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every instance added one at a time, as registrations arrive, is seen as changed.
    #[test]
    fn every_added_instance_is_seen() {
        let mut registry: OrdMap<String, OrdMap<String, u64>> = OrdMap::new();
        let mut missed = Vec::new();
        for i in 0..10_000u64 {
            let before = registry.clone();
            let name = format!("svc-{}", i % 100);
            let id = format!("i-{i}");
            registry
                .entry(name.clone())
                .or_default()
                .insert(id.clone(), i);
            if !changed_instances(&before, &registry).contains(&(name, id.clone())) {
                missed.push(id);
            }
        }
        assert!(
            missed.is_empty(),
            "{} missed: {:?}",
            missed.len(),
            &missed[..missed.len().min(20)]
        );
    }
}
