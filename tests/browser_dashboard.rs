//! The API's dashboard in headless Chromium: the table shows a path ffmpeg publishes
//! with a non-zero bitrate; the kick button disconnects that ffmpeg reader (the other
//! stays); a path added from the form becomes publishable; an invalid edit shows the
//! server's message inline. A screenshot goes to `target/test-artifacts/`. Then what
//! an open page costs the server: the CPU of the requests one page makes per second.

mod common;

use common::*;
use std::path::Path;
use std::time::Duration;

/// CPU seconds (user + system) this process has used.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

#[test]
fn dashboard_shows_kicks_and_adds_in_chromium() {
    if !have_ffmpeg() || !have_browser(&[]) {
        return;
    }
    let srv = TestServer::start("paths:\n  live/cam:\n");
    let publisher = publish(&clip(Clip::H264Aac, 10), &srv.url("live/cam"), "tcp", true);
    srv.wait_stream("live/cam");
    let mut kicked = read_to_null(&srv.rtmp_url("live/cam"));
    let mut kept = read_to_null(&srv.url("live/cam"));
    wait_until(Duration::from_secs(20), "two readers", || {
        srv.readers("live/cam") == 2
    });
    let api = srv.server.api_addr().unwrap();
    let (_, list) = http::get(api, "/v3/rtmpconns/list");
    let list: serde_json::Value = serde_json::from_slice(&list).unwrap();
    let id = list["items"][0]["id"].as_str().unwrap().to_string();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    let shot = dir.join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    let (ok, out) = node(
        "dashboard.mjs",
        &[
            &format!("http://{api}/"),
            "live/cam",
            "rtmpconns",
            &id,
            "added",
            shot.to_str().unwrap(),
        ],
    );
    eprintln!("browser: {out}");
    assert!(ok, "{out}");
    assert!(out.contains("\"offsite\":[]"), "{out}");
    assert!(
        out.contains("maxReaders"),
        "the inline error names the key: {out}"
    );
    assert!(shot.exists(), "no screenshot");
    wait_child(
        &mut kicked,
        Duration::from_secs(10),
        "the kicked RTMP reader",
    );
    assert!(
        kept.try_wait().unwrap().is_none(),
        "the RTSP reader goes on"
    );
    // The added path takes a publisher; before, it was not configured.
    let second = publish(&clip(Clip::H264Aac, 10), &srv.url("added"), "tcp", true);
    srv.wait_stream("added");

    // What one open page costs: it asks for the path list every second, and for the
    // sessions of the path it shows (six lists).
    let routes = [
        "/v3/paths/list?itemsPerPage=1000",
        "/v3/rtspsessions/list?itemsPerPage=1000",
        "/v3/rtspssessions/list?itemsPerPage=1000",
        "/v3/rtmpconns/list?itemsPerPage=1000",
        "/v3/rtmpsconns/list?itemsPerPage=1000",
        "/v3/flvsessions/list?itemsPerPage=1000",
        "/v3/hlssessions/list?itemsPerPage=1000",
    ];
    let ticks = 200;
    let start = cpu_seconds();
    for _ in 0..ticks {
        for r in routes {
            assert_eq!(http::get(api, r).0, 200);
        }
    }
    let per_tick = (cpu_seconds() - start) / ticks as f64;
    eprintln!(
        "dashboard: {:.2} ms of CPU per page-second (server and test client, debug build)",
        per_tick * 1000.0
    );

    for mut c in [kept, publisher, second] {
        let _ = c.kill();
        let _ = c.wait();
    }
}
