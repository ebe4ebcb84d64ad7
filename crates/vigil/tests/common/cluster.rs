//! Test clusters and what their API says about them: the `[cluster]` table of three voters
//! `a`, `b`, `c` on 127.0.0.1, readers of `/v1/members` and `/v1/services/{name}` bodies, and a
//! client of the `/v1/events` stream.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{free_port, Agent};

/// Gossip timings (keys of `[cluster]`) fast enough that a killed node is declared dead within
/// a test's patience.
pub const FAST_GOSSIP: &str = r#"
heartbeat_interval = "100ms"
phi_min_std_dev = "50ms"
probe_timeout = "200ms"
suspicion_min = "400ms"
suspicion_max = "2s"
gossip_interval = "50ms"
"#;

/// The ids of the three voters [`three_voters`] starts.
pub const ABC: [&str; 3] = ["a", "b", "c"];

/// The `[cluster]` table of a voter among `a`, `b`, `c`: gossip on `gossip`, joining through
/// the node gossiping on `seed`. Keys written after it still belong to `[cluster]`.
pub fn voter_table(gossip: u16, seed: u16) -> String {
    format!(
        "[cluster]\nbind = \"127.0.0.1:{gossip}\"\nseeds = [\"127.0.0.1:{seed}\"]\nrole = \"voter\"\nvoters = [\"a\", \"b\", \"c\"]\n"
    )
}

/// Starts voters `a`, `b` and `c` in turn, `a` gossiping on `seed` and the others joining
/// through it; `config(id, cluster)` is each one's config (see [`Agent::start`]), `cluster`
/// its [`voter_table`]. Returns once each API answers, not once they see one another.
pub fn three_voters(seed: u16, config: impl Fn(&str, &str) -> String) -> [Agent; 3] {
    ABC.map(|id| {
        let gossip = if id == ABC[0] { seed } else { free_port() };
        Agent::start(&config(id, &voter_table(gossip, seed)))
    })
}

/// The state (`alive`, `suspect`, `dead`, `left`) a `/v1/members` body gives member `id`.
pub fn member_state<'a>(members: &'a Value, id: &str) -> Option<&'a str> {
    members["members"]
        .as_array()?
        .iter()
        .find(|m| m["id"] == id)
        .and_then(|m| m["state"].as_str())
}

/// Every (id, state) of a `/v1/members` body, sorted.
pub fn member_states(members: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = members["members"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["id"].as_str().unwrap_or_default().to_owned(),
                m["state"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

/// How many members a `/v1/members` body lists alive.
pub fn alive_count(members: &Value) -> usize {
    members["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["state"] == "alive")
        .count()
}

/// The instance ids of a `/v1/services/{name}` answer: none for a 404 (no such service), None
/// for any other failure.
pub fn instance_ids(code: u16, body: &Value) -> Option<Vec<String>> {
    match code {
        200 => Some(
            body["instances"]
                .as_array()?
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_owned))
                .collect(),
        ),
        404 => Some(Vec::new()),
        _ => None,
    }
}

/// A client of `/v1/events` reading the stream as it comes.
pub struct EventStream {
    stream: TcpStream,
    /// Everything read so far.
    pub seen: String,
}

impl EventStream {
    /// Subscribes to the events of the agent whose API is on `addr`.
    pub fn open(addr: SocketAddr) -> Self {
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(stream, "GET /v1/events HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        EventStream {
            stream,
            seen: String::new(),
        }
    }

    /// Reads until `needle` has arrived, for at most `limit`.
    pub fn wait_for(&mut self, needle: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut buf = [0u8; 4096];
        while !self.seen.contains(needle) && Instant::now() < deadline {
            if let Ok(n) = self.stream.read(&mut buf) {
                self.seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
        self.seen.contains(needle)
    }
}
