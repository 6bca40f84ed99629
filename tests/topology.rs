//! Origin/edge topology across network stacks (issue 24): origins A and B and edges 1
//! and 2, each the mediarouter binary in a network namespace of its own on one
//! switched segment (a bridge in a fifth namespace; this process is the client, on a
//! sixth port of it). ffmpeg publishes `live/cam` to both origins; the edges pull on
//! demand from `source: [A, B]`.
//!
//! Checked: 40 readers on each edge (10 each of RTSP, RTMP, HTTP-FLV and HLS, the load
//! tool) get the stream without gaps while origin A serves exactly one session per
//! edge (its API); A killed, both edges are on B (time reported, bounded only to fail
//! on hangs), new readers play, and B serves one session per edge.

mod common;

use common::netns::{ip, Netns};
use common::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The segment: a bridge in its own namespace, one veth per node.
struct Segment {
    subnet: String,
    switch: Netns,
    /// This process's end, removed on drop (the rest goes with the namespaces).
    client_link: String,
}

impl Segment {
    /// `n` tells this test's segment from another's in the same process (names, subnet).
    fn new(n: u8) -> Option<Segment> {
        let pid = std::process::id();
        let switch = Netns::new(&format!("sw{n}"))?;
        assert!(ip(&[
            "-n", &switch.0, "link", "add", "br0", "type", "bridge"
        ]));
        assert!(ip(&["-n", &switch.0, "link", "set", "br0", "up"]));
        let s = Segment {
            subnet: format!("10.{}.{}", 232 + n, pid % 250),
            switch,
            client_link: format!("mrc{n}{}", pid % 100_000),
        };
        // This process's port: .1.
        s.plug(&s.client_link.clone(), None, 1);
        Some(s)
    }

    /// A veth from the bridge to `ns` (or to this namespace), with `<subnet>.<host>`.
    fn plug(&self, name: &str, ns: Option<&Netns>, host: u8) {
        let port = format!("{name}s");
        let sw = &self.switch.0;
        let cidr = format!("{}.{host}/24", self.subnet);
        assert!(ip(&[
            "link", "add", name, "type", "veth", "peer", "name", &port
        ]));
        assert!(ip(&["link", "set", &port, "netns", sw]));
        assert!(ip(&["-n", sw, "link", "set", &port, "master", "br0", "up"]));
        match ns {
            Some(ns) => {
                assert!(ip(&["link", "set", name, "netns", &ns.0]));
                assert!(ip(&["-n", &ns.0, "addr", "add", &cidr, "dev", name]));
                assert!(ip(&["-n", &ns.0, "link", "set", name, "up"]));
            }
            None => {
                assert!(ip(&["addr", "add", &cidr, "dev", name]));
                assert!(ip(&["link", "set", name, "up"]));
            }
        }
    }

    fn addr(&self, host: u8) -> String {
        format!("{}.{host}", self.subnet)
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        ip(&["link", "del", &self.client_link]);
    }
}

/// One mediarouter in its own namespace, on the default ports of that namespace.
struct Node {
    ns: Netns,
    host: u8,
    procs: Children,
}

impl Node {
    fn start(seg: &Segment, name: &str, host: u8, config: &str, dir: &std::path::Path) -> Node {
        let ns = Netns::new(name).expect("a namespace");
        seg.plug(
            &format!("mr{name}{}", std::process::id() % 10000),
            Some(&ns),
            host,
        );
        let cfg = dir.join(format!("{name}.yml"));
        std::fs::write(
            &cfg,
            // The API answers the client's address (MediaMTX's default allows loopback only).
            format!("api: yes\nwebrtc: no\nsrt: no\nreadTimeout: 3s\nrtspTransports: [tcp]\nauthInternalUsers:\n  - user: any\n    permissions: [{{action: publish}}, {{action: read}}, {{action: api}}]\n{config}"),
        )
        .unwrap();
        let mut cmd = ns.cmd(env!("CARGO_BIN_EXE_mediarouter"));
        cmd.arg(&cfg);
        let (child, log) = spawn_in(&mut cmd);
        listen_addr(&log, "API");
        Node {
            ns,
            host,
            procs: Children(vec![child]),
        }
    }

