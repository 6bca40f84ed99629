//! HTTP webhooks: a receiver in the test gets path events with their fields; an
//! `allow: yes` webhook that refuses makes ffmpeg's RTSP and RTMP publish fail; a
//! receiver that hangs or is down delays no reader.

mod common;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use common::*;
use serde_json::Value;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Bodies = Arc<Mutex<Vec<Value>>>;

/// A webhook receiver on its own runtime: `/events` says 200, `/deny` 403, `/hang`
/// never answers.
struct Receiver {
    _rt: tokio::runtime::Runtime,
    addr: SocketAddr,
    bodies: Bodies,
}

impl Receiver {
    fn start() -> Receiver {
        let bodies = Bodies::default();
        let app = axum::Router::new()
            .route("/events", post(events))
            .route("/deny", post(deny))
            .route("/hang", post(hang))
            .with_state(bodies.clone());
        let (rt, addr) = http::serve(app);
        Receiver {
            _rt: rt,
            addr,
            bodies,
        }
    }

    /// Waits for an event of `path` named `event` and returns it.
    fn wait(&self, path: &str, event: &str) -> Value {
        let mut found = None;
        wait_until(
            Duration::from_secs(20),
            &format!("{event} of {path}"),
            || {
                let all = self.bodies.lock().unwrap();
                found = all
                    .iter()
                    .find(|b| b["path"] == path && b["event"] == event)
                    .cloned();
                found.is_some()
            },
        );
        found.unwrap_or_default()
    }
}

async fn events(State(b): State<Bodies>, axum::Json(v): axum::Json<Value>) -> StatusCode {
    b.lock().unwrap().push(v);
    StatusCode::OK
}

async fn deny(State(b): State<Bodies>, axum::Json(v): axum::Json<Value>) -> StatusCode {
    b.lock().unwrap().push(v);
    StatusCode::FORBIDDEN
}

async fn hang(State(b): State<Bodies>, axum::Json(v): axum::Json<Value>) -> StatusCode {
    b.lock().unwrap().push(v);
    tokio::time::sleep(Duration::from_secs(120)).await;
    StatusCode::OK
}

#[test]
fn events_reach_the_receiver_with_their_fields() {
    if !present(have_ffmpeg(), "ffmpeg missing", "skipping: no ffmpeg") {
        return;
    }
    let rx = Receiver::start();
    let srv = TestServer::start(&format!(
        "rtspTransports: [tcp]\npathDefaults:\n  webhooks: [{{url: http://{}/events}}]\npaths:\n  all_others:\n",
        rx.addr
    ));
    let clip = clip(Clip::H264Aac, 4);
    let url = srv.url("hooked");
    let mut publisher = publish(&clip, &url, "tcp", true);
    srv.wait_stream("hooked");

    let p = rx.wait("hooked", "publish");
    assert_eq!(p["protocol"], "rtsp", "{p}");
    assert_eq!(p["sourceType"], "rtspSession", "{p}");
    assert!(p["sourceId"].as_str().is_some_and(|s| !s.is_empty()), "{p}");
    assert!(
        p["peer"]
            .as_str()
            .is_some_and(|s| s.starts_with("127.0.0.1:")),
        "{p}"
    );
    assert!(p["time"].as_u64().is_some_and(|t| t > 0), "{p}");
    let r = rx.wait("hooked", "ready");
    assert_eq!(r["sourceId"], p["sourceId"], "{r}");

    read_a_second(&["-rtsp_transport", "tcp"], &url);
    let read = rx.wait("hooked", "read");
    assert_eq!(read["readerType"], "rtspSession", "{read}");
    let unread = rx.wait("hooked", "unread");
    assert_eq!(unread["readerId"], read["readerId"], "{unread}");

    let _ = publisher.kill();
    let _ = publisher.wait();
    rx.wait("hooked", "notReady");
    let u = rx.wait("hooked", "unpublish");
    assert_eq!(u["sourceId"], p["sourceId"], "{u}");

    // RTMP, with a query: what it says reaches the receiver, but not its credentials.
    let rtmp = format!(
        "{}?camera=front&pass=Secret-Pass",
        srv.rtmp_url("live/rtmp")
    );
    let mut publisher = publish_rtmp(&clip, &rtmp, true);
    srv.wait_stream("live/rtmp");
    let p = rx.wait("live/rtmp", "publish");
    assert_eq!(p["protocol"], "rtmp", "{p}");
    assert_eq!(p["sourceType"], "rtmpConn", "{p}");
    assert_eq!(p["query"], "camera=front", "{p}");
    let all = serde_json::to_string(&*rx.bodies.lock().unwrap()).unwrap();
    assert!(!all.contains("Secret-Pass"), "{all}");
    let _ = publisher.kill();
    let _ = publisher.wait();
}

