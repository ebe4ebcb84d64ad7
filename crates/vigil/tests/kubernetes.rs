//! The Kubernetes manifests of `deploy/kubernetes` as a cluster would take them: every resource
//! valid against the Kubernetes OpenAPI schemas (kubernetes-validate, strict, offline, pinned to
//! one Kubernetes version), each agent config file of the ConfigMap accepted by `vigil config
//! check` under the environment its pods give it, with the Secret's files where the pods mount
//! them, and what a user relies on: three voters named as the config's voters, probes on `/livez`
//! and `/readyz` at the API port, a disruption budget that keeps a Raft majority, the gossip
//! ports, a grace period that covers the drain. Without kubernetes-validate the test is skipped,
//! saying so.

#![allow(clippy::unwrap_used)] // a test that cannot set itself up should stop at once

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::skip::skip;
use common::VIGIL;
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

/// `{NAME}_SERVICE_HOST` of every Service that has a cluster IP, as a kubelet sets them for
/// pods started after it (headless Services get none); the addresses are made up.
fn service_environment(manifests: &Manifests) -> BTreeMap<String, String> {
    manifests
        .of_kind("Service")
        .into_iter()
        .filter(|s| s["spec"]["clusterIP"] != "None")
        .enumerate()
        .map(|(i, s)| {
            let name = s["metadata"]["name"].as_str().unwrap();
            let var = format!("{}_SERVICE_HOST", name.to_uppercase().replace('-', "_"));
            (var, format!("10.96.0.{}", 10 + i))
        })
        .collect()
}

/// Runs `vigil config check` on `config` as the pod would read it: with the environment
/// `env` alone, and the Secret's files (one per key, with values of their kind) where the
/// config reads them. Returns whether it passed, and what it printed.
fn config_check(
    name: &str,
    config: &str,
    secret_dir: &str,
    secret_keys: &[String],
    env: &BTreeMap<String, String>,
) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!(
        "vigil-kubernetes-{}/secret-{name}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let key = common::vigil(&["keygen"]);
    assert!(key.status.success());
    for file in secret_keys {
        let value = if file.ends_with(".keys") {
            String::from_utf8(key.stdout.clone()).unwrap()
        } else {
            "k8s-test-token-0123456789\n".to_owned()
        };
        std::fs::write(dir.join(file), value).unwrap();
    }
    let local = config.replace(secret_dir, &format!("{}/", dir.display()));
    let path = dir.with_file_name(format!("{name}.toml"));
    std::fs::write(&path, local).unwrap();
    let out = Command::new(VIGIL)
        .args(["config", "check", "-c"])
        .arg(&path)
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

    let secret = manifests.get("Secret", "vigil-secret");
    let secret_keys: Vec<String> = secret["stringData"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let services = service_environment(&manifests);

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
        let mut secret_dir = String::new();
        for file in [key_file, token_file] {
            let (volume, key) = mounted_at(pod, file.as_str().unwrap());
            assert_eq!(
                volume["secret"]["secretName"], "vigil-secret",
                "{role}: {file}"
            );
            assert!(secret_keys.contains(&key), "{role}: the Secret holds {key}");
            secret_dir = file
                .as_str()
                .unwrap()
                .strip_suffix(&key)
                .unwrap()
                .to_owned();
        }

        // SIGTERM drains, leaves and stops the servers within the grace period: up to 4 s go
        // to Raft, the gossip leave and the neighbours.
        let shutdown =
            |key: &str| duration(setting(&config, "shutdown", key).unwrap().as_str().unwrap());
        let grace = Duration::from_secs(pod["terminationGracePeriodSeconds"].as_u64().unwrap());
        assert!(
            shutdown("drain") + Duration::from_secs(4) + shutdown("timeout") < grace,
            "{role}: the grace period covers the drain"
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
        let (ok, printed) = config_check(role, &text, &secret_dir, &secret_keys, &env);
        assert!(
            ok,
            "{role}: vigil config check refused the config:\n{printed}"
        );

        // The check is not a formality: a key vigil does not know fails it.
        let misspelt = text.replacen("[cluster]\n", "[cluster]\nadvertize = \"x\"\n", 1);
        let (ok, printed) = config_check(role, &misspelt, &secret_dir, &secret_keys, &env);
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
    let _ = std::fs::remove_dir_all(
        std::env::temp_dir().join(format!("vigil-kubernetes-{}", std::process::id())),
    );
}
