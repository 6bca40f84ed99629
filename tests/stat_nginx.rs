//! `GET /stat` against nginx-rtmp's own `rtmp_stat all`: the same clip is published
//! over RTMP to nginx-rtmp and to mediarouter, with one RTMP reader on each; every
//! element nginx writes is in ours (but for the few listed that we don't know), and
//! the stream's name, client count and codec details read the same.

mod common;

use common::nginx::{have_nginx_rtmp, start_nginx};
use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Each element's path (`rtmp/server/application/name`) and the texts found there.
fn elements(xml: &str) -> BTreeMap<String, Vec<String>> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let mut stack: Vec<String> = Vec::new();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    loop {
        match reader
            .read_event()
            .unwrap_or_else(|e| panic!("bad XML: {e}\n{xml}"))
        {
            Event::Start(e) => {
                stack.push(e.name().as_ref().to_string());
                out.entry(stack.join("/")).or_default();
            }
            Event::Empty(e) => {
                let name = e.name().as_ref().to_string();
                out.entry(format!("{}/{name}", stack.join("/")))
                    .or_default();
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Text(t) => {
                let t = t.into_inner().into_owned();
                out.entry(stack.join("/")).or_default().push(t);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    out
}

#[test]
fn stat_has_what_nginx_rtmp_stat_has() {
    if !have_ffmpeg() || !have_nginx_rtmp() {
        return;
    }
    let (rtmp_port, stat_port) = (free_port(), free_port());
    let prefix = tempfile::tempdir().unwrap();
    let mut nginx = start_nginx(prefix.path(), rtmp_port, Some(stat_port));
    let srv = TestServer::start("paths:\n  all_others:\n");
    let clip = clip(Clip::H264Aac, 10);
    let nginx_url = format!("rtmp://127.0.0.1:{rtmp_port}/live/cam");
    let mut children = vec![
        publish_rtmp(&clip, &nginx_url, true),
        publish_rtmp(&clip, &srv.rtmp_url("live/cam"), true),
    ];
    srv.wait_stream("live/cam");
    let nginx_stat = || {
        let (_, body) = http::get(([127, 0, 0, 1], stat_port).into(), "/stat");
        String::from_utf8(body).unwrap()
    };
    wait_until(Duration::from_secs(20), "nginx's publisher", || {
        nginx_stat().contains("<publishing/>")
    });
    children.push(read_to_null(&nginx_url));
    children.push(read_to_null(&srv.rtmp_url("live/cam")));
    wait_until(Duration::from_secs(20), "a reader on each", || {
        nginx_stat().matches("<nclients>2</nclients>").count() == 2 && srv.readers("live/cam") == 1
    });
    let theirs = elements(&nginx_stat());
    let (status, ours) = http::get(srv.server.api_addr().unwrap(), "/stat");
    assert_eq!(status, 200);
    let ours_text = String::from_utf8(ours).unwrap();
    eprintln!("{ours_text}");
    let ours = elements(&ours_text);

    // What nginx-rtmp knows and mediarouter doesn't: its build, the FLV client's
    // flashVer (RTMP clients here are listed without it), A/V sync and drop counts,
    // per-kind bandwidths, the frame rate and AAC profile from FLV metadata.
    let unknown: BTreeSet<&str> = [
        "rtmp/nginx_version",
        "rtmp/nginx_rtmp_version",
        "rtmp/built",
        "rtmp/server/application/live/stream/bw_audio",
        "rtmp/server/application/live/stream/bw_video",
        "rtmp/server/application/live/stream/client/flashver",
        "rtmp/server/application/live/stream/client/dropped",
        "rtmp/server/application/live/stream/client/avsync",
        "rtmp/server/application/live/stream/client/timestamp",
        "rtmp/server/application/live/stream/meta/video/frame_rate",
        "rtmp/server/application/live/stream/meta/video/compat",
        "rtmp/server/application/live/stream/meta/audio/profile",
    ]
    .into();
    let missing: Vec<&String> = theirs
        .keys()
        .filter(|k| !unknown.contains(k.as_str()) && !ours.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "missing from /stat: {missing:?}\n{ours_text}"
    );
    for same in [
        "rtmp/server/application/name",
        "rtmp/server/application/live/stream/name",
        "rtmp/server/application/live/stream/nclients",
        "rtmp/server/application/live/nclients",
        "rtmp/server/application/live/stream/meta/video/width",
        "rtmp/server/application/live/stream/meta/video/height",
        "rtmp/server/application/live/stream/meta/video/codec",
        "rtmp/server/application/live/stream/meta/video/profile",
        "rtmp/server/application/live/stream/meta/video/level",
        "rtmp/server/application/live/stream/meta/audio/codec",
        "rtmp/server/application/live/stream/meta/audio/channels",
        "rtmp/server/application/live/stream/meta/audio/sample_rate",
    ] {
        assert_eq!(ours.get(same), theirs.get(same), "{same}");
    }
    let bytes: u64 = ours["rtmp/server/application/live/stream/bytes_in"][0]
        .parse()
        .unwrap();
    assert!(bytes > 0);

    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
    let _ = nginx.kill();
    let _ = nginx.wait();
}
