//! Running a node: the engine with the configured checks, the API server, and graceful shutdown.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::oneshot;
use tracing::Instrument;
use vigil_api::catalog::Catalog;
use vigil_api::dns::Dns;
use vigil_api::grpc::GrpcSurface;
use vigil_api::instance_checks::InstanceChecks;
use vigil_api::reload::ReloadHook;
use vigil_api::serve::{ServeLimits, Tls};
use vigil_api::{Api, Readers, Token};
use vigil_cluster::raft::{Leadership, RaftConfig, RaftListener, RAFT_TAG};
use vigil_cluster::{Cluster, ClusterConfig};
use vigil_gossip::Health;
use vigil_health::shutdown::{Coordinator, Outcome, Phase, Reason};
use vigil_health::{Engine, Event, Status};
use vigil_probe::neighbors::Neighbors;

use crate::config::{ClusterSettings, Config, GrpcSettings};
use crate::reload::{Applied, Live, Reloader};
use crate::service_manager::ServiceManager;
use crate::stop_signal::StopSignal;

/// Called once the engine runs and the API listens, with the address it listens on.
pub type OnReady = Box<dyn FnOnce(&Engine, SocketAddr) + Send>;

/// What a caller adds to a node beyond its config (the demo adds its sample checks and feeder).
#[derive(Default)]
pub struct Extras {
    /// See [`OnReady`].
    pub on_ready: Option<OnReady>,
    /// The file the config was read from: SIGHUP and `POST /v1/reload` read it again.
    pub config_path: Option<std::path::PathBuf>,
    /// The process's log filter, which `[node] log` sets (none: the config's is not applied).
    pub log: Option<crate::log_filter::LogFilter>,
    /// The service manager told of readiness, reloads and shutdown (systemd's `Type=notify`).
    pub service_manager: Option<ServiceManager>,
}

/// Runs the node until a signal or the critical-check policy stops it. Its log lines carry the
/// node id, so the nodes of `vigil demo` can be told apart.
/// `stop` is the process's stop signal, installed before the node starts.
pub async fn run(config: Config, stop: StopSignal, extras: Extras) -> anyhow::Result<ExitCode> {
    let span = tracing::info_span!("node", id = %config.node.id);
    run_node(config, stop, extras).instrument(span).await
}

