//! Origin failover (issue 24): `source:` as a list of origins. Two origins (the
//! mediarouter binary, each with an ffmpeg publisher) and an edge (this process) that
//! pulls from the first. Origin A is killed (SIGKILL): the edge moves to B, a new RTSP
//! reader plays, the HLS reader that stayed gets new segments after a discontinuity on
//! the same playlist, and the API names the origin in use. A comes back: the edge stays
//! on B (a working origin is kept) until B is killed, then returns to A.

mod common;

use common::*;
use std::time::{Duration, Instant};

/// An origin: the server binary on its own RTSP port, and ffmpeg publishing `cam`.
struct Origin {
    port: u16,
    cfg: std::path::PathBuf,
    procs: Children,
}

impl Origin {
    fn start(dir: &std::path::Path, name: &str, port: u16) -> Origin {
        let cfg = dir.join(format!("{name}.yml"));
        std::fs::write(
            &cfg,
            format!(
                "rtspAddress: 127.0.0.1:{port}\nrtspTransports: [tcp]\nrtmp: no\nhls: no\nwebrtc: no\nsrt: no\napi: no\npaths:\n  all_others:\n"
            ),
        )
        .unwrap();
        let mut o = Origin {
            port,
            cfg,
            procs: Children(Vec::new()),
        };
        o.restart();
        o
    }

    /// (Re)starts the server and its publisher.
    fn restart(&mut self) {
        let (server, log) = spawn_server(&self.cfg);
        listen_addr(&log, "RTSP");
        let publisher = publish(&clip(Clip::H264Aac, 6), &self.url(), "tcp", true);
        self.procs = Children(vec![server, publisher]);
    }

    fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/cam", self.port)
    }

    fn kill(&mut self) {
        for mut c in self.procs.0.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn segments(http: std::net::SocketAddr) -> (Vec<String>, bool) {
    let (st, body) = common::http::get(http, "/cam/stream.m3u8");
    if st != 200 {
        return (Vec::new(), false);
    }
    let text = String::from_utf8_lossy(&body);
    let segs = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_string)
        .collect();
    (segs, text.contains("#EXT-X-DISCONTINUITY\n"))
}

/// The origin the API says the edge's source uses.
fn origin_in_use(srv: &TestServer) -> Option<String> {
    let api = srv.server.api_addr()?;
    let (st, body) = common::http::get(api, "/v3/paths/get/cam");
    if st != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
    (v["ready"] == true).then(|| v["source"]["url"].as_str().map(str::to_string))?
}

/// Frames from a new RTSP reader of the edge.
fn plays(srv: &TestServer) -> bool {
    let mut c = RawClient::connect(srv.addr);
    let d = c.request(
        "DESCRIBE",
        &srv.url("cam"),
        &[("Accept", "application/sdp")],
        b"",
    );
    if d.status != 200 {
        return false;
    }
    let mut c = RawClient::connect(srv.addr);
    c.play_tcp(&srv.url("cam"));
    !c.read_frames(Duration::from_secs(5)).is_empty()
}

#[test]
fn the_edge_moves_to_the_next_origin_and_back() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut a = Origin::start(dir.path(), "a", free_port());
    let mut b = Origin::start(dir.path(), "b", free_port());
    let srv = TestServer::start(&format!(
        "api: yes\nreadTimeout: 2s\nhlsVariant: mpegts\nhlsSegmentDuration: 1s\nhlsAlwaysRemux: yes\n\
         paths:\n  cam:\n    source: [{}, {}]\n    rtspTransport: tcp\n",
        a.url(),
        b.url()
    ));
    let http = srv.server.http_addr().unwrap();
    wait_until(Duration::from_secs(30), "the edge on origin A", || {
        origin_in_use(&srv).as_deref() == Some(&a.url())
    });
    wait_until(Duration::from_secs(30), "HLS segments from A", || {
        segments(http).0.len() >= 2
    });
    let mut reader = RawClient::connect(srv.addr);
    reader.play_tcp(&srv.url("cam"));
    let reader = Counter::spawn(reader);
    reader.wait_more(20, "frames from A");
    let before = segments(http).0;

    let killed = Instant::now();
    a.kill();
    wait_until(Duration::from_secs(30), "the edge on origin B", || {
        origin_in_use(&srv).as_deref() == Some(&b.url())
    });
    let failover = killed.elapsed();
    assert!(plays(&srv), "a new RTSP reader got nothing from B");
    wait_until(
        Duration::from_secs(5),
        "the reader of A to see the end",
        || reader.ended(),
    );
    // The HLS playlist went on: new segments after a discontinuity.
    let mut after = (Vec::new(), false);
    wait_until(Duration::from_secs(30), "HLS segments from B", || {
        after = segments(http);
        after.1 && !after.0.is_empty() && !before.contains(after.0.last().unwrap())
    });

    // A comes back: the edge keeps B while B works.
    a.restart();
    wait_until(Duration::from_secs(30), "origin A to publish again", || {
        let mut c = RawClient::connect(([127, 0, 0, 1], a.port).into());
        c.request("DESCRIBE", &a.url(), &[("Accept", "application/sdp")], b"")
            .status
            == 200
    });
    assert_eq!(origin_in_use(&srv), Some(b.url()), "left a working origin");
    // B goes: back to A.
    let killed = Instant::now();
    b.kill();
    wait_until(Duration::from_secs(30), "the edge back on origin A", || {
        origin_in_use(&srv).as_deref() == Some(&a.url())
    });
    let back = killed.elapsed();
    assert!(plays(&srv), "a new RTSP reader got nothing from A");
    eprintln!(
        "origin failover: A killed, the edge's stream was ready from B after {} ms; B killed, ready from A again after {} ms",
        failover.as_millis(),
        back.as_millis()
    );
}
