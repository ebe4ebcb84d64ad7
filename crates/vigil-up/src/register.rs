//! Registering a stack's services as service instances of a registry, so that what `vigil up`
//! started is discoverable and health-checked like any other instance.
//!
//! A stack file's service may carry a `register` table. vigil-up knows when to register and
//! deregister; what a registration may say and how it reaches a registry is not its business.
//! So the program supplies two things: a [`Reader`], which checks a `register` table as the
//! registry would and places each problem in the stack file, and a [`Registry`], which
//! registers and deregisters. For the `vigil` command they are vigil's own registration
//! validator and a vigil agent's HTTP API.
//!
//! An instance is registered once its service is ready (healthy, or started when it has no
//! `health`), stays registered through restarts (the registry's own checks see the service go
//! and come back), and is deregistered when the service ends for good (it failed, or exited
//! and its restart policy does not start it again) and before it is stopped with the stack. A
//! registration or deregistration is tried once; its outcome is reported for its service and
//! the stack goes on either way.

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use toml::de::DeTable;

use crate::error::Errors;
use crate::stack::{ServiceId, Stack};

/// A registered instance, as a registry names it: the service name and the instance's id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Instance {
    /// The service name it is registered under.
    pub name: String,
    /// The instance's id, unique within its service.
    pub id: String,
}

impl std::fmt::Display for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "service {} instance {}", self.name, self.id)
    }
}

/// What a `register` table stands for: the instance, and the registration as the registry
/// takes it, already checked by the [`Reader`] that read it.
#[derive(Clone, Debug, PartialEq)]
pub struct Registration {
    /// The instance it registers.
    pub instance: Instance,
    /// The registration itself (for vigil, a `POST /v1/services` body).
    pub body: serde_json::Value,
}

/// Reads the `register` table of a stack file's service.
pub trait Reader {
    /// The registration of service `service` that `table` (whose whole span is `span`)
    /// stands for; `None` when something is wrong with it, each problem recorded in `errors`
    /// at the key it is about.
    fn read(
        &self,
        service: &str,
        table: &DeTable<'_>,
        span: Range<usize>,
        errors: &mut Errors<'_>,
    ) -> Option<Registration>;
}

/// The [`Reader`] of a program that registers nothing: a `register` table is an error.
pub struct Unsupported;

impl Reader for Unsupported {
    fn read(
        &self,
        service: &str,
        _table: &DeTable<'_>,
        span: Range<usize>,
        errors: &mut Errors<'_>,
    ) -> Option<Registration> {
        errors.at(
            span,
            format!("service \"{service}\": `register` is not supported here"),
        );
        None
    }
}

/// A registration or deregistration under way; its error says why, for people.
pub type Pending<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Where instances are registered.
pub trait Registry: Send + Sync {
    /// Registers `registration` (registering it again leaves it as it is).
    fn register<'a>(&'a self, registration: &'a Registration) -> Pending<'a>;
    /// Deregisters `instance`; an instance the registry does not hold is no error.
    fn deregister<'a>(&'a self, instance: &'a Instance) -> Pending<'a>;
}

/// What became of one registration or deregistration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegistryOutcome {
    /// The instance is registered.
    Registered(Instance),
    /// The registry refused it or could not be reached.
    NotRegistered(Instance, String),
    /// The instance is deregistered.
    Deregistered(Instance),
    /// The registry refused it or could not be reached: the instance may still be registered.
    NotDeregistered(Instance, String),
    /// Nothing to deregister: the registration had not succeeded.
    Unregistered,
}

impl RegistryOutcome {
    /// What to tell people; `None` when there is nothing to say.
    pub fn describe(&self) -> Option<String> {
        Some(match self {
            RegistryOutcome::Registered(instance) => format!("registered as {instance}"),
            RegistryOutcome::NotRegistered(instance, why) => {
                format!("not registered as {instance}: {why}")
            }
            RegistryOutcome::Deregistered(instance) => format!("deregistered {instance}"),
            RegistryOutcome::NotDeregistered(instance, why) => {
                format!("could not deregister {instance}: {why}")
            }
            RegistryOutcome::Unregistered => return None,
        })
    }
}

/// What a service's registration worker is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Register,
    Deregister,
}

