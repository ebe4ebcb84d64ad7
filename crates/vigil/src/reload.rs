//! Reloading a running agent's config file (SIGHUP, `POST /v1/reload`, `vigil reload`).
//!
//! The file is read and validated whole first: a file with errors is refused with every error,
//! and so is one that changes what cannot change while the agent runs (its id, its listening
//! addresses, its cluster role, voters and data directory), naming them; either way the running
//! config stays. Otherwise `[[checks]]` are applied at once: new ones start, removed ones stop,
//! changed ones are replaced, and the ones written as before keep running with their history
//! (they are compared by definition, so moving one in the file changes nothing). The API token,
//! the read token, the TLS files (read again whether or not their paths changed), `[[neighbors]]`
//! (a neighbour configured as before keeps its state), `[[services]]` (instances no longer listed
//! are deregistered), the log filter and `[[webhooks]]` change at once too.
//! Other sections that changed are named as taking effect at the next start.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use vigil_api::reload::ReloadRefused;
use vigil_api::serve::Tls;
use vigil_api::webhooks::{WebhookSpec, Webhooks};
use vigil_api::wire::Registration;
use vigil_api::wire::Reloaded;
use vigil_api::Readers;
use vigil_health::Engine;
use vigil_probe::neighbors::{NeighborSpec, Neighbors};

use crate::config::{self, Config};
use crate::log_filter::LogFilter;
use crate::service_registration::Registrations;

/// What a reload compares a new file with: the config as last applied.
pub struct Applied {
    /// Settings that cannot change while the agent runs, by name.
    fixed: BTreeMap<&'static str, String>,
    /// Sections applied only at start, by name.
    at_start: BTreeMap<&'static str, String>,
    /// Each config check's definition, by name.
    checks: BTreeMap<String, String>,
    /// `[api] token`.
    token: Option<String>,
    /// `[api] read_token`.
    read_token: Option<String>,
    /// `[api] tls_cert`, `tls_key`, `tls_client_ca`.
    tls: Option<vigil_api::serve::TlsFiles>,
    /// `[[webhooks]]`.
    webhooks: Vec<WebhookSpec>,
    /// `[[neighbors]]`.
    neighbors: Vec<NeighborSpec>,
    /// `[[services]]`.
    services: Vec<Registration>,
    /// `[node] log`.
    log: Option<String>,
}

impl Applied {
    /// What `config` applies.
    pub fn of(config: &Config) -> Applied {
        let cluster = config.cluster.as_ref();
        let fixed = [
            ("node.id", config.node.id.clone()),
            ("api.bind", config.api.bind.to_string()),
            ("api.tls", format!("{}", config.api.tls.is_some())),
            ("api.probe_bind", format!("{:?}", config.api.probe_bind)),
            ("cluster.bind", format!("{:?}", cluster.map(|c| c.bind))),
            (
                "cluster.advertise",
                format!("{:?}", cluster.map(|c| c.advertise)),
            ),
            ("cluster.role", format!("{:?}", cluster.map(|c| c.role))),
            (
                "cluster.voters",
                format!("{:?}", cluster.map(|c| &c.voters)),
            ),
            (
                "cluster.data_dir",
                format!("{:?}", cluster.map(|c| &c.data_dir)),
            ),
            (
                "cluster.raft_bind",
                format!("{:?}", cluster.map(|c| c.raft_bind)),
            ),
            (
                "grpc.bind",
                format!("{:?}", config.grpc.as_ref().map(|g| g.bind)),
            ),
            (
                "dns.bind",
                format!("{:?}", config.dns.as_ref().map(|d| d.bind)),
            ),
        ]
        .into_iter()
        .collect();
        let at_start = [
            (
                "api.max_connections",
                format!("{:?}", config.api.max_connections),
            ),
            (
                "api.tls_ca",
                format!("{:?}", config.api.tls.as_ref().map(|t| &t.peer_ca)),
            ),
            ("[health]", format!("{:?}", config.health)),
            ("[shutdown]", format!("{:?}", config.shutdown)),
            ("[cluster]", format!("{:?}", config.cluster)),
            ("[grpc]", format!("{:?}", config.grpc)),
            ("[dns]", format!("{:?}", config.dns)),
        ]
        .into_iter()
        .collect();
        Applied {
            fixed,
            at_start,
            checks: config.check_definitions.clone(),
            token: config.api.token.clone(),
            read_token: config.api.read_token.clone(),
            tls: config.api.tls.as_ref().map(|t| t.files.clone()),
            webhooks: config.webhooks.clone(),
            neighbors: config.neighbors.clone(),
            services: config.services.clone(),
            log: config.node.log.clone(),
        }
    }
}

/// Reloads one agent's config file into its engine.
pub struct Reloader {
    path: PathBuf,
    live: Live,
    applied: Mutex<Applied>,
}

