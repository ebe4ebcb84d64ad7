//! The Kubernetes manifests of `deploy/kubernetes` as a cluster would take them: every resource
//! valid against the Kubernetes OpenAPI schemas (kubernetes-validate, strict, offline, pinned to
//! one Kubernetes version), each agent config file of the ConfigMap accepted by `vigil config
//! check` under the environment its pods give it, with the Secret's files where the pods mount
//! them, and what a user relies on: three voters named as the config's voters, probes on `/livez`
//! and `/readyz` at the API port, a disruption budget that keeps a Raft majority, the gossip
//! ports, a `preStop` pause and a grace period that covers it and the drain. Then the pods themselves, on loopback addresses
//! standing for pod and cluster IPs, with a TCP forwarder for each seed Service: three voters and a
//! member started as their specs say form one cluster with a leader, and the member drains on
//! SIGTERM (not ready, not live, still answering) and leaves within its grace period. Without
//! kubernetes-validate (which also brings the YAML reader) the tests are skipped, saying so.

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

mod common;

use std::collections::BTreeMap;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::cluster::{alive_count, member_state};
use common::skip::skip;
use common::{get_json, send_signal, wait_for, VIGIL};
use serde_json::Value;

/// The Kubernetes version whose schemas the manifests are held to.
const KUBERNETES: &str = "1.30.0";

/// Reads every YAML file given, validates each resource in it against the schemas of the
/// version given first (strict: an unknown field is an error), and prints the resources and
/// the errors as JSON. The kustomization is not a resource the API server takes: read, not
/// validated.
const VALIDATE: &str = r#"
import json, sys, yaml, kubernetes_validate
version, paths = sys.argv[1], sys.argv[2:]
out = {"documents": [], "errors": []}
for path in paths:
    with open(path) as f:
        for doc in yaml.safe_load_all(f):
            if doc is None:
                continue
            out["documents"].append({"file": path, "resource": doc})
            if doc.get("kind") == "Kustomization":
                continue
            where = "%s: %s/%s" % (path, doc.get("kind"), doc.get("metadata", {}).get("name"))
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                field = ".".join(str(p) for p in e.path)
                out["errors"].append("%s: %s: %s" % (where, field, e.message))
            except Exception as e:
                out["errors"].append("%s: %s" % (where, e))
json.dump(out, sys.stdout)
"#;

fn manifests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes")
}

/// Whether python3 can import kubernetes-validate; when not, the test is to be skipped (or with
/// `VIGIL_REQUIRE_TOOLS` set fails).
fn has_validator() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import kubernetes_validate, yaml"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        skip("kubernetes-validate for python3 (pip install kubernetes-validate)");
    }
    ok
}

/// The manifests, parsed and validated: every resource with the file it is in.
struct Manifests {
    documents: Vec<(String, Value)>,
}

impl Manifests {
    fn load() -> Manifests {
        let dir = manifests_dir();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        let out = Command::new("python3")
            .args(["-c", VALIDATE, KUBERNETES])
            .args(&files)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the validator failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let errors: Vec<&str> = report["errors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            errors.is_empty(),
            "resources that Kubernetes {KUBERNETES} does not accept:\n{}",
            errors.join("\n")
        );
        let documents = report["documents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                let file = Path::new(d["file"].as_str().unwrap());
                let name = file.file_name().unwrap().to_string_lossy().into_owned();
                (name, d["resource"].clone())
            })
            .collect();
        Manifests { documents }
    }

    /// The one resource of `kind` named `name`.
    fn get(&self, kind: &str, name: &str) -> &Value {
        let found: Vec<&Value> = self
            .documents
            .iter()
            .map(|(_, d)| d)
            .filter(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .collect();
        assert_eq!(found.len(), 1, "one {kind} named {name}");
        found[0]
    }

    fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.documents
            .iter()
            .map(|(_, d)| d)
            .filter(|d| d["kind"] == kind)
            .collect()
    }

    /// The ConfigMap file a pod (its spec) reads at `path`.
    fn mounted_config(&self, pod: &Value, path: &str) -> String {
        let (volume, key) = mounted_at(pod, path);
        let map = &volume["configMap"];
        assert!(map.is_object(), "{path} comes from a ConfigMap");
        let config_map = self.get("ConfigMap", map["name"].as_str().unwrap());
        config_map["data"][key.as_str()]
            .as_str()
            .unwrap_or_else(|| panic!("the ConfigMap has {key}, which the pod reads"))
            .to_owned()
    }
}

