//! Sessions and connections in the control API and in `/metrics`, with real clients:
//! ffmpeg publishes over RTSP and reads over RTSP, RTMP and HTTP-FLV, an HLS client
//! downloads; each is listed with its path, state and bytes, the path's bitrate matches
//! what ffprobe says of the clip, and kicking a reader by id ends that ffmpeg only.

mod common;

use common::*;
use serde_json::Value;
use std::process::{Child, Command};
use std::time::Duration;

fn api(srv: &TestServer, path: &str) -> Value {
    let (status, body) = http::get(srv.server.api_addr().unwrap(), path);
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

fn status_of(srv: &TestServer, head: &str) -> u16 {
    http::request_from(None, srv.server.api_addr().unwrap(), head, b"").0
}

fn items(srv: &TestServer, route: &str) -> Vec<Value> {
    api(srv, &format!("/v3/{route}/list"))["items"]
        .as_array()
        .unwrap()
        .clone()
}

/// The clip's bitrate as ffprobe reports it: the sum of its streams'.
fn probed_bitrate(clip: &std::path::Path) -> f64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=bit_rate",
            "-of",
            "csv=p=0",
        ])
        .arg(clip)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse::<f64>().ok())
        .sum()
}

fn within(what: &str, got: f64, want: f64, tolerance: f64) {
    let ratio = got / want;
    eprintln!("{what}: {got:.0} bit/s, ffprobe {want:.0} ({ratio:.3}x)");
    assert!(
        (1.0 - tolerance..=1.0 + tolerance).contains(&ratio),
        "{what}: {got} against {want}"
    );
}

fn metrics(srv: &TestServer) -> prometheus_parse::Scrape {
    let (status, body) = http::get(srv.server.metrics_addr().unwrap(), "/metrics");
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .unwrap_or_else(|e| panic!("not Prometheus text: {e}\n{text}"))
}

fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .find(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Counter(v) => v,
            _ => f64::NAN,
        })
}

fn id_of<'a>(list: &'a [Value], state: &str) -> Vec<&'a str> {
    list.iter()
        .filter(|s| s["state"] == state)
        .map(|s| s["id"].as_str().unwrap())
        .collect()
}