/// What a reload changes in the running agent.
pub struct Live {
    /// Runs the checks.
    pub engine: Engine,
    /// Guard the API.
    pub readers: Readers,
    /// Delivers events.
    pub webhooks: Webhooks,
    /// Probes the neighbours.
    pub neighbors: Option<Neighbors>,
    /// Keeps `[[services]]` registered, on an agent in a cluster.
    pub services: Option<Registrations>,
    /// The process's log filter.
    pub log: Option<LogFilter>,
    /// The API's (and gRPC's) TLS, when it has it.
    pub tls: Option<Tls>,
}

impl Reloader {
    /// The reloader of the agent started from `path` with the config that applied `applied`,
    /// running `live`.
    pub fn new(path: PathBuf, live: Live, applied: Applied) -> Reloader {
        Reloader {
            path,
            live,
            applied: Mutex::new(applied),
        }
    }

    /// Reads the file again and applies it, or refuses it whole.
    pub fn reload(&self) -> Result<Reloaded, ReloadRefused> {
        let config = match config::load(&self.path) {
            Ok(config) => config,
            Err(errors) => return Err(ReloadRefused::Invalid(errors.to_string())),
        };
        let mut applied = self.applied.lock().unwrap_or_else(PoisonError::into_inner);
        let new = Applied::of(&config);
        let fixed: Vec<String> = new
            .fixed
            .iter()
            .filter(|(name, value)| applied.fixed.get(*name) != Some(*value))
            .map(|(name, _)| (*name).to_owned())
            .collect();
        if !fixed.is_empty() {
            return Err(ReloadRefused::Fixed(fixed));
        }
        // The certificate files are read again whether or not their paths changed: renewing a
        // certificate in place is what a reload is for. They were checked when the config was.
        if let (Some(tls), Some(files)) = (&self.live.tls, &new.tls) {
            if let Err(error) = tls.reload(files.clone()) {
                return Err(ReloadRefused::Invalid(format!("[api] TLS: {error}")));
            }
        }
        // Checked before anything is applied: the file is refused whole or applied whole.
        if new.neighbors != applied.neighbors {
            if let Err(error) = Neighbors::new(new.neighbors.clone()) {
                return Err(ReloadRefused::Invalid(format!("[[neighbors]]: {error}")));
            }
        }
        let mut reloaded = Reloaded::default();
        for plan in config.checks {
            let name = plan.spec.name.clone();
            match applied.checks.get(&name) {
                Some(before) if Some(before) == new.checks.get(&name) => {
                    reloaded.unchanged += 1;
                    continue;
                }
                Some(_) => reloaded.changed.push(name.clone()),
                None => reloaded.added.push(name.clone()),
            }
            if let Err(error) = plan.register(&self.live.engine) {
                tracing::warn!(check = %name, %error, "reloaded check not started");
            }
        }
        for name in applied.checks.keys() {
            if !new.checks.contains_key(name) {
                let _ = self.live.engine.unregister(name);
                reloaded.removed.push(name.clone());
            }
        }
        if new.token != applied.token {
            self.live.readers.api_token.replace(new.token.clone());
            reloaded.applied.push("api.token".to_owned());
        }
        if new.read_token != applied.read_token {
            self.live.readers.read_token.replace(new.read_token.clone());
            reloaded.applied.push("api.read_token".to_owned());
        }
        if self.live.tls.is_some() {
            reloaded.applied.push("api.tls".to_owned());
        }
        if new.neighbors != applied.neighbors {
            if let Some(monitor) = &self.live.neighbors {
                // Validated above, so this does not fail.
                if monitor
                    .replace(new.neighbors.clone(), Some(&self.live.engine))
                    .is_ok()
                {
                    reloaded.applied.push("[[neighbors]]".to_owned());
                }
            }
        }
        if new.services != applied.services {
            if let Some(registrations) = &self.live.services {
                registrations.replace(new.services.clone());
                reloaded.applied.push("[[services]]".to_owned());
            }
        }
        if new.log != applied.log {
            if let Some(log) = &self.live.log {
                if log.apply(new.log.as_deref()) {
                    reloaded.applied.push("node.log".to_owned());
                }
            }
        }
        if new.webhooks != applied.webhooks {
            self.live.webhooks.replace(new.webhooks.clone());
            reloaded.applied.push("[[webhooks]]".to_owned());
        }
        reloaded.at_restart = new
            .at_start
            .iter()
            .filter(|(name, value)| applied.at_start.get(*name) != Some(*value))
            .map(|(name, _)| (*name).to_owned())
            .collect();
        // What takes effect at restart is compared with what runs, not with the last reload.
        let at_start = std::mem::take(&mut applied.at_start);
        *applied = Applied { at_start, ..new };
        Ok(reloaded)
    }
}