/// The volume of `pod` (a pod spec) mounted over `path` and the path inside it.
fn mounted_at<'a>(pod: &'a Value, path: &str) -> (&'a Value, String) {
    let container = &pod["containers"][0];
    for mount in container["volumeMounts"].as_array().unwrap() {
        let at = mount["mountPath"].as_str().unwrap();
        if let Some(rest) = path.strip_prefix(at).and_then(|r| r.strip_prefix('/')) {
            let volume = pod["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["name"] == mount["name"])
                .unwrap_or_else(|| panic!("the pod has the volume mounted at {at}"));
            return (volume, rest.to_owned());
        }
    }
    panic!("nothing is mounted where {path} is read");
}

/// The config file a container runs: the path after `-c`.
fn config_path(container: &Value) -> String {
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(args[0], "agent", "the container runs an agent");
    let at = args.iter().position(|a| *a == "-c").unwrap();
    args[at + 1].to_owned()
}

/// A `[section] key` of a config file, read as vigil does.
fn setting<'a>(config: &'a toml::Table, section: &str, key: &str) -> Option<&'a toml::Value> {
    config.get(section)?.as_table()?.get(key)
}

fn port_of(address: &str) -> u64 {
    address.rsplit_once(':').unwrap().1.parse().unwrap()
}

fn duration(text: &str) -> Duration {
    vigil_text::parse_duration(text).unwrap()
}

/// The container port named `port` (or numbered so) of `container`, with its protocol.
fn container_port(container: &Value, port: &Value) -> (u64, String) {
    let ports = container["ports"].as_array().unwrap();
    let found = ports
        .iter()
        .find(|p| p["name"] == *port || p["containerPort"] == *port)
        .unwrap_or_else(|| panic!("the container declares port {port}"));
    let protocol = found["protocol"].as_str().unwrap_or("TCP").to_owned();
    (found["containerPort"].as_u64().unwrap(), protocol)
}

/// The environment a kubelet gives `container`: `fields` answer `fieldRef`s, `$(NAME)` is
/// replaced by a variable defined before it or a Service's (`services`), and a reference to
/// anything else stays as written.
fn pod_environment(
    container: &Value,
    fields: &BTreeMap<&str, &str>,
    services: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut env = services.clone();
    for var in container["env"].as_array().unwrap() {
        let name = var["name"].as_str().unwrap().to_owned();
        let value = if let Some(field) = var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            fields
                .get(field)
                .unwrap_or_else(|| panic!("a value for the field {field}"))
                .to_string()
        } else {
            expand(var["value"].as_str().unwrap(), &env)
        };
        env.insert(name, value);
    }
    env
}