/// A recorded path tells of each segment file: created, then complete with its length.
#[test]
fn recording_segments_are_told() {
    if !present(have_ffmpeg(), "ffmpeg missing", "skipping: no ffmpeg") {
        return;
    }
    let rx = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let srv = TestServer::start(&format!(
        "rtspTransports: [tcp]\npaths:\n  rec:\n    record: yes\n    recordPath: {}/%path/%s-%f\n    recordSegmentDuration: 1s\n\
         \x20   webhooks: [{{url: http://{}/events, events: [recordSegmentCreate, recordSegmentComplete]}}]\n",
        dir.path().display(),
        rx.addr
    ));
    let mut publisher = publish(&clip(Clip::H264Aac, 4), &srv.url("rec"), "tcp", false);
    let created = rx.wait("rec", "recordSegmentCreate");
    let file = created["segmentPath"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        file.starts_with(&dir.path().display().to_string()) && file.ends_with(".mp4"),
        "{created}"
    );
    assert!(std::path::Path::new(&file).exists(), "{created}");
    assert_eq!(created["readerType"], "recorder", "{created}");
    let complete = rx.wait("rec", "recordSegmentComplete");
    assert_eq!(complete["segmentPath"], file.as_str(), "{complete}");
    let secs = complete["segmentDuration"].as_f64().unwrap_or(0.0);
    assert!((0.9..=2.1).contains(&secs), "{complete}");
    wait_child(&mut publisher, Duration::from_secs(30), "publisher");
    // Only the events asked for.
    let others = rx
        .bodies
        .lock()
        .unwrap()
        .iter()
        .filter(|b| {
            b["path"] == "rec"
                && !b["event"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("recordSegment")
        })
        .count();
    assert_eq!(others, 0);
}

#[test]
fn a_webhook_that_refuses_publish_stops_rtsp_and_rtmp_publishers() {
    if !present(have_ffmpeg(), "ffmpeg missing", "skipping: no ffmpeg") {
        return;
    }
    let rx = Receiver::start();
    let srv = TestServer::start(&format!(
        "rtspTransports: [tcp]\npaths:\n  '~^denied':\n    webhooks:\n      - url: http://{}/deny\n        events: [publish]\n        allow: yes\n  all_others:\n",
        rx.addr
    ));
    let clip = clip(Clip::H264Aac, 2);
    for (url, what) in [
        (srv.url("denied/rtsp"), "rtsp"),
        (srv.rtmp_url("denied/rtmp"), "rtmp"),
    ] {
        let format = if what == "rtsp" { "rtsp" } else { "flv" };
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
            .arg(&clip)
            .args(["-c", "copy", "-f", format, &url]);
        let (ok, _, err) = output_within(&mut cmd, Duration::from_secs(30)).unwrap();
        assert!(!ok, "{what} publish went through a refusing webhook");
        eprintln!("{what} publisher refused: {}", err.trim());
        let p = rx.wait(&format!("denied/{what}"), "publish");
        assert_eq!(p["protocol"], what, "{p}");
        assert!(srv.stream(&format!("denied/{what}")).is_none());
    }
    let logged = logs().lines_with(
        "WARN",
        &["publish refused: webhook", "refused the Publish event"],
    );
    assert!(!logged.is_empty());
}

/// Seconds until an RTSP reader has its first video frame from `url`.
fn first_frame(url: &str) -> f64 {
    let start = Instant::now();
    let mut cmd = Command::new("ffmpeg");
    cmd.args([
        "-hide_banner",
        "-loglevel",
        "error",
        "-rtsp_transport",
        "tcp",
        "-i",
        url,
    ])
    .args(["-frames:v", "1", "-f", "null", "-"]);
    let (ok, _, err) = output_within(&mut cmd, Duration::from_secs(30)).unwrap();
    assert!(ok, "{url}: {err}");
    start.elapsed().as_secs_f64()
}

#[test]
fn a_hanging_or_down_receiver_delays_nothing() {
    if !present(have_ffmpeg(), "ffmpeg missing", "skipping: no ffmpeg") {
        return;
    }
    let rx = Receiver::start();
    let down = free_port();
    let srv = TestServer::start(&format!(
        "rtspTransports: [tcp]\npaths:\n  slow:\n    webhooks: [{{url: http://{}/hang}}, {{url: 'http://127.0.0.1:{down}/x'}}]\n  fast:\n",
        rx.addr
    ));
    let clip = clip(Clip::H264Aac, 4);
    let _pubs = Children(vec![
        publish(&clip, &srv.url("slow"), "tcp", true),
        publish(&clip, &srv.url("fast"), "tcp", true),
    ]);
    srv.wait_stream("slow");
    srv.wait_stream("fast");
    rx.wait("slow", "publish");
    // Interleaved, so both see the same machine load.
    let (mut slow, mut fast) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        slow.push(first_frame(&srv.url("slow")));
        fast.push(first_frame(&srv.url("fast")));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (s, f) = (median(&mut slow), median(&mut fast));
    eprintln!(
        "first frame with a hanging and a down webhook: {s:.3} s; without webhooks: {f:.3} s; ratio {:.2}",
        s / f
    );
}
