//! `deploy/kubernetes/` (issue 24), offline: every manifest validates against the
//! Kubernetes schemas (`kubernetes-validate --strict`, from PyPI; `.ci/run` installs
//! it in `.ci/venv`), the probes name the API port and `/v3/health`, the ConfigMap is
//! mounted as a directory, and its `mediarouter.yml` runs the real binary through the
//! kubelet's update: the file is `..data/mediarouter.yml` behind a `..data` symlink
//! that an update points at a new timestamped directory. The server reloads the new
//! config by itself (no signal, no restart) and the probe answers.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn manifests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes")
}

fn validator() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/venv/bin/kubernetes-validate");
    let found = if venv.exists() {
        Some(venv)
    } else {
        Command::new("kubernetes-validate")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
            .then(|| PathBuf::from("kubernetes-validate"))
    };
    present(
        found.is_some(),
        "kubernetes-validate is missing (.ci/run installs it in .ci/venv)",
        "skipping: kubernetes-validate not installed (pip install -r deploy/kubernetes/requirements.txt)",
    )
    .then_some(found)
    .flatten()
}

fn yaml(file: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(manifests().join(file)).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn manifests_validate_against_the_kubernetes_schemas() {
    let Some(kv) = validator() else { return };
    let files: Vec<PathBuf> = std::fs::read_dir(manifests())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    assert!(files.len() >= 4, "{files:?}");
    let out = Command::new(kv)
        .arg("--strict")
        .args(&files)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert_eq!(
        text.matches(" passed for resource ").count(),
        files.len(),
        "{text}"
    );
}

#[test]
fn the_deployment_probes_the_api_and_mounts_the_config_as_a_directory() {
    let d = yaml("deployment.yaml");
    let pod = &d["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(c[probe]["httpGet"]["path"], "/v3/health", "{probe}");
        assert_eq!(c[probe]["httpGet"]["port"], "api", "{probe}");
    }
    let api = c["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "api")
        .expect("an api port");
    let cm = yaml("configmap.yaml");
    let config = mediarouter::config::Config::parse(
        cm["data"]["mediarouter.yml"].as_str().unwrap(),
        "configmap",
    )
    .expect("the ConfigMap's mediarouter.yml loads");
    assert!(config.api);
    assert_eq!(api["containerPort"], config.api_address.0.port());
    // A subPath mount never sees the kubelet's updates.
    let mount = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "config")
        .unwrap();
    assert!(mount.get("subPath").is_none(), "{mount}");
    assert_eq!(
        c["args"][0],
        format!("{}/mediarouter.yml", mount["mountPath"].as_str().unwrap())
    );
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
}

/// Lays a ConfigMap version out as the kubelet does: `..<stamp>/mediarouter.yml`,
/// `..data` → `..<stamp>` swapped by renaming a new link over it, the old version
/// removed, and `mediarouter.yml` → `..data/mediarouter.yml` made once.
fn kubelet_write(dir: &Path, stamp: &str, text: &str) {
    let version = dir.join(format!("..{stamp}"));
    std::fs::create_dir(&version).unwrap();
    std::fs::write(version.join("mediarouter.yml"), text).unwrap();
    let old = std::fs::read_link(dir.join("..data")).ok();
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(format!("..{stamp}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    if let Some(old) = old {
        std::fs::remove_dir_all(dir.join(old)).unwrap();
    }
    let user = dir.join("mediarouter.yml");
    if !user.exists() {
        std::os::unix::fs::symlink("..data/mediarouter.yml", &user).unwrap();
    }
}

#[test]
fn a_configmap_update_reloads_the_running_server() {
    let cm = yaml("configmap.yaml");
    let text = cm["data"]["mediarouter.yml"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let (rtsp, api, rtp) = (free_port(), free_port(), even_pair());
    kubelet_write(dir.path(), "2026_12_07_18_00_00.000000001", &text);
    // The pod's ports are taken here: the same file, on free loopback ports (the
    // environment overrides every listener it opens).
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mediarouter"));
    cmd.arg(dir.path().join("mediarouter.yml"))
        .env_remove("RUST_LOG")
        .env("MTX_RTSPADDRESS", format!("127.0.0.1:{rtsp}"))
        .env("MTX_RTPADDRESS", format!("127.0.0.1:{rtp}"))
        .env("MTX_RTCPADDRESS", format!("127.0.0.1:{}", rtp + 1))
        .env("MTX_RTMPADDRESS", format!("127.0.0.1:{}", free_port()))
        .env("MTX_HLSADDRESS", format!("127.0.0.1:{}", free_port()))
        .env("MTX_WEBRTCADDRESS", format!("127.0.0.1:{}", free_port()))
        .env(
            "MTX_WEBRTCLOCALUDPADDRESS",
            format!("127.0.0.1:{}", free_port()),
        )
        .env("MTX_SRTADDRESS", format!("127.0.0.1:{}", free_port()))
        .env("MTX_APIADDRESS", format!("127.0.0.1:{api}"))
        .env(
            "MTX_PATHDEFAULTS_RECORDPATH",
            format!("{}/rec/%path/%s", dir.path().display()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let (l, err) = (lines.clone(), child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            eprintln!("[mediarouter] {line}");
            l.lock().unwrap().push(line);
        }
    });
    let _server = Children(vec![child]);
    let api_addr: std::net::SocketAddr = ([127, 0, 0, 1], api).into();
    wait_until(Duration::from_secs(10), "the readiness probe", || {
        std::net::TcpStream::connect(api_addr).is_ok()
            && common::http::get(api_addr, "/v3/health").0 == 200
    });
    // kubectl apply: the same config with one more path.
    let n = lines.lock().unwrap().len();
    kubelet_write(
        dir.path(),
        "2026_12_07_18_05_00.000000002",
        &format!("{text}  cam:\n    maxReaders: 5\n"),
    );
    let mut reload = String::new();
    wait_until(
        Duration::from_secs(15),
        "the server to reload by itself",
        || {
            let l = lines.lock().unwrap();
            match l[n..].iter().find(|l| l.contains("reload: ")) {
                Some(line) => {
                    reload = line.clone();
                    true
                }
                None => false,
            }
        },
    );
    assert!(reload.contains("reload: +1 paths, -0, ~0"), "{reload}");
    assert!(!reload.contains("listeners restarted"), "{reload}");
    let (st, body) = common::http::get(api_addr, "/v3/health");
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
}
