//! Faults (issue 23): a pulled RTSP source behind a link that goes down for 10 s and
//! comes back. The origin (the mediarouter binary and an ffmpeg publisher) runs in a
//! network namespace of the test's own, reached over a veth pair; the edge is this
//! process. Checked: the edge's source fails within `readTimeout`, its RTSP reader sees
//! the end, the source reconnects once the link is back (time reported, bounded only to
//! fail on hangs), a new RTSP reader plays, and an HLS reader that stayed gets new
//! segments after an `EXT-X-DISCONTINUITY` on the same playlist.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A namespace joined to this one by a veth pair; both removed on drop.
struct Link {
    ns: String,
    host_if: String,
    ns_if: String,
    host_ip: String,
    ns_ip: String,
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Link {
    fn new() -> Option<Link> {
        let pid = std::process::id();
        let ns = format!("mr-link-{pid}");
        let ok = ip(&["netns", "add", &ns]);
        if !present(
            ok,
            "fault tests need `ip netns` (iproute2, root)",
            "skipping: can't create a network namespace (needs root and iproute2)",
        ) {
            return None;
        }
        let subnet = format!("10.231.{}", pid % 250);
        let link = Link {
            ns: ns.clone(),
            host_if: format!("mrh{pid}"),
            ns_if: format!("mrn{pid}"),
            host_ip: format!("{subnet}.1"),
            ns_ip: format!("{subnet}.2"),
        };
        let peer = link.ns_if.clone();
        let net = format!("{subnet}.0/30");
        let host_cidr = format!("{}/30", link.host_ip);
        let ns_cidr = format!("{}/30", link.ns_ip);
        for args in [
            &[
                "link",
                "add",
                &link.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &peer,
            ][..],
            &["link", "set", &peer, "netns", &ns],
            &["addr", "add", &host_cidr, "dev", &link.host_if],
            &["link", "set", &link.host_if, "up"],
            &["-n", &ns, "addr", "add", &ns_cidr, "dev", &peer],
            &["-n", &ns, "link", "set", &peer, "up"],
            &["-n", &ns, "link", "set", "lo", "up"],
            // While the link is down, its addresses must not fall through to the
            // default route and leave the machine.
            &["route", "add", "blackhole", &net, "metric", "4000"],
        ] {
            assert!(ip(args), "ip {args:?}");
        }
        Some(link)
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, program]);
        c.stdin(Stdio::null());
        c
    }

    /// The origin's end of the cable: the edge's route stays, packets go nowhere.
    fn set(&self, up: bool) {
        let state = if up { "up" } else { "down" };
        assert!(
            ip(&["-n", &self.ns, "link", "set", &self.ns_if, state]),
            "link {state}"
        );
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        ip(&[
            "route",
            "del",
            "blackhole",
            &format!("{}.0/30", self.host_ip.trim_end_matches(".1")),
            "metric",
            "4000",
        ]);
        ip(&["link", "del", &self.host_if]);
        ip(&["netns", "del", &self.ns]);
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
        "rtspAddress: :8554\nrtspTransports: [tcp]\nrtmp: no\nhls: no\nwebrtc: no\napi: no\npaths:\n  all_others:\n",
    )
    .unwrap();
    let clip = clip(Clip::H264Aac, 6);
    let (origin, origin_log) = spawn_in(link.cmd(env!("CARGO_BIN_EXE_mediarouter")).arg(&cfg));
    listen_addr(&origin_log, "RTSP");
    let publisher = link
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
