//! The OpenAPI document at `/v3/openapi.json` against the real API: every operation it
//! lists is called on a server with an RTSP publisher and RTSP, RTMP, HTTP-FLV, HLS and WHEP
//! readers, answers with a status the document lists, and its body validates against
//! the schema the document gives for that status (objects allow no undocumented field).

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

fn call(srv: &TestServer, method: &str, path: &str, body: Option<&Value>) -> (u16, Vec<u8>) {
    let api = srv.server.api_addr().unwrap();
    let (head, body) = match body {
        Some(b) => (
            format!("{method} {path} HTTP/1.0\r\nContent-Type: application/json"),
            serde_json::to_vec(b).unwrap(),
        ),
        None => (format!("{method} {path} HTTP/1.0"), Vec::new()),
    };
    let (status, _, body) = http::request_from(None, api, &head, &body);
    (status, body)
}

/// A validator for `schema` with the document's components resolvable from it.
fn validator(spec: &Value, schema: &Value) -> jsonschema::Validator {
    let mut root = schema.clone();
    root["components"] = spec["components"].clone();
    root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    jsonschema::validator_for(&root).unwrap_or_else(|e| panic!("bad schema {schema}: {e}"))
}

/// The body a write operation sends.
fn body_for(method: &str, route: &str) -> Option<Value> {
    Some(match (method, route) {
        ("patch", "/v3/config/global/patch") => json!({"logLevel": "info"}),
        ("patch", "/v3/config/pathdefaults/patch") => json!({"maxReaders": 0}),
        ("post", r) if r.starts_with("/v3/config/paths/") => json!({"source": "publisher"}),
        ("patch", r) if r.starts_with("/v3/config/paths/") => json!({"maxReaders": 3}),
        _ => return None,
    })
}

