//! The API on TLS, as its clients meet it: curl with `--cacert`, `vigil` with `--ca-cert` (or
//! `VIGIL_CACERT`), `vigil probe https://…`, Prometheus scraping `/metrics` with `tls_config`; a
//! client trusting another CA is refused, and so is one without a certificate when the agent asks
//! for one (mutual TLS). The probe endpoints stay on plain HTTP for kubelets where configured, and
//! only they. A reload serves a renewed certificate to new connections while an open one goes on.
//!
//! Without openssl or curl (or Prometheus, for its part) the tests are skipped, saying so, unless
//! `VIGIL_REQUIRE_TOOLS` is set.

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::certs::{certificates, Certificates};
use common::tools::tool;
use common::{free_port, get_json, http, spawn_agent, temp_file, wait_for, TOKEN, VIGIL};

/// The names in the agents' certificates: the address they serve on.
const NAMES: &str = "DNS:localhost,IP:127.0.0.1";

/// A running agent whose API is on TLS, with its probe endpoints on plain HTTP.
struct TlsAgent {
    child: Child,
    api: SocketAddr,
    probes: SocketAddr,
    config: std::path::PathBuf,
}

impl Drop for TlsAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config_text(api: SocketAddr, probes: SocketAddr, certs: &Certificates, mutual: bool) -> String {
    let client_ca = if mutual {
        format!("tls_client_ca = \"{}\"\n", certs.ca)
    } else {
        String::new()
    };
    format!(
        "[node]\nid = \"secure\"\n[api]\nbind = \"{api}\"\ntoken = \"{TOKEN}\"\n\
         tls_cert = \"{}\"\ntls_key = \"{}\"\n{client_ca}probe_bind = \"{probes}\"\n\
         [[checks]]\nname = \"job\"\nprobe = \"ttl\"\nttl = \"1h\"\n",
        certs.server, certs.server_key
    )
}

fn start(certs: &Certificates, mutual: bool) -> TlsAgent {
    let api: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let probes: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = temp_file(
        &format!("tls-{}.toml", api.port()),
        &config_text(api, probes, certs, mutual),
    );
    let workdir = config.with_extension("d");
    std::fs::create_dir_all(&workdir).unwrap();
    // Started once its plain probe listener answers.
    let child = spawn_agent(&config, &workdir, Stdio::null(), probes);
    TlsAgent {
        child,
        api,
        probes,
        config,
    }
}