    fn publish(&mut self) {
        let mut cmd = self.ns.cmd("ffmpeg");
        cmd.args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
        ])
        .arg(clip(Clip::H264Aac, 6))
        .args(["-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp"])
        .arg("rtsp://127.0.0.1:8554/live/cam")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        self.procs.0.push(cmd.spawn().unwrap());
    }

    fn kill(&mut self) {
        for mut c in self.procs.0.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The path's API entry on the node at `addr`.
fn path(addr: &str) -> Option<serde_json::Value> {
    let api: std::net::SocketAddr = format!("{addr}:9997").parse().unwrap();
    let s = std::net::TcpStream::connect_timeout(&api, Duration::from_secs(2)).ok()?;
    drop(s);
    let (st, body) = common::http::get(api, "/v3/paths/get/live/cam");
    (st == 200).then(|| serde_json::from_slice(&body).ok())?
}

fn sessions_on(addr: &str) -> usize {
    path(addr).map_or(0, |p| p["readers"].as_array().map_or(0, |r| r.len()))
}

fn source_of(addr: &str) -> Option<String> {
    let p = path(addr)?;
    (p["ready"] == true).then(|| p["source"]["url"].as_str().map(str::to_string))?
}

fn load(url: &str, readers: u32, secs: u32, json: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_mediarouter-load"))
        .args([
            "-n",
            &readers.to_string(),
            "--warmup",
            "2",
            "-d",
            &secs.to_string(),
        ])
        .args(["--fps", "30", "--timeout", "20", "--json"])
        .arg(json)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn mediarouter-load")
}

fn summary(json: &std::path::Path) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
    v["summary"].clone()
}

#[test]
fn edges_cost_each_origin_one_session_and_fail_over() {
    if !have_ffmpeg() {
        return;
    }
    let Some(seg) = Segment::new(0) else { return };
    let dir = tempfile::tempdir().unwrap();
    let (a_ip, b_ip) = (seg.addr(11), seg.addr(12));
    let origin = "paths:\n  all_others:\n";
    let mut a = Node::start(&seg, "oa", 11, origin, dir.path());
    let mut b = Node::start(&seg, "ob", 12, origin, dir.path());
    a.publish();
    b.publish();
    let edge = format!(
        "hlsVariant: mpegts\nhlsSegmentDuration: 1s\npaths:\n  '~^(.+)$':\n    source: [rtsp://{a_ip}:8554/$G1, rtsp://{b_ip}:8554/$G1]\n    sourceOnDemand: yes\n    rtspTransport: tcp\n"
    );
    let e1 = Node::start(&seg, "e1", 21, &edge, dir.path());
    let e2 = Node::start(&seg, "e2", 22, &edge, dir.path());
    wait_until(
        Duration::from_secs(30),
        "both origins to have the stream",
        || {
            path(&a_ip).is_some_and(|p| p["ready"] == true)
                && path(&b_ip).is_some_and(|p| p["ready"] == true)
        },
    );

    // 40 readers on each edge, four protocols.
    let mut runs = Vec::new();
    for e in [&e1, &e2] {
        let ip = seg.addr(e.host);
        for (proto, url) in [
            ("rtsp", format!("rtsp://{ip}:8554/live/cam")),
            ("rtmp", format!("rtmp://{ip}:1935/live/cam")),
            ("flv", format!("http://{ip}:8888/live/cam.flv")),
            ("hls", format!("http://{ip}:8888/live/cam/index.m3u8")),
        ] {
            let json = dir.path().join(format!("{}-{proto}.json", e.host));
            runs.push((
                format!("edge {} {proto}", e.host),
                load(&url, 10, 8, &json),
                json,
            ));
        }
    }
    let mut peak_a = 0;
    let mut peak_b = 0;
    while runs
        .iter_mut()
        .any(|(_, c, _)| c.try_wait().ok().flatten().is_none())
    {
        peak_a = peak_a.max(sessions_on(&a_ip));
        peak_b = peak_b.max(sessions_on(&b_ip));
        std::thread::sleep(Duration::from_millis(500));
    }
    for (what, mut c, json) in runs {
        assert!(
            wait_child(&mut c, Duration::from_secs(5), &what).success(),
            "{what}"
        );
        let s = summary(&json);
        assert_eq!(s["connected"], 10, "{what}: {s}");
        assert_eq!(s["gaps_total"], 0, "{what}: {s}");
    }
    assert_eq!(peak_a, 2, "origin A's sessions with 80 edge readers");
    assert_eq!(peak_b, 0, "origin B is the second origin");

    // A goes: the edges move to B.
    let b_url = format!("rtsp://{b_ip}:8554/live/cam");
    let probe = |e: &Node, json: &std::path::Path| {
        load(
            &format!("rtsp://{}:8554/live/cam", seg.addr(e.host)),
            2,
            3,
            json,
        )
    };
    // Readers that keep the on-demand sources wanted through the failover.
    let keep: Vec<(Child, std::path::PathBuf)> = [&e1, &e2]
        .iter()
        .map(|e| {
            let json = dir.path().join(format!("{}-keep.json", e.host));
            let url = format!("http://{}:8888/live/cam/index.m3u8", seg.addr(e.host));
            (load(&url, 1, 20, &json), json)
        })
        .collect();
    wait_until(Duration::from_secs(20), "the edges' readers of A", || {
        sessions_on(&a_ip) == 2
    });
    let killed = Instant::now();
    a.kill();
    wait_until(Duration::from_secs(30), "both edges on origin B", || {
        [&e1, &e2]
            .iter()
            .all(|e| source_of(&seg.addr(e.host)).as_deref() == Some(&b_url))
    });
    let failover = killed.elapsed();
    for e in [&e1, &e2] {
        let json = dir.path().join(format!("{}-after.json", e.host));
        let mut c = probe(e, &json);
        assert!(wait_child(&mut c, Duration::from_secs(30), "readers after failover").success());
        assert_eq!(summary(&json)["connected"], 2);
    }
    assert_eq!(
        sessions_on(&b_ip),
        2,
        "origin B's sessions after the failover"
    );
    for (mut c, _) in keep {
        let _ = c.kill();
        let _ = c.wait();
    }
    eprintln!(
        "topology: 80 edge readers cost origin A {peak_a} sessions (B {peak_b}); A killed, both edges on B after {} ms",
        failover.as_millis()
    );
    drop((e1, e2, b));
}

