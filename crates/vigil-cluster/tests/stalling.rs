//! Push-pull slots under attack over real sockets: connections that send nothing, reopened as
//! fast as they are closed, must not keep a new member from joining.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;
use vigil_gossip::crypto::{Key, Keyring};

/// Stalled connections the attacker keeps open at all times: more than the push-pull slots.
const STALLED: usize = 96;

/// Holds one connection to `target` from `source` open without sending a byte; when the node
/// closes it, opens another at once. Counts the connections made in `opened`.
async fn stall(source: SocketAddr, target: SocketAddr, opened: Arc<AtomicUsize>) {
    loop {
        let connected = async {
            let socket = TcpSocket::new_v4()?;
            socket.bind(source)?;
            socket.connect(target).await
        };
        let stream: std::io::Result<TcpStream> = connected.await;
        match stream {
            Ok(mut stream) => {
                opened.fetch_add(1, Ordering::Relaxed);
                let mut byte = [0u8; 1];
                let _ = stream.read(&mut byte).await;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_connections_do_not_keep_a_member_out() {
    let ring = Keyring::new(Key::from_bytes([6; 32]));
    let mut a_config = config("a", &[]);
    a_config.keyring = Some(ring.clone());
    let a = start(a_config).await;

    // From two hosts (loopback addresses) other than the newcomer's.
    let mut attackers = JoinSet::new();
    let opened = Arc::new(AtomicUsize::new(0));
    for i in 0..STALLED {
        let ip = if i % 2 == 0 {
            [127, 0, 0, 2]
        } else {
            [127, 0, 0, 3]
        };
        attackers.spawn(stall(
            SocketAddr::from((ip, 0)),
            a.local_addr(),
            opened.clone(),
        ));
    }
    // The attack fills every place before the newcomer arrives, and goes on reopening.
    let deadline = Instant::now() + PATIENCE;
    while opened.load(Ordering::Relaxed) < 2 * STALLED {
        assert!(
            Instant::now() < deadline,
            "the attack made only {} connections",
            opened.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let joining = Instant::now();
    let mut b_config = config("b", &[a.local_addr()]);
    b_config.keyring = Some(ring);
    let b = start(b_config).await;
    converge(&[&a, &b], &["a", "b"]).await;
    let joined = joining.elapsed();
    eprintln!("b joined after {joined:?} while {STALLED} connections stalled");
    // Without the attack a join takes a few milliseconds; seeds are redialled every 300 ms.
    assert!(
        joined < Duration::from_secs(5),
        "joining took {joined:?} while connections stalled"
    );
    attackers.abort_all();
}