/// curl's exit code and what it printed (the status code with `-w`).
fn curl(curl: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(curl)
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
        ])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn vigil(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(VIGIL)
        .args(args)
        .env_remove("VIGIL_CACERT")
        .env_remove("VIGIL_TOKEN")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn clients_reach_the_api_over_tls_with_the_right_ca_only() {
    let Some(curl_bin) = tool("curl", "Debian package `curl`") else {
        return;
    };
    let (Some(certs), Some(other)) = (
        certificates("tls-api", NAMES),
        certificates("tls-other", NAMES),
    ) else {
        return;
    };
    let agent = start(&certs, false);
    let base = format!("https://{}", agent.api);

    let (code, status) = curl(
        &curl_bin,
        &["--cacert", &certs.ca, &format!("{base}/health/live")],
    );
    assert_eq!((code, status.as_str()), (0, "200"));
    let (code, _) = curl(
        &curl_bin,
        &["--cacert", &other.ca, &format!("{base}/health/live")],
    );
    assert_ne!(code, 0, "a server certificate of another CA is refused");
    assert!(
        http(agent.api, "GET", "/health/live", None, "").map_or(true, |(code, _)| code != 200),
        "no plain HTTP on the TLS port"
    );

    // The CLI, with --ca-cert or VIGIL_CACERT; without, one line saying what failed.
    let (ok, out, err) = vigil(&["checks", "--addr", &base, "--ca-cert", &certs.ca], &[]);
    assert!(ok, "{err}");
    assert!(out.contains("job"), "{out}");
    let (ok, _, err) = vigil(&["checks", "--addr", &base], &[("VIGIL_CACERT", &certs.ca)]);
    assert!(ok, "{err}");
    let (ok, _, err) = vigil(&["checks", "--addr", &base], &[]);
    assert!(!ok);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let live = format!("{base}/health/live");
    let (ok, _, err) = vigil(&["probe", &live, "--ca-cert", &certs.ca], &[]);
    assert!(ok, "{err}");
    let (ok, _, _) = vigil(&["probe", &live, "--quiet"], &[]);
    assert!(!ok, "an unknown CA fails the probe");

    // The plain listener answers the probe endpoints and nothing else.
    let (code, _) = http(agent.probes, "GET", "/livez", None, "").unwrap();
    assert_eq!(code, 200);
    let (code, _) = http(agent.probes, "GET", "/health/ready", None, "").unwrap();
    assert_eq!(code, 503, "the TTL check has not reported yet");
    let (code, body) = http(agent.probes, "GET", "/v1/checks/job", None, "").unwrap();
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("\"error\""), "{body}");

    // A renewed certificate (here: from another CA) is served to new connections after a
    // reload, while a connection opened before goes on with the one it made.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let pem = std::fs::read(&certs.ca).unwrap();
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let get = |client: &reqwest::Client| {
        runtime.block_on(async {
            client
                .get(format!("{base}/health/live"))
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
    };
    assert_eq!(get(&client).unwrap(), 200);
    let renewed = std::fs::read_to_string(&agent.config)
        .unwrap()
        .replace(&certs.server, &other.server)
        .replace(&certs.server_key, &other.server_key);
    std::fs::write(&agent.config, renewed).unwrap();
    let (ok, out, err) = vigil(
        &[
            "reload",
            "--addr",
            &base,
            "--ca-cert",
            &certs.ca,
            "--token",
            TOKEN,
        ],
        &[],
    );
    assert!(ok, "{err}");
    assert!(out.contains("api.tls"), "{out}");
    assert_eq!(get(&client).unwrap(), 200, "the open connection goes on");
    let (code, _) = curl(&curl_bin, &["--cacert", &certs.ca, &live]);
    assert_ne!(code, 0, "new connections get the renewed certificate");
    let (code, status) = curl(&curl_bin, &["--cacert", &other.ca, &live]);
    assert_eq!((code, status.as_str()), (0, "200"));
}

#[test]
fn mutual_tls_refuses_a_client_without_a_certificate() {
    let Some(curl_bin) = tool("curl", "Debian package `curl`") else {
        return;
    };
    let Some(certs) = certificates("tls-mutual", NAMES) else {
        return;
    };
    let agent = start(&certs, true);
    let live = format!("https://{}/health/live", agent.api);
    let (code, _) = curl(&curl_bin, &["--cacert", &certs.ca, &live]);
    assert_ne!(code, 0, "no client certificate, no answer");
    let (code, status) = curl(
        &curl_bin,
        &[
            "--cacert",
            &certs.ca,
            "--cert",
            &certs.client,
            "--key",
            &certs.client_key,
            &live,
        ],
    );
    assert_eq!((code, status.as_str()), (0, "200"));
    let (ok, _, err) = vigil(
        &[
            "probe",
            &live,
            "--ca-cert",
            &certs.ca,
            "--tls-client-cert",
            &certs.client,
            "--tls-client-key",
            &certs.client_key,
        ],
        &[],
    );
    assert!(ok, "{err}");
}

#[test]
fn prometheus_scrapes_metrics_over_tls() {
    let Some(prometheus) = tool("prometheus", "Debian package `prometheus`") else {
        return;
    };
    let Some(certs) = certificates("tls-prometheus", NAMES) else {
        return;
    };
    let agent = start(&certs, false);
    let web: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let dir = agent.config.with_extension("prometheus");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: vigil\n    \
             scheme: https\n    tls_config:\n      ca_file: {}\n    \
             static_configs:\n      - targets: [\"{}\"]\n",
            certs.ca, agent.api
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let mut server = Command::new(prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.listen-address={web}"))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let health = wait_for(Duration::from_secs(30), || {
        let (_, body) = get_json(web, "/api/v1/targets?state=active")?;
        let target = &body["data"]["activeTargets"][0];
        (target["health"] == "up").then(|| target.clone())
    });
    let _ = server.kill();
    let _ = server.wait();
    let target = health.unwrap_or_else(|| {
        panic!(
            "Prometheus scrapes vigil over TLS: {}",
            std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
        )
    });
    assert_eq!(
        target["scrapeUrl"],
        format!("https://{}/metrics", agent.api)
    );
}