#[test]
fn sessions_are_listed_counted_and_kicked() {
    if !have_ffmpeg() {
        return;
    }
    let srv = TestServer::start(
        "metrics: yes\nmetricsAddress: 127.0.0.1:0\nhlsVariant: mpegts\nhlsSegmentDuration: 1s\npaths:\n  all_others:\n",
    );
    let clip = clip(Clip::H264Aac, 10);
    let want = probed_bitrate(&clip);
    assert!(want > 1e6, "ffprobe bitrate {want}");
    let mut publisher = publish(&clip, &srv.url("live/cam"), "tcp", true);
    srv.wait_stream("live/cam");
    let mut kept_rtsp = read_to_null(&srv.url("live/cam"));
    let mut kicked_rtsp = read_to_null(&srv.url("live/cam"));
    let mut kicked_rtmp = read_to_null(&srv.rtmp_url("live/cam"));
    let mut kept_flv = read_to_null(&srv.flv_url("live/cam"));
    let mut kicked_flv = read_to_null(&srv.flv_url("live/cam"));
    wait_until(Duration::from_secs(20), "five readers", || {
        srv.readers("live/cam") == 5
    });
    // An HLS viewer: the playlists and a segment.
    let http_addr = srv.server.http_addr().unwrap();
    let viewer = |file: &str| {
        let head = format!("GET /live/cam/{file} HTTP/1.0\r\nUser-Agent: test-viewer");
        let (status, _, body) = http::request_from(None, http_addr, &head, b"");
        (status, body)
    };
    let (st, _) = viewer("index.m3u8");
    assert_eq!(st, 200);
    let (_, media) = viewer("stream.m3u8");
    let media = String::from_utf8(media).unwrap();
    let seg = media.lines().find(|l| l.ends_with(".ts")).unwrap();
    let (st, seg_body) = viewer(seg);
    assert_eq!(st, 200);

    // RTSP: the publisher and two readers, each with its connection.
    let rtsp = items(&srv, "rtspsessions");
    assert_eq!(rtsp.len(), 3, "{rtsp:?}");
    let publisher_id = id_of(&rtsp, "publish");
    assert_eq!(publisher_id.len(), 1, "{rtsp:?}");
    for s in &rtsp {
        assert_eq!(s["path"], "live/cam", "{s}");
        assert_eq!(s["transport"], "TCP", "{s}");
        assert!(s["remoteAddr"].as_str().unwrap().starts_with("127.0.0.1:"));
        assert!(s["created"].as_str().unwrap().ends_with('Z'));
        let conn = s["conns"][0].as_str().unwrap();
        let c = api(&srv, &format!("/v3/rtspconns/get/{conn}"));
        assert_eq!(c["session"], s["id"], "{c}");
    }
    let rtmp = items(&srv, "rtmpconns");
    assert_eq!(rtmp.len(), 1, "{rtmp:?}");
    assert_eq!(rtmp[0]["state"], "read");
    let flv = items(&srv, "flvsessions");
    assert_eq!(flv.len(), 2, "{flv:?}");
    let hls = items(&srv, "hlssessions");
    assert_eq!(hls.len(), 1, "{hls:?}");
    assert_eq!(hls[0]["path"], "live/cam");
    assert_eq!(hls[0]["userAgent"], "test-viewer");
    assert!(hls[0]["outboundBytes"].as_u64().unwrap() >= seg_body.len() as u64);
    let muxer = api(&srv, "/v3/hlsmuxers/get/live/cam");
    assert!(
        muxer["bytesSent"].as_u64().unwrap() >= seg_body.len() as u64,
        "{muxer}"
    );

    // The path points at those entries, counts readers per protocol, describes tracks.
    let path = api(&srv, "/v3/paths/get/live/cam");
    assert_eq!(path["source"]["id"], publisher_id[0], "{path}");
    let reader_ids: Vec<&str> = path["readers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for id in id_of(&rtsp, "read")
        .into_iter()
        .chain(id_of(&rtmp, "read"))
        .chain(id_of(&flv, "read"))
    {
        assert!(reader_ids.contains(&id), "{id} in {path}");
    }
    assert_eq!(
        path["readersPerProtocol"],
        serde_json::json!({"rtsp": 2, "rtmp": 1, "httpFlv": 2, "hls": 1}),
        "{path}"
    );
    assert_eq!(path["tracks2"][0]["codec"], "H264");
    assert_eq!(path["tracks2"][0]["codecProps"]["width"], 640);
    assert_eq!(path["tracks2"][0]["codecProps"]["height"], 360);
    assert_eq!(path["tracks2"][1]["codecProps"]["sampleRate"], 44100);

    // Bitrates, once the 5 s window is full of the publisher's media.
    wait_until(Duration::from_secs(20), "a full bitrate window", || {
        let p = api(&srv, "/v3/paths/get/live/cam");
        p["readyTime"].as_str().is_some_and(|t| {
            humantime::parse_rfc3339(t)
                .map(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(7))
                .unwrap_or(false)
        })
    });
    let path = api(&srv, "/v3/paths/get/live/cam");
    let inbound = path["inboundBitrate"].as_f64().unwrap();
    within("API inboundBitrate", inbound, want, 0.10);
    let outbound = path["outboundBitrate"].as_f64().unwrap();
    assert!(
        outbound > 4.0 * inbound,
        "five readers: {outbound} vs {inbound}"
    );
    assert!(path["bytesReceived"].as_u64().unwrap() > 0);
    let scrape = metrics(&srv);
    let cam = [("name", "live/cam"), ("state", "ready")];
    assert_eq!(sample(&scrape, "paths", &cam), Some(1.0));
    within(
        "metrics paths_inbound_bitrate",
        sample(&scrape, "paths_inbound_bitrate", &cam).unwrap(),
        want,
        0.10,
    );
    assert_eq!(
        sample(
            &scrape,
            "paths_readers",
            &[("name", "live/cam"), ("readerType", "rtspSession")]
        ),
        Some(2.0)
    );
    assert!(sample(&scrape, "paths_bytes_sent", &cam).unwrap() > 0.0);
    assert!(sample(&scrape, "rtmp_conns_bytes_sent", &[("state", "read")]).unwrap() > 0.0);
    assert_eq!(
        sample(&scrape, "hls_muxers", &[("name", "live/cam")]),
        Some(1.0)
    );
    assert_eq!(
        sample(&scrape, "config_reload_last_success", &[]),
        Some(1.0)
    );

    // Kicks: each kicked ffmpeg sees its connection end; the others go on.
    // Which of the two RTSP (and HTTP-FLV) ffmpegs holds the kicked session isn't
    // known here: exactly one of each pair must end.
    let kicked_rtsp_id = id_of(&rtsp, "read")[0].to_string();
    let flv_id = flv[1]["id"].as_str().unwrap().to_string();
    let rtmp_id = rtmp[0]["id"].as_str().unwrap().to_string();
    for (route, id) in [
        ("rtspsessions", &kicked_rtsp_id),
        ("rtmpconns", &rtmp_id),
        ("flvsessions", &flv_id),
    ] {
        assert_eq!(
            status_of(&srv, &format!("POST /v3/{route}/kick/{id} HTTP/1.0")),
            200,
            "{route}"
        );
    }
    let ended = |c: &mut Child| c.try_wait().unwrap().is_some();
    wait_until(
        Duration::from_secs(15),
        "three kicked readers to end",
        || {
            let rtsp = [ended(&mut kicked_rtsp), ended(&mut kept_rtsp)];
            let flv = [ended(&mut kicked_flv), ended(&mut kept_flv)];
            rtsp.iter().filter(|e| **e).count() == 1
                && ended(&mut kicked_rtmp)
                && flv.iter().filter(|e| **e).count() == 1
        },
    );
    // The two that stayed, and the HLS muxer.
    assert_eq!(srv.readers("live/cam"), 3);
    assert_eq!(items(&srv, "rtspsessions").len(), 2);
    assert!(items(&srv, "rtmpconns").is_empty());
    assert_eq!(items(&srv, "flvsessions").len(), 1);
    assert!(
        publisher.try_wait().unwrap().is_none(),
        "the publisher goes on"
    );
    assert!(!logs()
        .lines_with("", &["kicked through the API"])
        .is_empty());
    // Still streaming to the readers that stayed.
    let before = api(&srv, "/v3/paths/get/live/cam")["bytesSent"]
        .as_u64()
        .unwrap();
    wait_until(
        Duration::from_secs(10),
        "the others to keep reading",
        || {
            api(&srv, "/v3/paths/get/live/cam")["bytesSent"]
                .as_u64()
                .unwrap()
                > before + 100_000
        },
    );

    // A kicked HLS viewer is refused until it starts over at the multivariant playlist.
    let hls_id = hls[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        status_of(
            &srv,
            &format!("POST /v3/hlssessions/kick/{hls_id} HTTP/1.0")
        ),
        200
    );
    assert_eq!(viewer("stream.m3u8").0, 403);
    assert!(items(&srv, "hlssessions").is_empty());
    assert_eq!(viewer("index.m3u8").0, 200);
    assert_eq!(viewer("stream.m3u8").0, 200);
    let again = items(&srv, "hlssessions");
    assert_eq!(again.len(), 1);
    assert_ne!(again[0]["id"].as_str().unwrap(), hls_id, "a new session");

    assert_eq!(
        status_of(&srv, "POST /v3/rtmpconns/kick/999999 HTTP/1.0"),
        404
    );
    assert_eq!(
        status_of(&srv, "POST /v3/rtmpconns/kick/nope HTTP/1.0"),
        400
    );
    assert_eq!(
        status_of(&srv, "GET /v3/flvsessions/get/999999 HTTP/1.0"),
        404
    );
    let conn_id = items(&srv, "rtspconns")[0]["id"].clone();
    let conn_id = conn_id.as_str().unwrap();
    assert_eq!(
        status_of(&srv, &format!("POST /v3/rtspconns/kick/{conn_id} HTTP/1.0")),
        404,
        "connections aren't kicked (their sessions are)"
    );

    for mut c in [
        kept_rtsp,
        kicked_rtsp,
        kicked_rtmp,
        kept_flv,
        kicked_flv,
        publisher,
    ] {
        let _ = c.kill();
        let _ = c.wait();
    }
}