/// The registrations of one run of `vigil up`: which services are to be registered, and one
/// worker per service carrying out its requests in order, so a deregistration never overtakes
/// the registration before it.
pub(crate) struct Registrations {
    registry: Option<Arc<dyn Registry>>,
    services: Vec<Slot>,
    results: mpsc::UnboundedReceiver<(ServiceId, RegistryOutcome)>,
    sender: mpsc::UnboundedSender<(ServiceId, RegistryOutcome)>,
    pending: usize,
}

/// One service's registration.
struct Slot {
    registration: Option<Registration>,
    /// Its worker's requests, once it has one.
    worker: Option<mpsc::UnboundedSender<Op>>,
    /// Whether the last request was to register.
    wanted: bool,
}

impl Registrations {
    /// The registrations of `stack`'s services; with no `registry`, none is ever made.
    pub(crate) fn new(stack: &Stack, registry: Option<Arc<dyn Registry>>) -> Self {
        let (sender, results) = mpsc::unbounded_channel();
        Registrations {
            services: stack
                .services
                .iter()
                .map(|s| Slot {
                    registration: s.register.clone().filter(|_| registry.is_some()),
                    worker: None,
                    wanted: false,
                })
                .collect(),
            registry,
            results,
            sender,
            pending: 0,
        }
    }

    /// The service is ready: registers it, unless it already is.
    pub(crate) fn ready(&mut self, id: ServiceId) {
        if self.services[id.0].registration.is_some() && !self.services[id.0].wanted {
            self.services[id.0].wanted = true;
            self.request(id, Op::Register);
        }
    }

    /// The service ended, or is about to be stopped: deregisters it, if it was registered.
    /// Returns whether a deregistration is under way.
    pub(crate) fn ended(&mut self, id: ServiceId) -> bool {
        if !self.services[id.0].wanted {
            return false;
        }
        self.services[id.0].wanted = false;
        self.request(id, Op::Deregister);
        true
    }

    fn request(&mut self, id: ServiceId, op: Op) {
        let slot = &mut self.services[id.0];
        let (Some(registry), Some(registration)) = (&self.registry, slot.registration.as_ref())
        else {
            return;
        };
        let worker = slot.worker.get_or_insert_with(|| {
            let (requests, inbox) = mpsc::unbounded_channel();
            tokio::spawn(work(
                id,
                Arc::clone(registry),
                registration.clone(),
                inbox,
                self.sender.clone(),
            ));
            requests
        });
        // The worker ends only when its requests are dropped, with `self`.
        if worker.send(op).is_ok() {
            self.pending += 1;
        }
    }

    /// Requests not answered yet.
    pub(crate) fn pending(&self) -> usize {
        self.pending
    }

    /// The next answer; never resolves while none is pending.
    pub(crate) async fn next(&mut self) -> (ServiceId, RegistryOutcome) {
        if self.pending == 0 {
            return std::future::pending().await;
        }
        match self.results.recv().await {
            Some(done) => {
                self.pending -= 1;
                done
            }
            // `self` holds a sender: the channel never closes.
            None => std::future::pending().await,
        }
    }
}

/// One service's worker: carries out its requests in order, answering each.
async fn work(
    id: ServiceId,
    registry: Arc<dyn Registry>,
    registration: Registration,
    mut inbox: mpsc::UnboundedReceiver<Op>,
    answers: mpsc::UnboundedSender<(ServiceId, RegistryOutcome)>,
) {
    let mut registered = false;
    while let Some(op) = inbox.recv().await {
        let instance = registration.instance.clone();
        let outcome = match op {
            Op::Register => match registry.register(&registration).await {
                Ok(()) => {
                    registered = true;
                    RegistryOutcome::Registered(instance)
                }
                Err(why) => RegistryOutcome::NotRegistered(instance, why),
            },
            Op::Deregister if !registered => RegistryOutcome::Unregistered,
            Op::Deregister => match registry.deregister(&instance).await {
                Ok(()) => {
                    registered = false;
                    RegistryOutcome::Deregistered(instance)
                }
                Err(why) => RegistryOutcome::NotDeregistered(instance, why),
            },
        };
        if answers.send((id, outcome)).is_err() {
            return;
        }
    }
}
