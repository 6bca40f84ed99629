//! Hooks (runOn…): MediaMTX's environment, commands that never outlive their reason
//! (their process is gone, by PID), runOnDemand serving a clip to RTSP, RTMP and HLS.

mod common;

use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

/// PIDs of the processes whose command line contains `marker`.
fn pids_with(marker: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(marker) {
            out.push(pid);
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    // A zombie has exited; only its entry is left for the parent to reap.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

/// Waits for the one process carrying `marker` and returns its PID.
fn wait_process(marker: &str) -> u32 {
    let mut pid = None;
    wait_until(Duration::from_secs(20), marker, || {
        pid = pids_with(marker).into_iter().find(|p| alive(*p));
        pid.is_some()
    });
    pid.unwrap_or_default()
}

/// Waits for `pid` to be gone; returns how long that took.
fn wait_gone(pid: u32, what: &str) -> Duration {
    let start = Instant::now();
    wait_until(Duration::from_secs(20), what, || !alive(pid));
    start.elapsed()
}

/// An on-demand publisher: ffmpeg looping `clip` into the path over RTSP; `marker`
/// finds its process.
fn on_demand(clip: &std::path::Path, marker: &str) -> String {
    format!(
        "ffmpeg -hide_banner -loglevel error -re -stream_loop -1 -i {} -c copy -metadata comment={marker} \
         -f rtsp -rtsp_transport tcp rtsp://127.0.0.1:$RTSP_PORT/$MTX_PATH",
        clip.display()
    )
}

#[test]
fn run_on_demand_serves_every_protocol_and_leaves_no_process() {
    if !present(have_ffmpeg(), "ffmpeg missing", "skipping: no ffmpeg") {
        return;
    }
    let clip = clip(Clip::H264Aac, 4);
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("hooktest{}", std::process::id());
    let (idle, reload, term) = (
        format!("{tag}idle"),
        format!("{tag}reload"),
        format!("{tag}term"),
    );
    let paths = |with_reload: bool| {
        let mut p = format!(
            "paths:\n  ondemand:\n    runOnDemand: {}\n    runOnDemandCloseAfter: 1s\n    runOnDemandStartTimeout: 20s\n    runOnUnDemand: sh -c 'env > {}/undemand-$MTX_PATH'\n",
            on_demand(&clip, &idle),
            dir.path().display()
        );
        if with_reload {
            p += &format!(
                "  keep1:\n    runOnDemand: {}\n    runOnDemandCloseAfter: 60s\n",
                on_demand(&clip, &reload)
            );
        }
        p += &format!(
            "  keep2:\n    runOnDemand: {}\n    runOnDemandCloseAfter: 60s\n",
            on_demand(&clip, &term)
        );
        p
    };
    let base = "rtspAddress: 127.0.0.1:0\nrtpAddress: 127.0.0.1:0\nrtcpAddress: 127.0.0.1:0\nrtspTransports: [tcp]\n\
                hlsAddress: 127.0.0.1:0\nwebrtcAddress: 127.0.0.1:0\nwebrtcLocalUDPAddress: 127.0.0.1:0\nsrtAddress: 127.0.0.1:0\nhlsMuxerCloseAfter: 1s\nhlsVariant: mpegts\nrtmpAddress: 127.0.0.1:0\n";
    let cfg = dir.path().join("mediarouter.yml");
    std::fs::write(&cfg, format!("{base}{}", paths(true))).unwrap();
    let (server, lines) = spawn_server(&cfg);
    // Killed if an assertion fails first: a leftover server would hold the test's pipes.
    let mut server = Children(vec![server]);
    let rtsp = listen_addr(&lines, "RTSP");
    let rtmp = listen_addr(&lines, "RTMP");
    let http = listen_addr(&lines, "HTTP");

    // Each protocol's reader starts the command (or finds it running) and gets video.
    let start = Instant::now();
    read_a_second(
        &["-rtsp_transport", "tcp"],
        &format!("rtsp://{rtsp}/ondemand?camera=front&pass=Secret-Pass"),
    );
    let first = start.elapsed();
    let pid = wait_process(&idle);
    read_a_second(&[], &format!("rtmp://{rtmp}/ondemand"));
    read_a_second(&[], &format!("http://{http}/ondemand/index.m3u8"));
    // The HLS muxer, the last reader, leaves after hlsMuxerCloseAfter; the command
    // goes runOnDemandCloseAfter later, and runOnUnDemand runs.
    let gone = wait_gone(pid, "the on-demand ffmpeg after its readers left");
    eprintln!(
        "first frame through runOnDemand in {first:?}; ffmpeg gone {gone:?} after the last reader"
    );
    let undemand = dir.path().join("undemand-ondemand");
    wait_until(Duration::from_secs(10), "runOnUnDemand", || {
        std::fs::read_to_string(&undemand).is_ok_and(|t| t.contains("MTX_PATH="))
    });
    // The first reader's query, without its credentials.
    let env = std::fs::read_to_string(&undemand).unwrap();
    assert!(env.lines().any(|l| l == "MTX_QUERY=camera=front"), "{env}");
    assert!(pids_with(&idle).into_iter().all(|p| !alive(p)));

    // A reload that removes the path stops its command.
    read_a_second(&["-rtsp_transport", "tcp"], &format!("rtsp://{rtsp}/keep1"));
    let pid = wait_process(&reload);
    std::fs::write(&cfg, format!("{base}{}", paths(false))).unwrap();
    let gone = wait_gone(pid, "the on-demand ffmpeg of a path the reload removed");
    eprintln!("reload removing the path: ffmpeg gone in {gone:?}");

    // SIGTERM stops the server and every command it started.
    read_a_second(&["-rtsp_transport", "tcp"], &format!("rtsp://{rtsp}/keep2"));
    let pid = wait_process(&term);
    let kill = Command::new("kill")
        .args(["-TERM", &server.0[0].id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let gone = wait_gone(pid, "the on-demand ffmpeg after SIGTERM");
    let st = wait_child(
        &mut server.0[0],
        Duration::from_secs(15),
        "mediarouter after SIGTERM",
    );
    assert_eq!(st.code(), Some(0), "{st:?}");
    eprintln!("SIGTERM: ffmpeg gone in {gone:?}");
    assert!(find_line(&lines, "runOnDemand: starting").is_some());
}

/// Reads `file` once it has been written (hooks write their environment there).
fn env_file(file: &std::path::Path) -> String {
    let mut text = String::new();
    wait_until(Duration::from_secs(20), &file.display().to_string(), || {
        text = std::fs::read_to_string(file).unwrap_or_default();
        text.contains("MTX_PATH=") || text.contains("MTX_CONN_TYPE=")
    });
    text
}

fn has(text: &str, line: &str) {
    assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
}

#[test]
fn path_and_connection_hooks_get_mediamtx_environment() {
    if !present(have_ffmpeg(), "ffmpeg missing", "skipping: no ffmpeg") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    // `sh -c` is the command's own choice; the hook itself runs no shell.
    let dump = |name: &str| format!("sh -c 'env > {d}/{name}.env'");
    let srv = TestServer::start(&format!(
        "rtspTransports: [tcp]\nrunOnConnect: {}\nrunOnDisconnect: {}\npaths:\n  '~^hook/(\\w+)$':\n    \
         runOnReady: {}\n    runOnNotReady: {}\n    runOnRead: {}\n    runOnUnread: {}\n  \
         init:\n    runOnInit: sh -c 'echo run >> {d}/init.log'\n    runOnInitRestart: yes\n",
        dump("connect"),
        dump("disconnect"),
        dump("ready"),
        dump("notready"),
        dump("read"),
        dump("unread"),
    ));
    let port = srv.addr.port().to_string();
    let clip = clip(Clip::H264Aac, 4);
    let url = srv.url("hook/cam");
    let mut publisher = publish(&clip, &url, "tcp", true);
    srv.wait_stream("hook/cam");

    let ready = env_file(&dir.path().join("ready.env"));
    has(&ready, "MTX_PATH=hook/cam");
    has(&ready, "G1=cam");
    has(&ready, &format!("RTSP_PORT={port}"));
    has(&ready, "MTX_SOURCE_TYPE=rtspSession");
    assert!(
        ready
            .lines()
            .any(|l| l.starts_with("MTX_SOURCE_ID=") && l.len() > 14),
        "{ready}"
    );
    let connect = env_file(&dir.path().join("connect.env"));
    has(&connect, "MTX_CONN_TYPE=rtspConn");
    assert!(
        connect.lines().any(|l| l.starts_with("MTX_CONN_ID=")),
        "{connect}"
    );

    read_a_second(&["-rtsp_transport", "tcp"], &url);
    let read = env_file(&dir.path().join("read.env"));
    has(&read, "MTX_PATH=hook/cam");
    has(&read, "MTX_READER_TYPE=rtspSession");
    assert!(
        read.lines().any(|l| l.starts_with("MTX_READER_ID=")),
        "{read}"
    );
    let unread = env_file(&dir.path().join("unread.env"));
    has(&unread, "MTX_READER_TYPE=rtspSession");
    let disconnect = env_file(&dir.path().join("disconnect.env"));
    has(&disconnect, "MTX_CONN_TYPE=rtspConn");

    let _ = publisher.kill();
    let _ = publisher.wait();
    let notready = env_file(&dir.path().join("notready.env"));
    has(&notready, "MTX_PATH=hook/cam");
    has(&notready, "MTX_SOURCE_TYPE=rtspSession");

    // runOnInit exits at once; runOnInitRestart runs it again (after 5 s, as MediaMTX).
    let init = dir.path().join("init.log");
    wait_until(Duration::from_secs(20), "runOnInit restarted", || {
        std::fs::read_to_string(&init)
            .unwrap_or_default()
            .lines()
            .count()
            >= 2
    });
}
