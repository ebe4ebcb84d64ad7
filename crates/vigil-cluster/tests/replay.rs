//! Replayed traffic over real sockets: an attacker without the key records what a member of a keyed
//! cluster sends, and after the member dies replays it to the survivors. The replay must not keep
//! the dead member alive, over UDP nor over TCP.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinSet;
use tokio::time::Instant;
use vigil_cluster::{Cluster, ClusterConfig};
use vigil_gossip::crypto::{Key, Keyring};
use vigil_gossip::MemberState;

/// Datagrams recorded per source address.
type Datagrams = Arc<Mutex<HashMap<SocketAddr, Vec<Vec<u8>>>>>;
/// What clients wrote on each TCP connection relayed.
type Streams = Arc<Mutex<Vec<Vec<u8>>>>;

/// The most of one TCP stream the relay records.
const STREAM_RECORD: usize = 256 * 1024;

/// A man in the middle in front of one member: it listens on a port of its own (UDP and TCP), which
/// the member advertises as its address, forwards everything to the member's real port and records
/// what it forwards. It holds no key.
struct Relay {
    addr: SocketAddr,
    udp: Arc<UdpSocket>,
    tcp: TcpListener,
    datagrams: Datagrams,
    streams: Streams,
}

impl Relay {
    async fn bind() -> Relay {
        for _ in 0..16 {
            let udp = UdpSocket::bind("127.0.0.1:0")
                .await
                .expect("bind relay udp");
            let addr = udp.local_addr().expect("relay addr");
            if let Ok(tcp) = TcpListener::bind(addr).await {
                return Relay {
                    addr,
                    udp: Arc::new(udp),
                    tcp,
                    datagrams: Arc::default(),
                    streams: Arc::default(),
                };
            }
        }
        panic!("no port free for both UDP and TCP");
    }

    /// Forwards to `target` from now on, in tasks owned by `tasks`.
    fn run(self, target: SocketAddr, tasks: &mut JoinSet<()>) -> (Datagrams, Streams) {
        let (datagrams, streams) = (self.datagrams.clone(), self.streams.clone());
        let udp = self.udp;
        let recorded = self.datagrams;
        tasks.spawn(async move {
            // One upstream socket per source, so the member's answers find their way back.
            let mut upstreams: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
            let mut buf = vec![0u8; 64 * 1024];
            let mut answers = JoinSet::new();
            loop {
                let Ok((len, from)) = udp.recv_from(&mut buf).await else {
                    return;
                };
                let datagram = buf[..len].to_vec();
                if let Ok(mut recorded) = recorded.lock() {
                    recorded.entry(from).or_default().push(datagram.clone());
                }
                let upstream = match upstreams.get(&from) {
                    Some(socket) => socket.clone(),
                    None => {
                        let socket =
                            Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind upstream"));
                        upstreams.insert(from, socket.clone());
                        let (back, reply_to) = (udp.clone(), from);
                        let socket_in = socket.clone();
                        answers.spawn(async move {
                            let mut buf = vec![0u8; 64 * 1024];
                            while let Ok((len, _)) = socket_in.recv_from(&mut buf).await {
                                let _ = back.send_to(&buf[..len], reply_to).await;
                            }
                        });
                        socket
                    }
                };
                let _ = upstream.send_to(&datagram, target).await;
            }
        });
        let listener = self.tcp;
        let recorded = self.streams;
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let recorded = recorded.clone();
                connections.spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    let upstream = async {
                        let mut seen = Vec::new();
                        let mut buf = vec![0u8; 16 * 1024];
                        while let Ok(len) = client_read.read(&mut buf).await {
                            if len == 0 || server_write.write_all(&buf[..len]).await.is_err() {
                                break;
                            }
                            if seen.len() < STREAM_RECORD {
                                seen.extend_from_slice(&buf[..len]);
                            }
                        }
                        let _ = server_write.shutdown().await;
                        if !seen.is_empty() {
                            if let Ok(mut recorded) = recorded.lock() {
                                recorded.push(seen);
                            }
                        }
                    };
                    let downstream = async {
                        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                        let _ = client_write.shutdown().await;
                    };
                    tokio::join!(upstream, downstream);
                });
            }
        });
        (datagrams, streams)
    }
}