/// The push variant: origin A pushes `live/cam` to both edges (RTMP), which serve it as
/// any published stream; the relays are origin A's two readers of it.
#[test]
fn an_origin_pushes_to_both_edges() {
    if !have_ffmpeg() {
        return;
    }
    let Some(seg) = Segment::new(1) else { return };
    let dir = tempfile::tempdir().unwrap();
    let (e1_ip, e2_ip) = (seg.addr(31), seg.addr(32));
    let e1 = Node::start(&seg, "p1", 31, "paths:\n  all_others:\n", dir.path());
    let e2 = Node::start(&seg, "p2", 32, "paths:\n  all_others:\n", dir.path());
    let mut a = Node::start(
        &seg,
        "pa",
        13,
        &format!(
            "paths:\n  live/cam:\n    push: [rtmp://{e1_ip}:1935/live/cam, rtmp://{e2_ip}:1935/live/cam]\n  all_others:\n"
        ),
        dir.path(),
    );
    a.publish();
    wait_until(
        Duration::from_secs(30),
        "both edges to have the pushed stream",
        || {
            [&e1_ip, &e2_ip]
                .iter()
                .all(|ip| path(ip).is_some_and(|p| p["ready"] == true))
        },
    );
    let mut runs = Vec::new();
    for ip in [&e1_ip, &e2_ip] {
        let json = dir.path().join(format!("{ip}.json"));
        runs.push((
            load(&format!("rtsp://{ip}:8554/live/cam"), 5, 3, &json),
            json,
        ));
    }
    for (mut c, json) in runs {
        assert!(wait_child(&mut c, Duration::from_secs(30), "edge readers").success());
        let s = summary(&json);
        assert_eq!(
            (s["connected"].clone(), s["gaps_total"].clone()),
            (5.into(), 0.into()),
            "{s}"
        );
    }
    assert_eq!(sessions_on(&seg.addr(13)), 2, "origin A's push relays");
    drop((e1, e2, a));
}