#[test]
fn every_documented_route_answers_as_documented() {
    if !have_ffmpeg() {
        return;
    }
    let rec = tempfile::tempdir().unwrap();
    let srv = TestServer::start(&format!(
        "hlsVariant: mpegts\nhlsSegmentDuration: 1s\nwebrtcHandshakeTimeout: 120s\npaths:\n  cam:\n  all_others:\n    record: yes\n    recordPath: {}/%path/%Y-%m-%d_%H-%M-%S-%f\n    recordSegmentDuration: 1s\n",
        rec.path().display()
    ));
    let clip = clip(Clip::H264Aac, 10);
    let mut publisher = publish(&clip, &srv.url("live/cam"), "tcp", true);
    srv.wait_stream("live/cam");
    let mut readers = vec![
        read_to_null(&srv.url("live/cam")),
        read_to_null(&srv.rtmp_url("live/cam")),
        read_to_null(&srv.flv_url("live/cam")),
        read_to_null(&format!(
            "srt://{}?streamid=read:live/cam",
            srv.server.srt_addr().expect("SRT listener (libsrt)")
        )),
    ];
    wait_until(Duration::from_secs(20), "four readers", || {
        srv.readers("live/cam") == 4
    });
    // A WHEP session, answered and waiting for its browser (the handshake timeout is long).
    let (st, _, body) = webrtc::post(
        srv.server.webrtc_addr().unwrap(),
        "/live/cam/whep",
        "application/sdp",
        &webrtc::h264_offer(),
    );
    assert_eq!(st, 201, "{body}");
    let (st, _) = http::get(srv.server.http_addr().unwrap(), "/live/cam/index.m3u8");
    assert_eq!(st, 200);
    // Two recorded segments: the first, complete, is the one deletesegment removes.
    let mut first_segment = String::new();
    wait_until(Duration::from_secs(20), "two recorded segments", || {
        let (_, r) = call(&srv, "GET", "/v3/recordings/get/live/cam", None);
        let r: Value = serde_json::from_slice(&r).unwrap();
        let segs = r["segments"].as_array().cloned().unwrap_or_default();
        if let Some(s) = segs.first() {
            first_segment = s["start"].as_str().unwrap().to_string();
        }
        segs.len() >= 2
    });

    let (st, spec) = call(&srv, "GET", "/v3/openapi.json", None);
    assert_eq!(st, 200);
    let spec: Value = serde_json::from_slice(&spec).unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    let mut ops: Vec<(String, String, Value)> = Vec::new();
    for (route, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            ops.push((route.clone(), method.clone(), op.clone()));
        }
    }
    // Kicks last (they end readers the other calls list), and of readers only.
    ops.sort_by_key(|(route, _, _)| route.contains("/kick/"));
    let mut checked = 0;
    for (route, method, op) in &ops {
        let collection = route.split('/').nth(2).unwrap_or_default();
        let mut url = route.clone();
        if url.contains("{id}") {
            let (_, list) = call(&srv, "GET", &format!("/v3/{collection}/list"), None);
            let list: Value = serde_json::from_slice(&list).unwrap();
            let id = list["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| !route.contains("/kick/") || i["state"] == "read" || i["state"].is_null())
                .map_or("999999".to_string(), |i| {
                    i["id"].as_str().unwrap().to_string()
                });
            url = url.replace("{id}", &id);
        }
        let name = match collection {
            "config" if route.contains("/get/") => "cam",
            "config" => "apitest",
            _ => "live/cam",
        };
        url = url.replace("{name}", name);
        if route.ends_with("/deletesegment") {
            let start = first_segment.replace('+', "%2B");
            url = format!("{url}?path=live/cam&start={start}");
        }
        let body = body_for(method, route);
        let (status, resp) = call(&srv, &method.to_uppercase(), &url, body.as_ref());
        let text = String::from_utf8_lossy(&resp).into_owned();
        let documented = &op["responses"][status.to_string()];
        assert!(
            documented.is_object(),
            "{method} {url}: {status} is not documented: {text}"
        );
        assert_ne!(
            text, r#"{"error":"not found"}"#,
            "{method} {url}: no such route"
        );
        // Entries exist for every kind but TLS ones: those answer 404 as documented.
        let expect_found = !["rtspsconns", "rtspssessions", "rtmpsconns"].contains(&collection);
        if expect_found {
            assert_eq!(status, 200, "{method} {url}: {text}");
        }
        if let Some(schema) = documented["content"]["application/json"]["schema"].as_object() {
            let v = validator(&spec, &Value::Object(schema.clone()));
            let instance: Value = serde_json::from_slice(&resp)
                .unwrap_or_else(|e| panic!("{method} {url}: not JSON ({e}): {text}"));
            let errors: Vec<String> = v
                .iter_errors(&instance)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{method} {url}: {errors:?}\n{instance}");
        }
        checked += 1;
    }
    eprintln!("{checked} operations checked against the document");
    assert_eq!(checked, ops.len());
    // MediaMTX's routes that exist here (44 of its 49; not yet: paths/forward,
    // moqsessions).
    let mut mediamtx: Vec<String> = [
        "get /v3/info",
        "post /v3/auth/jwks/refresh",
        "get /v3/config/global/get",
        "patch /v3/config/global/patch",
        "get /v3/config/pathdefaults/get",
        "patch /v3/config/pathdefaults/patch",
        "get /v3/config/paths/list",
        "get /v3/config/paths/get/{name}",
        "post /v3/config/paths/add/{name}",
        "patch /v3/config/paths/patch/{name}",
        "post /v3/config/paths/replace/{name}",
        "delete /v3/config/paths/delete/{name}",
        "get /v3/paths/list",
        "get /v3/paths/get/{name}",
        "get /v3/hlsmuxers/list",
        "get /v3/hlsmuxers/get/{name}",
        "get /v3/hlssessions/list",
        "get /v3/hlssessions/get/{id}",
        "post /v3/hlssessions/kick/{id}",
        "get /v3/recordings/list",
        "get /v3/recordings/get/{name}",
        "delete /v3/recordings/deletesegment",
    ]
    .map(String::from)
    .to_vec();
    for kind in ["rtspconns", "rtspsconns"] {
        mediamtx.push(format!("get /v3/{kind}/list"));
        mediamtx.push(format!("get /v3/{kind}/get/{{id}}"));
    }
    for kind in [
        "rtspsessions",
        "rtspssessions",
        "rtmpconns",
        "rtmpsconns",
        "webrtcsessions",
        "srtconns",
    ] {
        for op in [
            "get /v3/{k}/list",
            "get /v3/{k}/get/{id}",
            "post /v3/{k}/kick/{id}",
        ] {
            mediamtx.push(op.replace("{k}", kind));
        }
    }
    assert_eq!(mediamtx.len(), 44);
    for m in &mediamtx {
        assert!(
            ops.iter().any(|(r, meth, _)| format!("{meth} {r}") == *m),
            "{m} missing from the document"
        );
    }

    let (_, r) = call(&srv, "GET", "/v3/recordings/get/live/cam", None);
    assert!(
        !String::from_utf8_lossy(&r).contains(&first_segment),
        "deletesegment removed {first_segment}"
    );

    for mut c in readers.drain(..) {
        let _ = c.kill();
        let _ = c.wait();
    }
    let _ = publisher.kill();
    let _ = publisher.wait();
}