async fn run_node(
    mut config: Config,
    stop: StopSignal,
    extras: Extras,
) -> anyhow::Result<ExitCode> {
    if let (Some(log), Some(directives)) = (&extras.log, &config.node.log) {
        log.apply(Some(directives));
    }
    // Caught from the start, so that a SIGHUP while the node starts does not end it.
    let reloading = match &extras.config_path {
        Some(path) => Some((path.clone(), Applied::of(&config), hangups()?)),
        None => None,
    };
    let engine = Engine::builder()
        .config(config.health.engine_config(&config.node))
        .build();
    for plan in std::mem::take(&mut config.checks) {
        let name = plan.spec.name.clone();
        plan.register(&engine)
            .with_context(|| format!("registering check {name:?}"))?;
    }
    log_events(&engine);
    engine.start();

    let listener = TcpListener::bind(config.api.bind)
        .await
        .with_context(|| format!("cannot listen on {} (api.bind)", config.api.bind))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let tls = config.api.tls.as_ref().map(start_tls).transpose()?;
    // What this agent presents to its own API and to other agents: the API token, else the
    // read token.
    let own_token = config.api.token.clone().or(config.api.read_token.clone());
    let token = Token::new(config.api.token);
    let readers = Readers {
        api_token: token.clone(),
        read_token: Token::new(config.api.read_token),
    };
    if !token.is_set() {
        tracing::warn!("no API token configured: check registration and TTL updates are open to anyone who can reach {addr}");
    }
    let role = config
        .cluster
        .as_ref()
        .map_or("standalone", |c| c.role.as_str())
        .to_owned();
    let grpc = match config.grpc {
        Some(settings) => Some(start_grpc(settings, &engine, role, tls.clone()).await?),
        None => None,
    };
    // Made without neighbours too, so that a reload can add some.
    let neighbors = Neighbors::new(config.neighbors).context("setting up [[neighbors]]")?;
    neighbors.start(Some(&engine));
    let neighbors = Some(neighbors);
    let (cluster, leadership) = match config.cluster {
        Some(settings) => {
            // Joining may take seconds (Raft opens its store); a signal meanwhile ends it there.
            let (cluster, leadership) = tokio::select! {
                joined = join_cluster(settings, &config.node.id, addr, &engine) => joined?,
                signal = stop.received() => {
                    tracing::info!("{signal} while joining the cluster: stopping");
                    return Ok(ExitCode::SUCCESS);
                }
            };
            (Some(cluster), leadership)
        }
        None => (None, None),
    };
    let catalog = cluster.as_ref().map(|cluster| match &leadership {
        Some(leadership) => Catalog::of_voter(leadership),
        None => Catalog::follow(cluster.clone(), readers.clone()),
    });
    // Validation ensures [dns] comes with [cluster], so with a catalog.
    let dns = match (config.dns, &catalog) {
        (Some(settings), Some(catalog)) => {
            let dns = Dns::start(&settings, catalog.clone(), cluster.clone())
                .await
                .context("starting DNS ([dns])")?;
            tracing::info!(
                "DNS on {} (udp+tcp), domain {}",
                dns.local_addr(),
                settings.domain
            );
            Some(dns)
        }
        _ => None,
    };
    let instances = match (&catalog, &cluster) {
        (Some(catalog), Some(cluster)) => Some(InstanceChecks::start(
            &config.node.id,
            config.health.instance_engine_config(&config.node),
            catalog.clone(),
            cluster.clone(),
            leadership.clone(),
            readers.clone(),
        )),
        _ => None,
    };
    // Validation ensures [[services]] comes with [cluster], so with a catalog.
    let registrations = catalog.as_ref().map(|catalog| {
        crate::service_registration::start(
            addr,
            own_token,
            config.node.id.clone(),
            config.services,
            catalog.clone(),
        )
    });
    let mut api = Api {
        engine: engine.clone(),
        token,
        read_token: readers.read_token.clone(),
        cluster: cluster.clone(),
        leadership: leadership.clone(),
        neighbors: neighbors.clone(),
        catalog,
        instances,
        webhooks: Default::default(),
        reload: Default::default(),
    };
    api.webhooks = vigil_api::webhooks::Webhooks::start(&api, config.webhooks);
    if let Some((path, applied, hangups)) = reloading {
        let live = Live {
            engine: engine.clone(),
            readers: api.readers(),
            neighbors: neighbors.clone(),
            services: registrations,
            log: extras.log.clone(),
            webhooks: api.webhooks.clone(),
            tls: tls.clone(),
        };
        let reloader = Arc::new(Reloader::new(path, live, applied));
        reload_on_hangup(hangups, reloader.clone(), extras.service_manager.clone());
        api.reload = ReloadHook::new(move || reloader.reload());
    }
    let api_probes = api.probe_app();
    let app = api.app();

    let (stop_server, server_stopped) = oneshot::channel::<()>();
    let limits = ServeLimits {
        max_connections: config
            .api
            .max_connections
            .unwrap_or_else(vigil_api::serve::default_max_connections),
        ..ServeLimits::default()
    };
    let server = tokio::spawn(vigil_api::serve::serve_with(
        listener,
        app,
        limits,
        tls,
        async move {
            let _ = server_stopped.await;
        },
    ));
    let probe_server = match config.api.probe_bind {
        Some(bind) => {
            let listener = TcpListener::bind(bind)
                .await
                .with_context(|| format!("cannot listen on {bind} (api.probe_bind)"))?;
            let (stop, stopped) = oneshot::channel::<()>();
            let served = vigil_api::serve::serve(listener, api_probes, limits, async move {
                let _ = stopped.await;
            });
            tracing::info!(%bind, "probe endpoints on plain HTTP");
            Some((stop, tokio::spawn(served)))
        }
        None => None,
    };

    let shutdown = Coordinator::new().with_engine(engine.clone());
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        on_signal.trigger(Reason::Signal(stop.received().await));
    });
    if let Some(grace) = config.shutdown.on_critical {
        shutdown.stop_on_critical(&engine, grace);
    }
    let drain = config.shutdown.drain;
    if !drain.is_zero() {
        shutdown.hook(Phase::PreShutdown, "drain", move || async move {
            tokio::time::sleep(drain).await;
            Ok::<_, std::convert::Infallible>(())
        });
    }
    if let Some(leadership) = leadership.clone() {
        // A voter whose Raft server died (a panic inside openraft, a store that fails) can no
        // longer lead, vote or write, yet its process would go on answering; it exits with a
        // failure instead, for systemd or Kubernetes to start it again with its store reopened.
        let failing = shutdown.clone();
        tokio::spawn(async move {
            let what = leadership.failed().await;
            tracing::error!(%what, "this node's Raft server stopped; the agent stops so that it is started again");
            failing.trigger(Reason::Fault(format!("the Raft server stopped: {what}")));
        });
    }
    if let Some(leadership) = leadership {
        // Stop Raft before leaving, so the other voters elect a leader without waiting for
        // this one's lease to run out any longer than they must.
        shutdown.component("raft", 4, LEAVE_WITHIN, move || async move {
            leadership.shutdown().await;
            Ok::<_, std::convert::Infallible>(())
        });
    }
    if let Some(cluster) = cluster {
        // Leave before the API closes: members see `left`, not a failure to detect.
        shutdown.component("cluster", 5, LEAVE_WITHIN * 2, move || async move {
            cluster.leave(LEAVE_WITHIN).await;
            Ok::<_, std::convert::Infallible>(())
        });
    }
    if let Some(neighbors) = neighbors {
        shutdown.component("neighbors", 1, LEAVE_WITHIN, move || async move {
            neighbors.stop();
            Ok::<_, std::convert::Infallible>(())
        });
    }
    if let Some(dns) = dns {
        shutdown.component("dns", 10, config.shutdown.timeout, move || async move {
            dns.stop().await;
            Ok::<_, std::convert::Infallible>(())
        });
    }
    if let Some((stop_grpc, grpc_server)) = grpc {
        shutdown.component("grpc-server", 10, config.shutdown.timeout, move || {
            stop_grpc.stop(grpc_server)
        });
    }
    if let Some((stop, server)) = probe_server {
        shutdown.component("probe-server", 10, config.shutdown.timeout, move || {
            stop_serving(stop, server)
        });
    }
    shutdown.component("api-server", 10, config.shutdown.timeout, move || {
        stop_serving(stop_server, server)
    });

    tracing::info!(node = %config.node.id, %addr, "vigil agent running");
    if let Some(manager) = extras.service_manager {
        // The listener is bound and served and the engine has published its first snapshot:
        // a client connecting from now on is answered.
        manager.ready(&engine, addr);
        let stopping = shutdown.clone();
        tokio::spawn(async move {
            let reason = stopping.triggered().await;
            manager.stopping(&reason.to_string());
        });
    }
    if let Some(on_ready) = extras.on_ready {
        on_ready(&engine, addr);
    }

    let second_signal = shutdown.clone();
    tokio::spawn(async move {
        second_signal.triggered().await;
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("vigil: second interrupt, exiting at once");
            std::process::exit(130);
        }
    });

    let report = shutdown.run().await;
    tracing::info!(reason = %report.reason, "shutdown complete");
    for step in &report.steps {
        match &step.outcome {
            Outcome::Completed => {
                tracing::info!(step = %step.name, elapsed = ?step.elapsed, "stopped")
            }
            Outcome::Failed(e) => tracing::error!(step = %step.name, error = %e, "failed to stop"),
            Outcome::TimedOut => tracing::error!(step = %step.name, "did not stop in time"),
        }
    }
    Ok(
        if report.is_clean() && !matches!(report.reason, Reason::Fault(_)) {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}

/// SIGHUPs from now on.
fn hangups() -> anyhow::Result<Signal> {
    signal(SignalKind::hangup()).context("cannot install the SIGHUP handler")
}

/// Reloads the config on every SIGHUP, logging what changed or why nothing did, and telling
/// the service manager when the reload begins and ends.
fn reload_on_hangup(mut hangups: Signal, reloader: Arc<Reloader>, manager: Option<ServiceManager>) {
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let reloader = reloader.clone();
            let announced = manager.as_ref().and_then(ServiceManager::reloading);
            let outcome = tokio::task::spawn_blocking(move || reloader.reload()).await;
            if let Some(announced) = announced {
                announced.done(match &outcome {
                    Ok(Ok(_)) => "config reloaded",
                    Ok(Err(_)) | Err(_) => "config not reloaded: the running config stays",
                });
            }
            match outcome {
                Ok(Ok(done)) => tracing::info!(
                    applied = ?done.applied,
                    added = ?done.added,
                    changed = ?done.changed,
                    removed = ?done.removed,
                    unchanged = done.unchanged,
                    at_restart = ?done.at_restart,
                    "config reloaded"
                ),
                Ok(Err(refused)) => tracing::error!("config not reloaded: {refused}"),
                Err(e) => tracing::error!("config reload failed: {e}"),
            }
        }
    });
}