fn keyed_config(id: &str, seeds: &[SocketAddr]) -> ClusterConfig {
    let mut config = config(id, seeds);
    config.keyring = Some(Keyring::new(Key::from_bytes([5; 32])));
    config
}

/// Sends `datagrams` to every target in turn, one every few milliseconds, until aborted.
async fn replay_datagrams(datagrams: Vec<Vec<u8>>, targets: Vec<SocketAddr>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind replayer");
    loop {
        for datagram in &datagrams {
            for target in &targets {
                let _ = socket.send_to(datagram, target).await;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// Writes each recorded TCP stream on a new connection to every target in turn, until aborted.
async fn replay_streams(streams: Vec<Vec<u8>>, targets: Vec<SocketAddr>) {
    loop {
        for stream in &streams {
            for target in &targets {
                if let Ok(Ok(mut connection)) =
                    tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(target)).await
                {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(1), connection.write_all(stream))
                            .await;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn dead_on(cluster: &Cluster, id: &str) -> bool {
    !matches!(
        state_of(&cluster.view(), id),
        Some(MemberState::Alive | MemberState::Suspect)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_traffic_never_delays_a_death() {
    let a = start(keyed_config("a", &[])).await;
    let relay = Relay::bind().await;
    let relay_addr = relay.addr;
    let mut b_config = keyed_config("b", &[a.local_addr()]);
    b_config.advertise = Some(relay_addr);
    let b = start(b_config).await;
    let mut tasks = JoinSet::new();
    let (datagrams, streams) = relay.run(b.local_addr(), &mut tasks);
    // The victim joins through b's relayed address: its push-pull with b is recorded too.
    let victim = start(keyed_config("victim", &[relay_addr])).await;
    let victim_addr = victim.local_addr();
    converge(&[&a, &b, &victim], &["a", "b", "victim"]).await;

    // Record a few seconds of the victim's traffic to b: heartbeats, gossip, probes, push-pulls.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let recorded = datagrams
            .lock()
            .map(|d| d.get(&victim_addr).map_or(0, Vec::len))
            .unwrap_or(0);
        let tcp = streams.lock().map(|s| s.len()).unwrap_or(0);
        if recorded >= 40 && tcp >= 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "relay recorded only {recorded} datagrams and {tcp} streams from the victim"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    victim.shutdown_now().await;
    let killed = Instant::now();
    let recorded_datagrams = datagrams
        .lock()
        .map(|d| d.get(&victim_addr).cloned().unwrap_or_default())
        .unwrap_or_default();
    let recorded_streams = streams.lock().map(|s| s.clone()).unwrap_or_default();
    let targets = vec![a.local_addr(), b.local_addr()];
    let mut replays = JoinSet::new();
    replays.spawn(replay_datagrams(
        recorded_datagrams.clone(),
        targets.clone(),
    ));
    replays.spawn(replay_streams(recorded_streams.clone(), targets));

    // Without a replay the victim is dead everywhere in about 1.5 s; the replay may add at most
    // the age a frame is accepted at (2 s), and this bound leaves room for a loaded machine.
    let bound = Duration::from_secs(10);
    let mut dead_after = [None, None];
    while dead_after.iter().any(Option::is_none) && killed.elapsed() < bound {
        for (survivor, at) in [&a, &b].into_iter().zip(dead_after.iter_mut()) {
            if at.is_none() && dead_on(survivor, "victim") {
                *at = Some(killed.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "replaying {} datagrams and {} TCP streams: victim dead on a after {:?}, on b after {:?}",
        recorded_datagrams.len(),
        recorded_streams.len(),
        dead_after[0],
        dead_after[1]
    );
    assert!(
        dead_after.iter().all(Option::is_some),
        "the replay kept the dead victim alive for {bound:?}: a {:?}, b {:?}",
        state_of(&a.view(), "victim"),
        state_of(&b.view(), "victim")
    );
    // The replay is still running: the victim stays dead.
    let watched = Instant::now() + Duration::from_secs(1);
    while Instant::now() < watched {
        assert!(dead_on(&a, "victim") && dead_on(&b, "victim"));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    replays.abort_all();
    tasks.abort_all();
}
