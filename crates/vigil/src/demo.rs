//! `vigil demo`: a local cluster of nodes with sample checks, running until Ctrl-C.
//!
//! Each node is configured by the embedded `demo.toml` (through the same loader as `vigil agent`),
//! plus one check that only code can express: a cache that flaps. The demo feeds each node's TTL
//! check through the real HTTP API with the token it generated, as a watched process would. The
//! nodes gossip over real UDP and TCP on loopback, encrypted with a fresh key (or `--key`); the
//! first three are voters and run Raft, each with its store in a fresh directory under the
//! system's temporary directory. A node that cannot start stops the whole demo with its reason.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use futures_util::stream::{FuturesUnordered, StreamExt};
use rand::Rng;
use vigil_gossip::crypto::{Key, Keyring};
use vigil_health::{CheckSpec, Engine, Report};

use crate::agent::{self, Extras};
use crate::config;
use crate::demo_heads;
use crate::stop_signal::StopSignal;

/// Options of `vigil demo`.
#[derive(Args)]
pub struct DemoArgs {
    /// Number of nodes in the local cluster.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
    nodes: u16,
    /// API port of the first node on 127.0.0.1; the others take the next ones.
    #[arg(long, default_value_t = 8081)]
    port: u16,
    /// Gossip port of the first node on 127.0.0.1; the others take the next ones.
    #[arg(long, default_value_t = 7946)]
    gossip_port: u16,
    /// gRPC health port of the first node on 127.0.0.1; the others take the next ones.
    #[arg(long, default_value_t = 9091)]
    grpc_port: u16,
    /// Cluster key (base64, as `vigil keygen` prints it); by default a fresh one, printed in the
    /// banner.
    #[arg(long)]
    key: Option<String>,
    /// Port of the first of the two head servers on 127.0.0.1 (the second takes the next).
    #[arg(long, default_value_t = 9101)]
    head_port: u16,
    /// Let head_server_1, started again after a failure, take leadership back from
    /// head_server_2 (the election `head-servers` with `preempt`).
    #[arg(long)]
    preempt: bool,
}

const DEMO_CONFIG: &str = include_str!("demo.toml");

/// What the banner lists of each node once it is up.
struct Started {
    id: String,
    api: SocketAddr,
    gossip: u16,
    grpc: u16,
}