fn expand(text: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("$(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find(')') {
            Some(end) => {
                let name = &after[..end];
                match env.get(name) {
                    Some(value) => out.push_str(value),
                    None => out.push_str(&rest[start..start + 2 + end + 1]),
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The Services that have a cluster IP (headless ones have none), each with an address that
/// `address` makes up from its index.
fn cluster_ips(manifests: &Manifests, address: impl Fn(usize) -> String) -> Vec<(&Value, String)> {
    manifests
        .of_kind("Service")
        .into_iter()
        .filter(|s| s["spec"]["clusterIP"] != "None")
        .enumerate()
        .map(|(i, s)| (s, address(i)))
        .collect()
}

/// The variables a kubelet gives every pod started after these Services exist:
/// `{NAME}_SERVICE_HOST`, `{NAME}_SERVICE_PORT[_{PORT NAME}]`, `{NAME}_PORT[_{PORT}_{PROTO}…]`,
/// so that a name vigil reads among them would show.
fn service_environment(services: &[(&Value, String)]) -> BTreeMap<String, String> {
    let var = |name: &str| name.to_uppercase().replace('-', "_");
    let mut env = BTreeMap::new();
    for (service, ip) in services {
        let name = var(service["metadata"]["name"].as_str().unwrap());
        env.insert(format!("{name}_SERVICE_HOST"), ip.clone());
        for (i, port) in service["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            let number = port["port"].as_u64().unwrap();
            let proto = port["protocol"].as_str().unwrap_or("TCP");
            let url = format!("{}://{ip}:{number}", proto.to_lowercase());
            let base = format!("{name}_PORT_{number}_{proto}");
            if i == 0 {
                env.insert(format!("{name}_SERVICE_PORT"), number.to_string());
                env.insert(format!("{name}_PORT"), url.clone());
            }
            if let Some(port_name) = port["name"].as_str() {
                env.insert(
                    format!("{name}_SERVICE_PORT_{}", var(port_name)),
                    number.to_string(),
                );
            }
            env.insert(format!("{base}_PROTO"), proto.to_lowercase());
            env.insert(format!("{base}_PORT"), number.to_string());
            env.insert(format!("{base}_ADDR"), ip.clone());
            env.insert(base, url);
        }
    }
    env
}

/// The Secret's files as the tests give them, one per key of the template: a cluster key from
/// `vigil keygen` for the key file, a token for the rest; every pod gets the same.
fn secret_files(manifests: &Manifests) -> BTreeMap<String, String> {
    let key = common::vigil(&["keygen"]);
    assert!(key.status.success());
    let key = String::from_utf8(key.stdout).unwrap();
    let secret = manifests.get("Secret", "vigil-secret");
    secret["stringData"]
        .as_object()
        .unwrap()
        .keys()
        .map(|file| {
            let value = if file.ends_with(".keys") {
                key.clone()
            } else {
                "k8s-test-token-0123456789\n".to_owned()
            };
            (file.clone(), value)
        })
        .collect()
}

/// Where this test process keeps its files.
fn scratch_root() -> PathBuf {
    std::env::temp_dir().join(format!("vigil-kubernetes-{}", std::process::id()))
}

/// This test process's scratch folder `name`.
fn scratch(name: &str) -> PathBuf {
    let dir = scratch_root().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Removes a test's scratch folder `name`, and the process's once the other test's is gone too.
fn clean_up(name: &str) {
    let _ = std::fs::remove_dir_all(scratch_root().join(name));
    let _ = std::fs::remove_dir(scratch_root());
}

/// `text`, a config file of `pod` (a pod spec), written under `dir` as it reads on this
/// machine: each volume the container mounts but a ConfigMap is a folder under `dir` (the
/// Secret's holding `secret`), and the config's paths into them point there. Returns its path.
fn lay_out(text: &str, pod: &Value, secret: &BTreeMap<String, String>, dir: &Path) -> PathBuf {
    let mut local = text.to_owned();
    for mount in pod["containers"][0]["volumeMounts"].as_array().unwrap() {
        let name = mount["name"].as_str().unwrap();
        let volume = pod["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["name"] == name);
        if volume.is_some_and(|v| v["configMap"].is_object()) {
            continue;
        }
        let folder = dir.join(name);
        std::fs::create_dir_all(&folder).unwrap();
        if volume.is_some_and(|v| v["secret"]["secretName"] == "vigil-secret") {
            for (file, value) in secret {
                std::fs::write(folder.join(file), value).unwrap();
            }
        }
        local = local.replace(
            mount["mountPath"].as_str().unwrap(),
            folder.to_str().unwrap(),
        );
    }
    let path = dir.join("vigil.toml");
    std::fs::write(&path, local).unwrap();
    path
}

/// Runs `vigil config check` on the file at `path` with the environment `env` alone: whether
/// it passed, and what it printed.
fn config_check(path: &Path, env: &BTreeMap<String, String>) -> (bool, String) {
    let out = Command::new(VIGIL)
        .args(["config", "check", "-c"])
        .arg(path)
        .env_clear()
        .envs(env)
        .output()
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), printed)
}

#[test]
fn kubernetes_manifests_are_valid_and_run_the_agents_as_configured() {
    if !has_validator() {
        return;
    }
    let manifests = Manifests::load();

    // `kubectl apply -k` applies every manifest but the Secret's template.
    let kustomization = manifests
        .documents
        .iter()
        .find(|(_, d)| d["kind"] == "Kustomization")
        .map(|(_, d)| d)
        .expect("a kustomization.yaml");
    let listed: Vec<&str> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut files: Vec<&str> = manifests
        .documents
        .iter()
        .map(|(f, _)| f.as_str())
        .filter(|f| *f != "kustomization.yaml" && *f != "secret.example.yaml")
        .collect();
    files.dedup();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(sorted, files, "the kustomization lists every manifest");

    let secret = secret_files(&manifests);
    let services = service_environment(&cluster_ips(&manifests, |i| format!("10.96.0.{}", 10 + i)));

    let voters = manifests.get("StatefulSet", "vigil");
    assert_eq!(voters["spec"]["replicas"], 3, "three voters");
    assert_eq!(voters["spec"]["podManagementPolicy"], "Parallel");
    let headless = manifests.get("Service", voters["spec"]["serviceName"].as_str().unwrap());
    assert_eq!(headless["spec"]["clusterIP"], "None", "a headless Service");
    let pod_names: Vec<String> = (0..3).map(|i| format!("vigil-{i}")).collect();

    let budget = manifests.get("PodDisruptionBudget", "vigil-voters");
    assert_eq!(
        budget["spec"]["minAvailable"], 2,
        "two of three voters stay"
    );
    assert_eq!(
        budget["spec"]["selector"]["matchLabels"], voters["spec"]["selector"]["matchLabels"],
        "the budget counts the voters"
    );

    let members = manifests.get("DaemonSet", "vigil-member");
    let workloads = [
        ("voter", voters, "vigil-0", true),
        ("member", members, "vigil-member-x7k2p", false),
    ];
    for (role, workload, pod_name, runs_raft) in workloads {
        let pod = &workload["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        let config_file = config_path(container);
        let text = manifests.mounted_config(pod, &config_file);
        let config: toml::Table = text.parse().unwrap();

        // Probes: /livez to start and stay alive, /readyz for traffic, on the API's port.
        let api_port = port_of(setting(&config, "api", "bind").unwrap().as_str().unwrap());
        for (probe, path) in [
            ("startupProbe", "/livez"),
            ("livenessProbe", "/livez"),
            ("readinessProbe", "/readyz"),
        ] {
            let get = &container[probe]["httpGet"];
            assert_eq!(get["path"], path, "{role}: {probe}");
            let (port, _) = container_port(container, &get["port"]);
            assert_eq!(port, api_port, "{role}: {probe} asks the API port");
        }

        // Gossip on UDP and TCP, Raft on a voter.
        let gossip = port_of(
            setting(&config, "cluster", "bind")
                .unwrap()
                .as_str()
                .unwrap(),
        );
        for protocol in ["UDP", "TCP"] {
            let declared = container["ports"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["containerPort"] == gossip && p["protocol"] == protocol);
            assert!(declared, "{role}: gossip port {gossip}/{protocol}");
        }
        if runs_raft {
            let raft = port_of(
                setting(&config, "cluster", "raft_bind")
                    .unwrap()
                    .as_str()
                    .unwrap(),
            );
            let (port, protocol) = container_port(container, &Value::from("raft"));
            assert_eq!(
                (port, protocol.as_str()),
                (raft, "TCP"),
                "{role}: Raft port"
            );
            // The Raft data lives on the claimed volume.
            let data_dir = setting(&config, "cluster", "data_dir").unwrap();
            let mount = container["volumeMounts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["mountPath"] == data_dir.as_str().unwrap())
                .expect("a volume at the data_dir");
            let claimed = workload["spec"]["volumeClaimTemplates"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["metadata"]["name"] == mount["name"]);
            assert!(claimed, "the data_dir is a claimed volume");
        }

        // The voters are the StatefulSet's pods, by name.
        let configured: Vec<&str> = setting(&config, "cluster", "voters")
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .filter_map(toml::Value::as_str)
            .collect();
        assert_eq!(configured, pod_names, "{role}: voters");

        // The key and the token are read from the Secret's volume.
        let key_file = setting(&config, "cluster", "key_file").unwrap();
        let token_file = setting(&config, "api", "token_file").unwrap();
        for file in [key_file, token_file] {
            let (volume, key) = mounted_at(pod, file.as_str().unwrap());
            assert_eq!(
                volume["secret"]["secretName"], "vigil-secret",
                "{role}: {file}"
            );
            assert!(secret.contains_key(&key), "{role}: the Secret holds {key}");
        }

        // The preStop pause, then SIGTERM: the drain, the leave and the servers stopping, all
        // within the grace period; up to 4 s go to Raft, the gossip leave and the neighbours.
        let pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
            .as_u64()
            .unwrap_or_else(|| panic!("{role}: a preStop pause lets the endpoints go first"));
        assert!(pause > 0, "{role}");
        let shutdown =
            |key: &str| duration(setting(&config, "shutdown", key).unwrap().as_str().unwrap());
        let grace = Duration::from_secs(pod["terminationGracePeriodSeconds"].as_u64().unwrap());
        assert!(
            Duration::from_secs(pause)
                + shutdown("drain")
                + Duration::from_secs(4)
                + shutdown("timeout")
                < grace,
            "{role}: the grace period covers the pause and the drain"
        );

        let security = &container["securityContext"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{role}");
        assert_eq!(security["readOnlyRootFilesystem"], true, "{role}");
        assert_eq!(security["allowPrivilegeEscalation"], false, "{role}");
        assert_eq!(security["capabilities"]["drop"][0], "ALL", "{role}");

        // The agent accepts its config as the pod gives it, seeds and advertised address
        // included; a voter's node id is its pod name.
        let fields = BTreeMap::from([
            ("metadata.name", pod_name),
            ("spec.nodeName", "node-1"),
            ("status.podIP", "10.244.1.5"),
        ]);
        let env = pod_environment(container, &fields, &services);
        if runs_raft {
            assert_eq!(env["VIGIL_NODE_ID"], pod_name, "a voter's node id");
        }
        assert_eq!(env["VIGIL_CLUSTER_ADVERTISE"], "10.244.1.5:7946");
        let seeds = &env["VIGIL_CLUSTER_SEEDS"];
        assert_eq!(
            seeds.split(',').count(),
            3,
            "{role}: a seed per voter: {seeds}"
        );
        let path = lay_out(&text, pod, &secret, &scratch(&format!("check/{role}")));
        let (ok, printed) = config_check(&path, &env);
        assert!(
            ok,
            "{role}: vigil config check refused the config:\n{printed}"
        );

        // The check is not a formality: a key vigil does not know fails it.
        let misspelt = text.replacen("[cluster]\n", "[cluster]\nadvertize = \"x\"\n", 1);
        let path = lay_out(&misspelt, pod, &secret, &scratch(&format!("check/{role}")));
        let (ok, printed) = config_check(&path, &env);
        assert!(!ok && printed.contains("advertize"), "{role}: {printed}");
    }

    // Each seed Service reaches one voter pod, any of them ready or not.
    for (i, name) in pod_names.iter().enumerate() {
        let seed = manifests.get("Service", &format!("vigil-seed-{i}"));
        assert_eq!(
            seed["spec"]["selector"]["statefulset.kubernetes.io/pod-name"], *name,
            "vigil-seed-{i}"
        );
        assert_eq!(seed["spec"]["publishNotReadyAddresses"], true);
    }
    clean_up("check");
}

/// A TCP forwarder standing in for one port of a ClusterIP Service: every connection to
/// `listen` is carried to `target`, and one `target` refuses is closed, as kube-proxy does. The
/// count of connections carried.
fn forward(listen: SocketAddr, target: SocketAddr) -> Arc<AtomicUsize> {
    let listener = TcpListener::bind(listen).unwrap_or_else(|e| panic!("listen on {listen}: {e}"));
    let carried = Arc::new(AtomicUsize::new(0));
    let count = carried.clone();
    std::thread::spawn(move || {
        for inbound in listener.incoming().map_while(Result::ok) {
            let Ok(outbound) = TcpStream::connect(target) else {
                continue;
            };
            count.fetch_add(1, Ordering::SeqCst);
            let pipe = |mut from: TcpStream, mut to: TcpStream| {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(Shutdown::Write);
                });
            };
            pipe(inbound.try_clone().unwrap(), outbound.try_clone().unwrap());
            pipe(outbound, inbound);
        }
    });
    carried
}

/// An agent started as a pod of a workload would start it, killed when dropped.
struct Pod {
    api: SocketAddr,
    child: Child,
    log: PathBuf,
}

impl Pod {
    /// Starts pod `name` of `workload` at `ip`, a loopback address standing for its own network
    /// namespace (the config's `127.0.0.1` and wildcard binds become it), with the environment
    /// its spec builds over `services`; waits until its API answers `/livez`, as the startup
    /// probe does.
    fn start(
        manifests: &Manifests,
        workload: &Value,
        name: &str,
        ip: &str,
        services: &BTreeMap<String, String>,
        secret: &BTreeMap<String, String>,
    ) -> Pod {
        let pod = &workload["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        let text = manifests
            .mounted_config(pod, &config_path(container))
            .replace("127.0.0.1", ip)
            .replace("0.0.0.0", ip);
        let config: toml::Table = text.parse().unwrap();
        let api_port = port_of(setting(&config, "api", "bind").unwrap().as_str().unwrap());
        let api: SocketAddr = format!("{ip}:{api_port}").parse().unwrap();
        let dir = scratch(&format!("run/{name}"));
        let path = lay_out(&text, pod, secret, &dir);
        let fields = BTreeMap::from([
            ("metadata.name", name),
            ("spec.nodeName", "node-1"),
            ("status.podIP", ip),
        ]);
        let env = pod_environment(container, &fields, services);
        let log = dir.join("agent.log");
        let child = Command::new(VIGIL)
            .args(["agent", "-c"])
            .arg(&path)
            .env_clear()
            .envs(&env)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut pod = Pod { api, child, log };
        let started = wait_for(Duration::from_secs(20), || {
            if let Ok(Some(status)) = pod.child.try_wait() {
                panic!("{name} exited: {status}\n{}", pod.logs());
            }
            pod.get("/livez").filter(|(code, _)| *code == 200)
        });
        assert!(started.is_some(), "{name} answers /livez\n{}", pod.logs());
        pod
    }

    fn get(&self, path: &str) -> Option<(u16, Value)> {
        get_json(self.api, path)
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_pods_form_a_cluster_through_the_seed_services_and_drain_on_sigterm() {
    if !has_validator() {
        return;
    }
    let manifests = Manifests::load();
    let secret = secret_files(&manifests);
    // A loopback address of its own stands for each Service's cluster IP and each pod's IP.
    let services = cluster_ips(&manifests, |i| format!("127.77.0.{}", 10 + i));
    let voters = manifests.get("StatefulSet", "vigil");
    let members = manifests.get("DaemonSet", "vigil-member");
    let replicas = usize::try_from(voters["spec"]["replicas"].as_u64().unwrap()).unwrap();
    let voter_pods: Vec<(String, String)> = (0..replicas)
        .map(|i| (format!("vigil-{i}"), format!("127.77.1.{}", 1 + i)))
        .collect();

    // A seed Service carries TCP, and only TCP, to the one voter pod it selects.
    let voter_container = &voters["spec"]["template"]["spec"]["containers"][0];
    let mut carried = Vec::new();
    for (service, ip) in &services {
        let selected = &service["spec"]["selector"]["statefulset.kubernetes.io/pod-name"];
        let Some((_, pod_ip)) = voter_pods
            .iter()
            .find(|(name, _)| *selected == name.as_str())
        else {
            continue;
        };
        for port in service["spec"]["ports"].as_array().unwrap() {
            assert_eq!(port["protocol"], "TCP", "a seed Service carries TCP");
            let (target, _) = container_port(voter_container, &port["targetPort"]);
            carried.push(forward(
                format!("{ip}:{}", port["port"]).parse().unwrap(),
                format!("{pod_ip}:{target}").parse().unwrap(),
            ));
        }
    }
    assert_eq!(carried.len(), replicas, "a seed Service per voter");
    let services = service_environment(&services);

    let pods: Vec<Pod> = voter_pods
        .iter()
        .map(|(name, ip)| Pod::start(&manifests, voters, name, ip, &services, &secret))
        .collect();
    let mut member = Pod::start(
        &manifests,
        members,
        "vigil-member-x7k2p",
        "127.77.2.1",
        &services,
        &secret,
    );

    // Every agent joined through a seed Service, the voters agree on a leader with quorum, and
    // the member is ready.
    let formed = wait_for(Duration::from_secs(30), || {
        let (_, seen) = member.get("/v1/members")?;
        let leaders: Vec<Value> = pods
            .iter()
            .map(|p| p.get("/v1/leader").map(|(_, l)| l))
            .collect::<Option<_>>()?;
        let leader = leaders[0]["leader_id"].as_str()?;
        let agreed = leaders
            .iter()
            .all(|l| l["leader_id"] == leader && l["has_quorum"] == true);
        let ready = member.get("/readyz")?.0 == 200;
        (alive_count(&seen) == replicas + 1 && agreed && ready).then_some(())
    });
    assert!(
        formed.is_some(),
        "the pods form a cluster: the member sees {:?}, the voters' leaders {:?}\n{}",
        member.get("/v1/members"),
        pods.iter().map(|p| p.get("/v1/leader")).collect::<Vec<_>>(),
        member.logs()
    );
    let joins: usize = carried.iter().map(|c| c.load(Ordering::SeqCst)).sum();
    assert!(joins > 0, "the agents joined through the seed Services");

    // SIGTERM: at once not ready and not live while the API still answers (the pod leaves the
    // Services' endpoints during the drain), then an exit within the grace period, seen by the
    // others as leaving.
    send_signal(member.child.id(), "-TERM");
    let draining = wait_for(Duration::from_secs(5), || {
        let ready = member.get("/readyz")?.0;
        let live = member.get("/livez")?.0;
        (ready == 503 && live == 503).then_some(())
    });
    assert!(draining.is_some(), "the member drains:\n{}", member.logs());
    let grace = members["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .unwrap();
    let exited = wait_for(Duration::from_secs(grace), || {
        member.child.try_wait().unwrap()
    });
    assert!(
        exited.is_some_and(|status| status.success()),
        "the member exits cleanly within {grace} s: {exited:?}\n{}",
        member.logs()
    );
    let left = wait_for(Duration::from_secs(10), || {
        let (_, seen) = pods[0].get("/v1/members")?;
        (member_state(&seen, "node-1") == Some("left")).then_some(())
    });
    assert!(left.is_some(), "the voters see the member leave");
    drop(pods);
    clean_up("run");
}