/// Stops the gRPC server: its `Watch` streams end and calls in flight finish.
struct GrpcStop(oneshot::Sender<()>);

impl GrpcStop {
    async fn stop(
        self,
        server: tokio::task::JoinHandle<Result<(), vigil_api::grpc::ServeError>>,
    ) -> Result<(), String> {
        let _ = self.0.send(());
        match server.await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Serves `grpc.health.v1.Health` and `vigil.v1.Node` on `[grpc] bind`.
/// Tells a server started with `serve` to stop, and waits until its connections are closed.
async fn stop_serving(
    stop: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
) -> Result<(), String> {
    let _ = stop.send(());
    match server.await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// The API's TLS from `[api] tls_*`, and the other agents reached over HTTPS: trusting `tls_ca`
/// (else `tls_client_ca`, else the system's roots), presenting this agent's certificate when
/// the agents ask for client certificates.
fn start_tls(settings: &crate::config::ApiTls) -> anyhow::Result<Tls> {
    let tls = Tls::load(settings.files.clone()).context("[api] TLS")?;
    let read = |path: &std::path::Path| {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))
    };
    let ca = settings
        .peer_ca
        .as_deref()
        .or(settings.files.client_ca.as_deref())
        .map(read)
        .transpose()?;
    let identity = match &settings.files.client_ca {
        Some(_) => {
            let mut pem = read(&settings.files.cert)?;
            pem.push(b'\n');
            pem.extend(read(&settings.files.key)?);
            Some(pem)
        }
        None => None,
    };
    vigil_api::reach_peers_over_tls(ca.as_deref(), identity.as_deref())
        .map_err(|e| anyhow::anyhow!("reaching the other agents over TLS: {e}"))?;
    Ok(tls)
}

async fn start_grpc(
    settings: GrpcSettings,
    engine: &Engine,
    role: String,
    tls: Option<Tls>,
) -> anyhow::Result<(
    GrpcStop,
    tokio::task::JoinHandle<Result<(), vigil_api::grpc::ServeError>>,
)> {
    let listener = TcpListener::bind(settings.bind)
        .await
        .with_context(|| format!("cannot listen on {} (grpc.bind)", settings.bind))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let mut surface = GrpcSurface::new(engine.clone(), role);
    for (name, checks) in settings.services {
        surface = surface.service(name, checks);
    }
    let (stop, stopped) = oneshot::channel::<()>();
    let stopped = async move {
        let _ = stopped.await;
    };
    let server = match tls {
        Some(tls) => tokio::spawn(surface.serve_tls(listener, tls, stopped)),
        None => tokio::spawn(surface.serve(listener, stopped)),
    };
    tracing::info!(%addr, "gRPC health service listening");
    Ok((GrpcStop(stop), server))
}

/// How long a leaving node keeps gossiping its departure.
const LEAVE_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

/// Starts membership (and Raft on a voter) and keeps this node's health in its gossiped
/// metadata and its Raft candidacy.
async fn join_cluster(
    settings: ClusterSettings,
    node_id: &str,
    api: SocketAddr,
    engine: &Engine,
) -> anyhow::Result<(Cluster, Option<Leadership>)> {
    let gossip_addr = settings.advertise.unwrap_or(settings.bind);
    // Advertise the API on the gossip address's host when it listens on a wildcard.
    let api_addr = if api.ip().is_unspecified() {
        SocketAddr::new(gossip_addr.ip(), api.port())
    } else {
        api
    };
    // A voter outside the bootstrap set runs Raft too, as a learner until it is added.
    let voter = settings.role == vigil_gossip::Role::Voter;
    let mut tags = settings.tags;
    let raft_listener = if voter {
        let bind = settings
            .raft_bind
            .unwrap_or_else(|| SocketAddr::new(settings.bind.ip(), 0));
        let listener = RaftListener::bind(bind)
            .await
            .with_context(|| format!("cannot listen for Raft on {bind} (cluster.raft_bind)"))?;
        let bound = listener.local_addr();
        let advertised = if bound.ip().is_unspecified() {
            SocketAddr::new(gossip_addr.ip(), bound.port())
        } else {
            bound
        };
        tags.insert(RAFT_TAG.to_owned(), advertised.to_string());
        Some(listener)
    } else {
        None
    };
    let cluster = Cluster::start(ClusterConfig {
        node_id: node_id.to_owned(),
        bind: settings.bind,
        advertise: settings.advertise,
        seeds: settings.seeds,
        role: settings.role,
        tags,
        api_addr: Some(api_addr),
        voters: settings.voters.clone(),
        keyring: settings.keyring,
        key_file: settings.key_file,
        protocol: settings.protocol,
    })
    .await
    .context("starting cluster membership")?;
    tracing::info!(gossip = %cluster.local_addr(), "cluster membership running");
    let leadership = match raft_listener {
        Some(listener) => {
            let data_dir = settings
                .data_dir
                .unwrap_or_else(|| std::path::PathBuf::from("vigil-data").join(node_id));
            let config = RaftConfig {
                data_dir,
                voters: settings.voters,
                election_timeout: settings.election_timeout,
            };
            Some(
                Leadership::start(config, listener, cluster.clone())
                    .await
                    .context("starting Raft")?,
            )
        }
        None => None,
    };
    feed_health(engine.clone(), cluster.clone(), leadership.clone());
    Ok((cluster, leadership))
}

/// Spreads the node's status at once when it changes, and its score at most once a second;
/// on a voter, an `unhealthy` status (a critical check failing) withdraws it from leadership.
fn feed_health(engine: Engine, cluster: Cluster, leadership: Option<Leadership>) {
    let mut events = engine.subscribe();
    let task = async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            let snapshot = engine.snapshot();
            let score = (snapshot.system_score() * 100.0).round().clamp(0.0, 100.0) as u8;
            // Raft first: an unhealthy leader must stop writing before its new health spreads
            // and would be recorded, or its successor would lack that entry and lose the vote.
            if let Some(leadership) = &leadership {
                leadership.set_healthy(snapshot.status() != Status::Unhealthy);
            }
            cluster.set_health(gossip_health(snapshot.status()), score);
            loop {
                tokio::select! {
                    _ = tick.tick() => break,
                    event = events.recv() => match event {
                        Ok(Event::StatusChanged { .. }) | Err(RecvError::Lagged(_)) => break,
                        Ok(_) => {}
                        Err(RecvError::Closed) => return,
                    },
                }
            }
        }
    };
    tokio::spawn(task.in_current_span());
}

fn gossip_health(status: Status) -> Health {
    match status {
        Status::Starting => Health::Starting,
        Status::Healthy => Health::Healthy,
        Status::Degraded => Health::Degraded,
        Status::Unhealthy => Health::Unhealthy,
        Status::Stopping => Health::Stopping,
    }
}

/// Logs every state and status change, the agent's operational record.
fn log_events(engine: &Engine) {
    let mut events = engine.subscribe();
    let task = async move {
        loop {
            match events.recv().await {
                Ok(Event::CheckChanged {
                    check,
                    from,
                    to,
                    message,
                    ..
                }) => {
                    tracing::info!("check {check}: {from} → {to}: {message}")
                }
                Ok(Event::StatusChanged {
                    from, to, message, ..
                }) => {
                    tracing::info!("status {from} → {to}: {message}")
                }
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!("event log fell behind, {n} events not logged")
                }
                Err(RecvError::Closed) => return,
            }
        }
    };
    tokio::spawn(task.in_current_span());
}
