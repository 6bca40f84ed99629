//! The control API's path views: a published path, a pulled one, a failing source (its
//! error and retries, password hidden), an idle configured path, and a reader of each
//! kind listed under the path it reads.

mod common;

use common::*;
use serde_json::Value;
use std::net::TcpListener;
use std::time::Duration;

fn api(srv: &TestServer, path: &str) -> (u16, Value) {
    let (status, body) = http::get(srv.server.api_addr().unwrap(), path);
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{path}: {e}: {}", String::from_utf8_lossy(&body)));
    (status, json)
}

fn path(srv: &TestServer, name: &str) -> Value {
    let (status, v) = api(srv, &format!("/v3/paths/get/{name}"));
    assert_eq!(status, 200, "{name}: {v}");
    v
}

#[test]
fn paths_show_publishers_sources_and_readers() {
    if !have_ffmpeg() {
        return;
    }
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let srv = TestServer::start(&format!(
        "readTimeout: 2s\npaths:\n  idle:\n  broken:\n    source: rtsp://user:secret@127.0.0.1:{closed}/x\n  all_others:\n"
    ));
    let mut publisher = publish(&clip(Clip::H264Aac, 10), &srv.url("live/cam"), "tcp", true);
    srv.wait_stream("live/cam");
    // A second server pulls live/cam: it shows as an RTSP reader of live/cam here.
    let edge = TestServer::start(&format!(
        "paths:\n  pulled:\n    source: {}\n",
        srv.url("live/cam")
    ));
    edge.wait_stream("pulled");
    let mut flv = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-i",
            &srv.flv_url("live/cam"),
            "-f",
            "null",
            "-",
        ])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(20), "two readers of live/cam", || {
        srv.readers("live/cam") == 2
    });
    wait_until(
        Duration::from_secs(20),
        "the broken source to retry",
        || path(&srv, "broken")["source"]["failures"].as_u64() >= Some(2),
    );

    let (status, list) = api(&srv, "/v3/paths/list");
    assert_eq!(status, 200);
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["broken", "idle", "live/cam"], "{list}");
    assert_eq!(list["itemCount"], 3);
    assert_eq!(list["pageCount"], 1);
    let (_, page) = api(&srv, "/v3/paths/list?itemsPerPage=2&page=1");
    assert_eq!(page["pageCount"], 2);
    assert_eq!(page["items"][0]["name"], "live/cam");

    let cam = path(&srv, "live/cam");
    assert_eq!(cam["confName"], "all_others");
    assert_eq!(cam["ready"], true);
    assert!(cam["readyTime"].as_str().unwrap().ends_with('Z'), "{cam}");
    assert_eq!(cam["source"]["type"], "rtspSession");
    assert_eq!(cam["tracks"], serde_json::json!(["H264", "MPEG-4 Audio"]));
    let mut readers: Vec<&str> = cam["readers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    readers.sort();
    assert_eq!(readers, ["flvSession", "rtspSession"], "{cam}");

    let broken = path(&srv, "broken");
    assert_eq!(broken["ready"], false);
    assert_eq!(broken["readyTime"], Value::Null);
    assert_eq!(broken["source"]["type"], "rtspSource");
    assert_eq!(broken["source"]["state"], "retrying");
    let err = broken["source"]["error"].as_str().unwrap();
    assert!(err.contains("Connection refused"), "{err}");
    let url = broken["source"]["url"].as_str().unwrap();
    assert!(
        !url.contains("secret") && url.contains("127.0.0.1"),
        "{url}"
    );

    let idle = path(&srv, "idle");
    assert_eq!(idle["ready"], false);
    assert_eq!(idle["source"], Value::Null);
    assert_eq!(idle["readers"], serde_json::json!([]));

    let (_, pulled) = api(&edge, "/v3/paths/get/pulled");
    assert_eq!(pulled["source"]["type"], "rtspSource");
    assert_eq!(pulled["source"]["state"], "ready");
    assert_eq!(pulled["source"]["error"], Value::Null);
    assert_eq!(pulled["ready"], true);

    let (status, missing) = api(&srv, "/v3/paths/get/nope");
    assert_eq!(status, 404);
    assert_eq!(missing["error"], "path not found");
    let (status, _) = api(&srv, "/v3/nothing");
    assert_eq!(status, 404);

    let _ = flv.kill();
    let _ = flv.wait();
    let _ = publisher.kill();
    let _ = publisher.wait();
}