/// Runs the demo cluster until a signal (`stop`) stops every node; stops at once, with the
/// node's error, when one cannot start.
pub async fn run(args: DemoArgs, stop: StopSignal) -> anyhow::Result<ExitCode> {
    let token = format!("{:032x}", rand::rng().random::<u128>());
    let key = match &args.key {
        Some(text) => Key::parse(text).map_err(|e| anyhow::anyhow!("--key: {e}"))?,
        None => Key::generate(&mut rand::rng()),
    };
    let key_text = key.to_base64();
    let keyring = Keyring::new(key);
    let voters: Vec<String> = (1..=args.nodes.min(3))
        .map(|i| format!("\"demo-{i}\""))
        .collect();
    let data_root = std::env::temp_dir().join(format!("vigil-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_root);
    let started = Arc::new(Mutex::new(Vec::new()));
    let heads: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>> = Arc::default();
    let mut nodes = Vec::new();
    for i in 0..args.nodes {
        let id = format!("demo-{}", i + 1);
        let node_id = id.clone();
        let gossip = args
            .gossip_port
            .checked_add(i)
            .ok_or_else(|| anyhow::anyhow!("--gossip-port too high"))?;
        let port = args
            .port
            .checked_add(i)
            .ok_or_else(|| anyhow::anyhow!("--port too high"))?;
        let grpc = grpc_port(args.grpc_port, i)?;
        let mut neighbors = String::new();
        for j in (0..args.nodes).filter(|&j| j != i) {
            neighbors.push_str(&format!(
                // The nodes start one after another, and each answers NOT_SERVING until its
                // first checks pass: three failed probes (4 s) before a neighbour counts as
                // degraded keep that start from being reported as a fault.
                "[[neighbors]]\nname = \"demo-{}\"\naddress = \"127.0.0.1:{}\"\ninterval = \"2s\"\nfailures_before_degraded = 3\nfailures_before_unavailable = 5\n\n",
                j + 1,
                grpc_port(args.grpc_port, j)?
            ));
        }
        let source = DEMO_CONFIG
            .replace("{node_id}", &id)
            .replace("{port}", &port.to_string())
            .replace("{gossip_port}", &gossip.to_string())
            .replace("{grpc_port}", &grpc.to_string())
            .replace("{neighbors}", &neighbors)
            .replace("{seed_port}", &args.gossip_port.to_string())
            .replace("{role}", if i < 3 { "voter" } else { "member" })
            .replace("{voters}", &voters.join(", "));
        let mut config = config::parse(&source, "demo.toml").map_err(|e| anyhow::anyhow!("{e}"))?;
        config.api.token = Some(token.clone());
        if let Some(cluster) = config.cluster.as_mut() {
            // A fresh Raft store per run: the demo starts a new cluster every time.
            cluster.data_dir = Some(data_root.join(&id));
            cluster.keyring = Some(keyring.clone());
        }
        let banner = Banner {
            token: token.clone(),
            key: key_text.clone(),
        };
        let token = token.clone();
        let started = started.clone();
        let heads = heads.clone();
        let head_stop = stop.clone();
        let (head_port, preempt) = (args.head_port, args.preempt);
        let total = usize::from(args.nodes);
        let extras = Extras {
            on_ready: Some(Box::new(move |engine: &Engine, addr: SocketAddr| {
                add_flaky_check(engine);
                feed_ttl(addr, token.clone());
                let mut started = started.lock().unwrap_or_else(|p| p.into_inner());
                started.push(Started {
                    id,
                    api: addr,
                    gossip,
                    grpc,
                });
                if started.len() == total {
                    banner.print(&mut started);
                    let apis: Vec<SocketAddr> = started.iter().map(|s| s.api).collect();
                    let task =
                        tokio::spawn(run_head_servers(head_port, apis, token, preempt, head_stop));
                    *heads.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
                }
            })),
            config_path: None,
            log: None,
            service_manager: None,
        };
        let node = agent::run(config, stop.clone(), extras);
        nodes.push(async move { node.await.with_context(|| format!("node {node_id}")) });
    }
    let announce = stop.clone();
    tokio::spawn(async move {
        let signal = announce.received().await;
        eprintln!("vigil demo: {signal}: stopping (each node turns `stopping`, drains, leaves the cluster)");
    });
    let mut nodes: FuturesUnordered<_> = nodes.into_iter().collect();
    let mut code = ExitCode::SUCCESS;
    while let Some(outcome) = nodes.next().await {
        match outcome {
            Ok(ExitCode::SUCCESS) => {}
            Ok(_) => code = ExitCode::FAILURE,
            Err(e) => {
                // The others would wait for it for ever (Raft cannot form without it): stop
                // the whole demo now, with the reason.
                let _ = std::fs::remove_dir_all(&data_root);
                return Err(e.context("the demo cannot start"));
            }
        }
    }
    let heads = heads.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(heads) = heads {
        let _ = tokio::time::timeout(Duration::from_secs(5), heads).await;
    }
    // The demo's Raft stores are of no use once it stops.
    let _ = std::fs::remove_dir_all(&data_root);
    Ok(code)
}

/// Starts the head servers and their election, says where they are, and stops them when the
/// demo stops.
async fn run_head_servers(
    port: u16,
    apis: Vec<SocketAddr>,
    token: String,
    preempt: bool,
    stop: StopSignal,
) {
    let heads = tokio::select! {
        heads = demo_heads::start(port, &apis, &token, preempt) => heads,
        _ = stop.received() => return,
    };
    match heads {
        Ok(heads) => {
            let servers: Vec<String> = heads
                .0
                .iter()
                .map(|h| {
                    let pid = h.pid.map_or("?".to_owned(), |p| p.to_string());
                    format!("{} (127.0.0.1:{}, pid {pid})", h.id, h.port)
                })
                .collect();
            println!(
                "vigil demo: head servers {} stand in election {} (lowest-id{}): see `vigil elections`",
                servers.join(" and "),
                demo_heads::ELECTION,
                if preempt { ", preempt" } else { "" }
            );
            stop.received().await;
            heads.stop().await;
        }
        Err(e) => eprintln!("vigil demo: the head servers did not start: {e:#}"),
    }
}

/// The gRPC port of node `i` (from 0).
fn grpc_port(first: u16, i: u16) -> anyhow::Result<u16> {
    first
        .checked_add(i)
        .ok_or_else(|| anyhow::anyhow!("--grpc-port too high"))
}

/// A non-critical check that fails about a third of the time, so the node turns `degraded` and
/// back, and the score moves.
fn add_flaky_check(engine: &Engine) {
    let spec = CheckSpec::new("cache-flaky")
        .description("a cache that misbehaves now and then")
        .interval(Duration::from_secs(3))
        .timeout(Duration::from_secs(1))
        .component("cache");
    let registered = engine.register(spec, || async {
        let latency_ms: u64 = rand::rng().random_range(1..40);
        tokio::time::sleep(Duration::from_millis(latency_ms)).await;
        if rand::rng().random_bool(0.35) {
            Report::fail("cache GET timed out on 1 of 3 shards").with_detail("shards_down", 1)
        } else {
            Report::pass("3 of 3 shards answering").with_detail("shards_up", 3)
        }
    });
    if let Err(e) = registered {
        tracing::error!("demo: cannot register cache-flaky: {e}");
    }
}

/// Pushes `pass` to the TTL check every 2 seconds through the HTTP API, as a batch worker would.
fn feed_ttl(addr: SocketAddr, token: String) {
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let url = format!("http://{addr}/v1/checks/batch-job/pass");
        for batch in 1u64.. {
            let sent = client
                .put(&url)
                .bearer_auth(&token)
                .body(format!("batch {batch} processed"))
                .send()
                .await;
            if let Err(e) = sent.and_then(|r| r.error_for_status()) {
                tracing::warn!("demo: TTL update failed: {e}");
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
}

/// What the banner tells beyond the nodes' addresses.
struct Banner {
    token: String,
    key: String,
}

impl Banner {
    fn print(&self, started: &mut [Started]) {
        let token = &self.token;
        started.sort_by_key(|s| s.api.port());
        println!("vigil demo: a {}-node cluster on 127.0.0.1", started.len());
        println!("  NODE     API                     GOSSIP           GRPC");
        for s in started.iter() {
            println!(
                "  {:<8} http://{:<16} 127.0.0.1:{:<6} 127.0.0.1:{}",
                s.id, s.api, s.gossip, s.grpc
            );
        }
        println!();
        println!(
            "  on every node: /health  /health/ready  /readyz?verbose  /health/checks  /health/summary"
        );
        println!(
            "                 /metrics  /cluster/status  /v1/members  /v1/events (server-sent events)"
        );
        println!("                 /v1/leader  /v1/services  /v1/neighbors  /v1/keyring");
        println!("                 /v1/elections  /v1/locks  /v1/sessions");
        println!("                 /v1/openapi.json (the OpenAPI document of all of them)");
        println!("  API token      {token}");
        println!(
            "  cluster key    {} (gossip and Raft are encrypted)",
            self.key
        );
        if let Some(first) = started.first() {
            let base = format!("http://{}", first.api);
            let (vigil, on_path) = command_name();
            println!();
            println!("  try, in another terminal:");
            for command in [
                "members",
                "status",
                "checks",
                "leader",
                "neighbors",
                "elections",
            ] {
                println!("        {vigil} {command} --addr {base}");
            }
            println!("        {vigil} watch --addr {base}");
            println!("        {vigil} probe grpc://127.0.0.1:{}", first.grpc);
            println!("        {vigil} console --addr {base} --token {token}");
            println!("        {vigil} keyring list --addr {base} --all");
            println!("        curl -X PUT -H 'Authorization: Bearer {token}' -d 'stuck' {base}/v1/checks/batch-job/fail");
            println!("  or set VIGIL_ADDR and VIGIL_TOKEN, and leave out --addr and --token:");
            println!("        export VIGIL_ADDR={base} VIGIL_TOKEN={token}");
            if !on_path {
                println!("  (`cargo install --path crates/vigil` puts `vigil` on your PATH)");
            }
        }
        println!();
        println!(
            "Press Ctrl-C to stop (each node reports `stopping`, leaves the cluster, then closes)."
        );
        println!("Logs show warnings and errors only; VIGIL_LOG=info shows every change.");
    }
}

/// How to run this very binary from a shell: `vigil` when that is what PATH finds, its full path
/// otherwise (as with `cargo run`); and whether PATH finds it.
fn command_name() -> (String, bool) {
    let Ok(exe) = std::env::current_exe() else {
        return ("vigil".to_owned(), false);
    };
    let exe = exe.canonicalize().unwrap_or(exe);
    let on_path = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths)
            .filter_map(|dir| dir.join("vigil").canonicalize().ok())
            .next()
            .is_some_and(|found| found == exe)
    });
    if on_path {
        return ("vigil".to_owned(), true);
    }
    let shown = exe.display().to_string();
    if shown.contains(|c: char| c.is_whitespace() || c == '\'') {
        (format!("'{}'", shown.replace('\'', r"'\''")), false)
    } else {
        (shown, false)
    }
}
