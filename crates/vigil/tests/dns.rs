//! DNS discovery across real `vigil agent` processes on 127.0.0.1, asked with `dig` over UDP
//! and TCP: three voters each answering DNS on a port of its own, and an `api` service whose
//! instances are `vigil fake-service` processes, killed by PID.

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::raft::{agreed_leader, three_voters_with, Node, SETTLE};
use common::tools::tool;
use common::{free_port, http, wait_for, TOKEN, VIGIL};

/// A `vigil fake-service` listening on 127.0.0.1:`port`.
struct Process(Option<Child>);

impl Process {
    fn start(port: u16) -> Process {
        let child = Command::new(VIGIL)
            .args(["fake-service", "--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Process(Some(child))
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `dig` pointed at one agent's DNS port.
struct Dig<'a> {
    dig: &'a Path,
    port: u16,
}

impl Dig<'_> {
    /// What dig prints for `args` after the server, port and a short timeout.
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new(self.dig)
            .args([
                "@127.0.0.1",
                "-p",
                &self.port.to_string(),
                "+time=2",
                "+tries=1",
            ])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The `+short` answer lines of `name` `qtype`, sorted; over TCP with `tcp`.
    fn short(&self, name: &str, qtype: &str, tcp: bool) -> Vec<String> {
        let mut args = vec![name, qtype, "+short"];
        if tcp {
            args.push("+tcp");
        }
        let mut lines: Vec<String> = self
            .run(&args)
            .lines()
            .map(str::to_owned)
            .filter(|l| !l.is_empty() && !l.starts_with(";;"))
            .collect();
        lines.sort();
        lines
    }

    /// The response code dig reports (`NOERROR`, `NXDOMAIN`, …).
    fn status(&self, name: &str, qtype: &str) -> String {
        let text = self.run(&[name, qtype, "+noall", "+comments"]);
        text.split("status: ")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .unwrap_or_else(|| panic!("no status in dig's output:\n{text}"))
            .to_owned()
    }

    /// One section of dig's answer: `authority` or `additional`.
    fn section(&self, name: &str, qtype: &str, section: &str) -> String {
        self.run(&[name, qtype, "+noall", &format!("+{section}")])
    }
}

fn dig_path() -> Option<PathBuf> {
    tool("dig", "Debian package bind9-dnsutils")
}

/// The ports of SRV `+short` lines (`priority weight port target`), sorted.
fn srv_ports(lines: &[String]) -> Vec<u16> {
    let mut ports: Vec<u16> = lines
        .iter()
        .filter_map(|l| l.split_whitespace().nth(2)?.parse().ok())
        .collect();
    ports.sort();
    ports
}

/// Waits until `probe` gives `want` on every agent; panics with the last answers otherwise.
fn everywhere<T: PartialEq + std::fmt::Debug>(
    digs: &[Dig<'_>],
    what: &str,
    want: &T,
    probe: impl Fn(&Dig<'_>) -> T,
) {
    for dig in digs {
        wait_for(SETTLE, || (probe(dig) == *want).then_some(())).unwrap_or_else(|| {
            panic!(
                "{what}: the agent on DNS port {} answers {:?}, not {want:?}",
                dig.port,
                probe(dig)
            )
        });
    }
}

fn register(node: &Node, body: &str) {
    let (code, answer) = http(node.api, "POST", "/v1/services", Some(TOKEN), body).unwrap();
    assert_eq!(code, 201, "{answer}");
}

/// The IP addresses of the instances `GET /v1/services/api?healthy` lists on `node`.
fn healthy_ips(node: &Node) -> Vec<String> {
    let (_, body) = node.get("/v1/services/api?healthy").unwrap();
    let mut ips: Vec<String> = body["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["address"].as_str())
        .filter(|a| a.parse::<std::net::IpAddr>().is_ok())
        .map(str::to_owned)
        .collect();
    ips.sort();
    ips
}

#[test]
fn every_agent_answers_passing_instances_over_dns_and_drops_a_dead_one() {
    let Some(dig) = dig_path() else { return };
    let dns_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let (nodes, _, _) = three_voters_with("dns", |i| {
        format!("[dns]\nbind = \"127.0.0.1:{}\"\n", dns_ports[i])
    });
    agreed_leader(&nodes);
    let digs: Vec<Dig<'_>> = dns_ports
        .iter()
        .map(|&port| Dig { dig: &dig, port })
        .collect();

    // Two instances at addresses of their own (checked where their processes listen), and one
    // known by a host name, with no checks: always passing.
    let (p1, p2) = (free_port(), free_port());
    let mut api1 = Process::start(p1);
    let _api2 = Process::start(p2);
    register(
        &nodes[0],
        &format!(
            r#"{{"name": "api", "id": "a1", "address": "127.0.0.11", "port": {p1}, "tags": ["blue"],
                "checks": [{{"name": "tcp", "probe": "tcp://127.0.0.1:{p1}", "interval": "200ms"}}]}}"#
        ),
    );
    register(
        &nodes[1],
        &format!(
            r#"{{"name": "api", "id": "a2", "address": "127.0.0.12", "port": {p2},
                "checks": [{{"name": "tcp", "probe": "tcp://127.0.0.1:{p2}", "interval": "200ms"}}]}}"#
        ),
    );
    register(
        &nodes[2],
        r#"{"name": "api", "id": "a3", "address": "db.example", "port": 5432, "checks": []}"#,
    );

    let both = vec!["127.0.0.11".to_owned(), "127.0.0.12".to_owned()];
    for tcp in [false, true] {
        everywhere(&digs, "both instances pass", &both, |d| {
            d.short("api.service.vigil", "A", tcp)
        });
    }
    let all_ports = {
        let mut ports = vec![p1, p2, 5432];
        ports.sort();
        ports
    };
    for name in ["api.service.vigil", "_api._tcp.service.vigil"] {
        for tcp in [false, true] {
            everywhere(&digs, "SRV of all three", &all_ports, |d| {
                srv_ports(&d.short(name, "SRV", tcp))
            });
        }
    }
    // DNS answers what discovery over HTTP answers.
    for (node, dig) in nodes.iter().zip(&digs) {
        assert_eq!(
            healthy_ips(node),
            dig.short("api.service.vigil", "A", false)
        );
    }

    let d = &digs[0];
    // SRV targets: an address name that resolves, given in the additional section too, or the
    // instance's host name.
    let srv = d.short("api.service.vigil", "SRV", false);
    let a1 = srv.iter().find(|l| l.contains(&format!(" {p1} "))).unwrap();
    let target = a1.split_whitespace().nth(3).unwrap();
    assert_eq!(target, "7f00000b.addr.vigil.", "{srv:?}");
    assert_eq!(d.short(target, "A", false), ["127.0.0.11"]);
    let additional = d.section("api.service.vigil", "SRV", "additional");
    assert!(
        additional.contains("7f00000b.addr.vigil.") && additional.contains("127.0.0.11"),
        "{additional}"
    );
    assert!(
        srv.iter().any(|l| l.ends_with(" 5432 db.example.")),
        "{srv:?}"
    );
    // The host-named instance has no A record of its own.
    assert!(!d
        .short("api.service.vigil", "A", false)
        .iter()
        .any(|l| l.contains("example")));

    // Answers are shuffled: over 20 answers both orders show up.
    let firsts: BTreeSet<String> = (0..20)
        .map(|_| {
            d.run(&["api.service.vigil", "A", "+short"])
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(firsts.len(), 2, "{firsts:?}");

    // Tags, either way of writing them; names ignore case.
    assert_eq!(
        d.short("blue.api.service.vigil", "A", false),
        ["127.0.0.11"]
    );
    assert_eq!(
        srv_ports(&d.short("_api._blue.service.vigil", "SRV", false)),
        [p1]
    );
    assert_eq!(
        d.short("BLUE.Api.Service.VIGIL", "A", false),
        ["127.0.0.11"]
    );
    assert_eq!(d.status("red.api.service.vigil", "A"), "NOERROR");
    assert!(d.short("red.api.service.vigil", "A", false).is_empty());

    // Nodes: their gossip address.
    for id in ["v1", "v2", "v3"] {
        assert_eq!(
            d.short(&format!("{id}.node.vigil"), "A", true),
            ["127.0.0.1"]
        );
    }
    assert_eq!(d.status("nobody.node.vigil", "A"), "NXDOMAIN");

    // Unknown names under the domain: NXDOMAIN with the SOA; outside it: REFUSED.
    assert_eq!(d.status("nothing.service.vigil", "A"), "NXDOMAIN");
    let authority = d.section("nothing.service.vigil", "A", "authority");
    assert!(authority.contains("SOA"), "{authority}");
    assert_eq!(d.status("what.vigil", "A"), "NXDOMAIN");
    assert_eq!(d.status("example.com", "A"), "REFUSED");
    assert_eq!(d.status("vigil", "SOA"), "NOERROR");

    // Garbage does not stop the server, and an idle TCP connection is closed.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for junk in [
        &b""[..],
        b"\x00",
        b"0123456789abcdefghijklmnop",
        &[0xff; 600],
    ] {
        udp.send_to(junk, ("127.0.0.1", d.port)).unwrap();
    }
    let mut idle = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let opened = Instant::now();
    let read = idle.read(&mut [0u8; 16]);
    assert!(
        matches!(read, Ok(0) | Err(_)) && opened.elapsed() < Duration::from_secs(12),
        "an idle connection is closed within seconds: {read:?} after {:?}",
        opened.elapsed()
    );
    assert_eq!(d.short("api.service.vigil", "A", false), both);

    // One instance's process dies: it leaves the A and SRV answers of every agent.
    api1.kill();
    let rest = vec!["127.0.0.12".to_owned()];
    let rest_ports = {
        let mut ports = vec![p2, 5432];
        ports.sort();
        ports
    };
    for tcp in [false, true] {
        everywhere(&digs, "a1's process is dead (A)", &rest, |d| {
            d.short("api.service.vigil", "A", tcp)
        });
        everywhere(&digs, "a1's process is dead (SRV)", &rest_ports, |d| {
            srv_ports(&d.short("_api._tcp.service.vigil", "SRV", tcp))
        });
    }
    assert!(d.short("blue.api.service.vigil", "A", false).is_empty());
    for (node, dig) in nodes.iter().zip(&digs) {
        assert_eq!(
            healthy_ips(node),
            dig.short("api.service.vigil", "A", false)
        );
    }
    let (_, body) = nodes[0].get("/v1/services/api").unwrap();
    assert_eq!(
        body["instances"].as_array().map(Vec::len),
        Some(3),
        "a1 is still registered: {body}"
    );
}
