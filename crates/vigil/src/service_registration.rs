//! Registering the config's `[[services]]`: the agent posts each to its own `POST /v1/services`
//! with its own token — the path every registration takes (a voter writes it through Raft, a
//! member passes it on to a voter) — until the registry holds it, and again whenever the
//! registry loses it (deregistered, or never recorded because the cluster had no leader yet).
//! It runs beside the agent and never holds up its startup. A reload hands it the file's new
//! list ([`Registrations::replace`]): instances no longer listed are deregistered, new and changed
//! ones registered.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::sync::watch;
use tracing::Instrument;
use vigil_api::catalog::Catalog;
use vigil_api::wire::Registration;
use vigil_cluster::raft::Registry;

/// First pause after a failed attempt; doubled after each failure up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_millis(250);
/// Longest pause between attempts while the registry refuses or cannot be reached.
const RETRY_MAX: Duration = Duration::from_secs(10);
/// How often the registry is looked at even when it does not change.
const RECHECK: Duration = Duration::from_secs(30);
/// Longest one registration request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The `[[services]]` an agent keeps registered; a reload replaces them.
#[derive(Clone)]
pub struct Registrations(watch::Sender<Vec<Registration>>);

impl Registrations {
    /// Keeps `services` registered from now on instead.
    pub fn replace(&self, services: Vec<Registration>) {
        self.0.send_replace(services);
    }
}

/// Keeps `services` registered, posting them to the API at `api` (a wildcard address is
/// reached on loopback) with `token`, and watching `catalog` for their loss.
pub fn start(
    api: SocketAddr,
    token: Option<String>,
    node: String,
    services: Vec<Registration>,
    catalog: Catalog,
) -> Registrations {
    let (listed, list) = watch::channel(services);
    let api = if api.ip().is_unspecified() {
        let loopback = match api.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        };
        SocketAddr::new(loopback, api.port())
    } else {
        api
    };
    let task = Registrar {
        url: vigil_api::peer_url(api, "/v1/services"),
        token,
        node,
    }
    .run(catalog, list);
    tokio::spawn(task.in_current_span());
    Registrations(listed)
}

struct Registrar {
    url: String,
    token: Option<String>,
    node: String,
}

impl Registrar {
    async fn run(self, catalog: Catalog, mut list: watch::Receiver<Vec<Registration>>) {
        // The client agents reach each other with: over TLS when the API is.
        let client = vigil_api::peer_client();
        let mut registry = catalog.watch();
        let mut backoff = RETRY_MIN;
        let mut services = list.borrow_and_update().clone();
        // The last failure of each service, logged once until it changes.
        let mut failures: Vec<Option<String>> = vec![None; services.len()];
        loop {
            // Compared, not asked whether it changed: waiting on a change marks it seen.
            let listed = list.borrow_and_update().clone();
            if listed != services {
                for gone in services
                    .iter()
                    .filter(|s| !listed.iter().any(|l| same_instance(l, s)))
                {
                    self.deregister(client, gone).await;
                }
                services = listed;
                failures = vec![None; services.len()];
            }
            let current = registry.borrow_and_update().clone();
            let mut failed = false;
            for (i, service) in services.iter().enumerate() {
                if self.held(&current.registry, service) {
                    continue;
                }
                match self.register(client, service).await {
                    Ok(()) => {
                        tracing::info!(
                            "service {} instance {} registered ([[services]])",
                            service.name,
                            service.id
                        );
                        failures[i] = None;
                    }
                    Err(e) => {
                        failed = true;
                        if failures[i].as_deref() != Some(e.as_str()) {
                            tracing::warn!(
                                "service {} instance {} not registered yet, retrying: {e}",
                                service.name,
                                service.id
                            );
                            failures[i] = Some(e);
                        }
                    }
                }
            }
            if failed {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(RETRY_MAX);
                continue;
            }
            backoff = RETRY_MIN;
            tokio::select! {
                changed = registry.changed() => if changed.is_err() { return },
                changed = list.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(RECHECK) => {}
            }
        }
    }

    /// One `DELETE /v1/services/{name}/{id}` of an instance the config no longer lists; a
    /// failure is logged (the instance stays until deregistered by hand, or, if ephemeral, until
    /// the node goes).
    async fn deregister(&self, client: &reqwest::Client, service: &Registration) {
        let url = format!("{}/{}/{}", self.url, service.name, service.id);
        let mut request = client.delete(&url).timeout(REQUEST_TIMEOUT);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        match request.send().await {
            Ok(response) if response.status().is_success() || response.status() == 404 => {
                tracing::info!(
                    "service {} instance {} deregistered: no longer in [[services]]",
                    service.name,
                    service.id
                );
            }
            Ok(response) => tracing::warn!(
                "service {} instance {} is no longer in [[services]] but stays registered: {}",
                service.name,
                service.id,
                response.status()
            ),
            Err(e) => tracing::warn!(
                "service {} instance {} is no longer in [[services]] but stays registered: {e}",
                service.name,
                service.id
            ),
        }
    }

    /// Whether the registry holds `service` as this node's instance at its address.
    fn held(&self, registry: &Registry, service: &Registration) -> bool {
        registry
            .services
            .get(&service.name)
            .and_then(|of| of.get(&service.id))
            .is_some_and(|held| {
                held.node == self.node
                    && held.address == service.address
                    && held.port == service.port
            })
    }

    /// One `POST /v1/services`; an answer other than 200 or 201 is an error that quotes it.
    async fn register(
        &self,
        client: &reqwest::Client,
        service: &Registration,
    ) -> Result<(), String> {
        let mut request = client
            .post(&self.url)
            .timeout(REQUEST_TIMEOUT)
            .json(service);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        Err(format!("{status}: {}", body.trim()))
    }
}

/// Whether two registrations name the same instance.
fn same_instance(a: &Registration, b: &Registration) -> bool {
    a.name == b.name && a.id == b.id
}
