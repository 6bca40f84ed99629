//! The Dockerfile (issue 24), without a registry: `dockerfile-utils lint` (npm, in
//! tests/browser's packages) finds nothing, the image runs as a non-root user, takes
//! its config where the binary looks for it, and exposes the default config's ports.
//! `scripts/container-check.sh` runs the runtime stage's Debian packages with the
//! binary (mmdebstrap, root); the build stage needs the `rust` image, which no
//! registry here serves.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

fn dockerfile() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile")).unwrap()
}

#[test]
fn the_dockerfile_lints_clean() {
    let lint = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/browser/node_modules/.bin/dockerfile-utils");
    if !present(
        lint.exists(),
        "dockerfile-utils is missing (npm ci in tests/browser)",
        "skipping: run npm ci in tests/browser for dockerfile-utils",
    ) {
        return;
    }
    let out = Command::new(&lint)
        .args(["lint", "Dockerfile"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.trim().is_empty(), "{text}");
}

#[test]
fn the_image_runs_unprivileged_with_the_default_config_and_its_ports() {
    let d = dockerfile();
    let runtime = d.split("AS runtime").nth(1).expect("a runtime stage");
    let user = runtime
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER");
    assert!(
        !user.starts_with("0") && !user.starts_with("root"),
        "{user}"
    );
    assert!(runtime.contains("COPY mediarouter.yml /etc/mediarouter/mediarouter.yml"));
    assert!(runtime.contains("CMD [\"/etc/mediarouter/mediarouter.yml\"]"));
    let exposed: Vec<String> = runtime
        .lines()
        .filter_map(|l| l.strip_prefix("EXPOSE "))
        .flat_map(|l| l.split_whitespace().map(str::to_string))
        .collect();
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("mediarouter.yml"))
            .unwrap();
    let c = mediarouter::config::Config::parse(&text, "mediarouter.yml").unwrap();
    let want = [
        c.rtsp_address.0.port().to_string(),
        format!("{}/udp", c.rtp_address.0.port()),
        format!("{}/udp", c.rtcp_address.0.port()),
        c.rtmp_address.0.port().to_string(),
        c.hls_address.0.port().to_string(),
        c.webrtc_address.0.port().to_string(),
        format!(
            "{}/udp",
            c.webrtc_local_udp_address
                .0
                .expect("webrtcLocalUDPAddress")
                .port()
        ),
        format!("{}/udp", c.srt_address.0.port()),
        c.api_address.0.port().to_string(),
    ];
    for p in want {
        assert!(exposed.contains(&p), "EXPOSE lacks {p}: {exposed:?}");
    }
}
