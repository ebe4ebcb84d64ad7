//! The head servers of `vigil demo`: two `vigil fake-service` processes stand for the head
//! servers of a storage cluster, registered as instances of service `head-server` with TCP
//! checks, and beside each a `vigil elect` campaigns for it in the election `head-servers`
//! with policy `lowest-id` (`--preempt` with `vigil demo --preempt`). head_server_1 leads while
//! it is healthy; killing it hands leadership to head_server_2; started again, it takes
//! leadership back only with preemption.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::process::{Child, Command};

/// The election the head servers stand in.
pub const ELECTION: &str = "head-servers";
/// Their service.
pub const SERVICE: &str = "head-server";
/// How long a registration may wait for the demo cluster's first leader.
const REGISTER_WITHIN: Duration = Duration::from_secs(30);
/// How long a candidate may take to resign when the demo stops.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// One head server as started.
pub struct HeadServer {
    /// `head_server_N`.
    pub id: String,
    /// Where it listens.
    pub port: u16,
    /// Its fake service's PID.
    pub pid: Option<u32>,
    service: Child,
    candidate: Child,
}

/// The running head servers.
pub struct HeadServers(pub Vec<HeadServer>);

/// Starts head server `n` (from 1) on `port` beside the agent at `api`.
async fn start_one(
    exe: &PathBuf,
    n: usize,
    port: u16,
    api: SocketAddr,
    token: &str,
    preempt: bool,
) -> anyhow::Result<HeadServer> {
    let id = format!("head_server_{n}");
    let service = Command::new(exe)
        .args(["fake-service", "--port", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {id}"))?;
    let pid = service.id();
    register(api, token, &id, port).await?;
    let mut elect = Command::new(exe);
    elect
        .args(["elect", ELECTION, "--id", &id, "--policy", "lowest-id"])
        .args(["--instance", &format!("{SERVICE}/{id}"), "--ttl", "5s"])
        .args(["--addr", &format!("http://{api}"), "--token", token]);
    if preempt {
        elect.arg("--preempt");
    }
    // Its duty while it leads: here, only to be there.
    let candidate = elect
        .args(["--", "sleep", "infinity"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start the candidate of {id}"))?;
    Ok(HeadServer {
        id,
        port,
        pid,
        service,
        candidate,
    })
}

/// Registers head server `id` with a TCP check of its port, once the cluster has a leader.
async fn register(api: SocketAddr, token: &str, id: &str, port: u16) -> anyhow::Result<()> {
    let body = serde_json::json!({
        "name": SERVICE,
        "id": id,
        "address": "127.0.0.1",
        "port": port,
        "checks": [{"name": "tcp", "probe": format!("tcp://127.0.0.1:{port}"), "interval": "1s"}],
    });
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + REGISTER_WITHIN;
    loop {
        let answer = client
            .post(format!("http://{api}/v1/services"))
            .bearer_auth(token)
            .json(&body)
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        match answer {
            Ok(answer) if answer.status().is_success() => return Ok(()),
            Ok(_) | Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Ok(answer) => anyhow::bail!("registering {id}: {}", answer.status()),
            Err(e) => anyhow::bail!("registering {id}: {e}"),
        }
    }
}

/// Starts two head servers on `first_port` and the next, beside the first two agents of
/// `apis` (both beside the one agent of a one-node demo).
pub async fn start(
    first_port: u16,
    apis: &[SocketAddr],
    token: &str,
    preempt: bool,
) -> anyhow::Result<HeadServers> {
    anyhow::ensure!(
        !apis.is_empty(),
        "no agent to register the head servers with"
    );
    let exe = std::env::current_exe().context("cannot find the vigil binary")?;
    let mut servers = Vec::new();
    for n in 1..=2usize {
        let port = first_port
            .checked_add(u16::try_from(n - 1).unwrap_or(0))
            .context("--head-port too high")?;
        let api = apis[(n - 1) % apis.len()];
        servers.push(start_one(&exe, n, port, api, token, preempt).await?);
    }
    Ok(HeadServers(servers))
}

impl HeadServers {
    /// Stops the candidates (each resigns and stops its duty) and the services.
    pub async fn stop(mut self) {
        for server in &mut self.0 {
            vigil_up::process::stop_process(&mut server.candidate, STOP_GRACE).await;
            let _ = server.service.start_kill();
        }
    }
}
