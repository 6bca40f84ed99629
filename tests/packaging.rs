//! The packaging files (packaging/): the systemd unit passes `systemd-analyze verify`
//! against the built binary, the man page renders without warnings and documents every
//! option, the Homebrew formula parses and has the lines scripts/package.sh rewrites,
//! and the .deb/.rpm metadata only names files that exist.

mod common;

use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const BIN: &str = env!("CARGO_BIN_EXE_mediarouter");

fn tool(name: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    common::present(
        found,
        &format!("{name} is missing (CI=true)"),
        &format!("skipping: no {name}"),
    )
}

/// Runs `cmd`; it must succeed.
fn run_ok(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd:?}: {err}");
    out
}

#[test]
fn the_systemd_unit_verifies() {
    if !tool("systemd-analyze") {
        return;
    }
    let unit =
        std::fs::read_to_string(Path::new(ROOT).join("packaging/systemd/mediarouter.service"))
            .unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/mediarouter /etc/mediarouter/mediarouter.yml\n"));
    assert!(unit.contains("ExecReload=/bin/kill -HUP $MAINPID\n"));
    // The same unit, pointed at the binary this build made.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mediarouter.service");
    std::fs::write(&path, unit.replace("/usr/bin/mediarouter", BIN)).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    // Users other than root exist only where the package made them.
    let said: Vec<&str> = said
        .lines()
        .filter(|l| !l.contains("Failed to resolve user") && !l.trim().is_empty())
        .collect();
    assert!(said.is_empty(), "{said:?}");
}

#[test]
fn the_man_page_renders_and_documents_every_option() {
    if !tool("groff") {
        return;
    }
    let page = Path::new(ROOT).join("packaging/mediarouter.1");
    let out = run_ok(
        Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(&page),
    );
    // Warnings (-ww) go to stderr without failing groff.
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&page).unwrap();
    let usage = Command::new(BIN).arg("--help").output().unwrap();
    let usage = String::from_utf8_lossy(&usage.stdout);
    for option in usage.split_whitespace().filter(|w| w.starts_with("--")) {
        let escaped = option.replace('-', "\\-");
        assert!(text.contains(&escaped), "{option} is not in the man page");
    }
    let version = format!("\"mediarouter {}\"", env!("CARGO_PKG_VERSION"));
    assert!(text.contains(&version), "the man page isn't for {version}");
}

#[test]
fn the_homebrew_formula_parses_and_has_what_package_sh_rewrites() {
    if !tool("ruby") {
        return;
    }
    let formula = Path::new(ROOT).join("packaging/homebrew/mediarouter.rb");
    run_ok(Command::new("ruby").arg("-c").arg(&formula));
    let text = std::fs::read_to_string(&formula).unwrap();
    for key in ["  url \"", "  sha256 \""] {
        assert_eq!(
            text.lines().filter(|l| l.starts_with(key)).count(),
            1,
            "{key}"
        );
    }
    let version = format!("/v{0}/mediarouter-{0}.tar.gz\"", env!("CARGO_PKG_VERSION"));
    assert!(
        text.contains(&version),
        "the formula's url isn't for this version"
    );
    assert!(text.contains("\"--features\", \"transcode\""));
    assert!(text.contains("--check #{etc}/mediarouter/mediarouter.yml"));
}

#[test]
fn package_metadata_names_files_that_exist() {
    let read = |f: &str| std::fs::read_to_string(Path::new(ROOT).join(f)).unwrap();
    let toml = read("Cargo.toml");
    let meta = &toml[toml.find("[package.metadata.deb]").expect("deb metadata")..];
    // Files the packages take from the tree; target/… ones are built by package.sh.
    let from_deb = meta
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| !["target/", "usr/", "etc/"].iter().any(|p| s.starts_with(p)))
        .filter(|s| s.contains('/') || s.contains('.'))
        .filter(|s| !s.starts_with('/') && !s.contains(' ') && !s.contains('@'));
    let spec = read("packaging/rpm/mediarouter.spec");
    let from_rpm = spec
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("%{_sourcedir}/"))
        .filter(|s| !s.starts_with("target/"));
    let files: Vec<&str> = from_deb.chain(from_rpm).collect();
    for f in &files {
        let p = Path::new(ROOT).join(f);
        assert!(
            p.exists(),
            "{f} is named in the package metadata but missing"
        );
    }
    assert!(files.len() >= 8, "only {files:?} found in the metadata");
    // Both changelogs start with this version.
    let version = env!("CARGO_PKG_VERSION");
    let head = format!("mediarouter ({version}-1)");
    let debian = read("packaging/debian/changelog");
    assert!(debian.starts_with(&head), "debian/changelog: not {head}");
    let entry = spec
        .split("%changelog\n")
        .nth(1)
        .and_then(|c| c.lines().next());
    let want = format!("> - {version}-1");
    assert!(
        entry.is_some_and(|l| l.ends_with(&want)),
        "the spec's %changelog: not {want}"
    );
}
