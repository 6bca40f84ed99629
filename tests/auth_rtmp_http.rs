//! Authentication on RTMP (`?user=&pass=` on the stream key, as in MediaMTX), HTTP-FLV
//! and HLS (Basic, with ffmpeg putting `user:pass@` from the URL in the header) and
//! the API (the `api` permission), against a locked-down user list.

mod common;

use base64::Engine;
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const PUB_PASS: &str = "rtmpPub-Secret";
const VIEW_PASS: &str = "httpView-Secret";
const ADMIN_PASS: &str = "apiAdmin-Secret";

fn locked() -> TestServer {
    let viewer = mediarouter::auth::hash_password(VIEW_PASS);
    TestServer::start(&format!(
        r#"hlsAlwaysRemux: yes
authInternalUsers:
  - user: publisher
    pass: {PUB_PASS}
    permissions: [{{action: publish}}]
  - user: viewer
    pass: "{viewer}"
    permissions: [{{action: read, path: ~^live/}}]
  - user: admin
    pass: {ADMIN_PASS}
    permissions: [{{action: api}}]
paths:
  all_others:
"#
    ))
}

/// Video frames ffmpeg decodes from `url` in 2 s, or its error output.
fn ffmpeg_reads(url: &str) -> Result<usize, String> {
    ffmpeg_decoded(&["-t", "2", "-i", url])
}

/// Status line and headers of a GET with an optional `Authorization` value.
fn get_with(addr: SocketAddr, path: &str, auth: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    write!(s, "GET {path} HTTP/1.0\r\nHost: test\r\n{auth}\r\n").unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let head = text
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_string();
    (status, head)
}

fn basic(user: &str, pass: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    format!("Basic {b64}")
}

#[test]
fn rtmp_flv_hls_and_api_need_credentials() {
    if !have_ffmpeg() {
        return;
    }
    let srv = locked();
    let clip = clip(Clip::H264Aac, 6);
    let rtmp = srv.rtmp_url("live/cam");

    // RTMP publish: anonymous and a wrong password are refused, the right one works.
    for url in [
        rtmp.clone(),
        format!("{rtmp}?user=publisher&pass=wrong-Pass"),
    ] {
        let mut p = publish_rtmp(&clip, &url, true);
        let st = wait_child(&mut p, Duration::from_secs(20), "refused RTMP publisher");
        assert!(!st.success(), "{url} was let publish");
    }
    assert!(srv.stream("live/cam").is_none());
    let _publisher = Children(vec![publish_rtmp(
        &clip,
        &format!("{rtmp}?user=publisher&pass={PUB_PASS}"),
        true,
    )]);
    srv.wait_stream("live/cam");

    // RTMP read.
    assert!(ffmpeg_reads(&rtmp).is_err(), "anonymous RTMP read");
    let frames = ffmpeg_reads(&format!("{rtmp}?user=viewer&pass={VIEW_PASS}")).expect("RTMP read");
    assert!(frames >= 30, "{frames}");

    // HTTP-FLV and HLS: ffmpeg answers the 401 with the URL's credentials.
    let http = srv.server.http_addr().unwrap();
    let creds = format!("viewer:{VIEW_PASS}@");
    for path in ["live/cam.flv", "live/cam/index.m3u8"] {
        assert!(
            ffmpeg_reads(&format!("http://{http}/{path}")).is_err(),
            "anonymous {path}"
        );
        let frames = ffmpeg_reads(&format!("http://{creds}{http}/{path}"))
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(frames >= 30, "{path}: {frames}");
    }
    let (code, head) = get_with(http, "/live/cam/index.m3u8", None);
    assert_eq!(code, 401);
    assert!(
        head.contains("WWW-Authenticate: Basic realm=\"mediarouter\"")
            || head
                .to_lowercase()
                .contains("www-authenticate: basic realm=\"mediarouter\""),
        "{head}"
    );
    let (code, _) = get_with(http, "/live/cam/", Some(&basic("viewer", VIEW_PASS)));
    assert_eq!(code, 200, "the player page");
    let (code, _) = get_with(
        http,
        "/live/cam/index.m3u8",
        Some(&format!("Bearer viewer:{VIEW_PASS}")),
    );
    assert_eq!(code, 200, "Bearer user:pass");
    let (code, _) = get_with(
        http,
        "/live/cam/index.m3u8",
        Some(&basic("publisher", PUB_PASS)),
    );
    assert_eq!(code, 401, "publisher may not read");

    // The API: this config gives no one the API without credentials, not even localhost.
    let api = srv.server.api_addr().unwrap();
    assert_eq!(get_with(api, "/v3/paths/list", None).0, 401);
    assert_eq!(
        get_with(api, "/v3/paths/list", Some(&basic("admin", "wrong-Pass"))).0,
        401
    );
    let (code, _) = get_with(api, "/v3/paths/list", Some(&basic("admin", ADMIN_PASS)));
    assert_eq!(code, 200);

    let text = logs().text();
    for secret in [PUB_PASS, VIEW_PASS, ADMIN_PASS, "wrong-Pass"] {
        assert!(!text.contains(secret), "the log holds {secret:?}");
    }
}

/// MediaMTX's defaults: the API answers localhost without credentials.
#[test]
fn the_api_answers_localhost_by_default() {
    let srv = TestServer::start("paths:\n  all_others:\n");
    let api = srv.server.api_addr().unwrap();
    assert_eq!(get_with(api, "/v3/paths/list", None).0, 200);
}

/// `X-Forwarded-For` counts only from `apiTrustedProxies` / `hlsTrustedProxies`, so a
/// client can't claim to be localhost; and state-changing API routes refuse what a
/// page on another site could send (a `text/plain` POST, a foreign `Origin`).
#[test]
fn forwarded_for_from_trusted_proxies_only_and_no_cross_site_posts() {
    let srv = TestServer::start(
        r#"apiTrustedProxies: [127.0.0.2]
hlsTrustedProxies: [127.0.0.2]
apiAllowOrigins: [http://*.good.example]
authInternalUsers:
  - user: any
    ips: [192.0.2.0/24]
    permissions: [{action: read}]
  - user: any
    ips: [127.0.0.1]
    permissions: [{action: api}]
paths:
  all_others:
"#,
    );
    let api = srv.server.api_addr().unwrap();
    let http = srv.server.http_addr().unwrap();
    let ip = |s: &str| Some(s.parse::<std::net::IpAddr>().unwrap());
    let get = |from, addr, path: &str, xff: Option<&str>| {
        let xff = xff.map_or(String::new(), |v| format!("\r\nX-Forwarded-For: {v}"));
        http::request_from(from, addr, &format!("GET {path} HTTP/1.0{xff}"), b"").0
    };
    // The API is localhost's: a client elsewhere claiming 127.0.0.1 stays outside.
    assert_eq!(get(ip("127.0.0.3"), api, "/v3/paths/list", None), 403);
    assert_eq!(
        get(ip("127.0.0.3"), api, "/v3/paths/list", Some("127.0.0.1")),
        403
    );
    assert_eq!(get(ip("127.0.0.2"), api, "/v3/paths/list", None), 403);
    assert_eq!(
        get(ip("127.0.0.2"), api, "/v3/paths/list", Some("127.0.0.1")),
        200
    );
    // What the client put before the proxy's hop is the client's claim, not the proxy's.
    assert_eq!(
        get(
            ip("127.0.0.2"),
            api,
            "/v3/paths/list",
            Some("127.0.0.1, 198.51.100.4")
        ),
        403
    );
    // HLS readers must come from 192.0.2.0/24: only a trusted proxy can say so.
    let hls = "/cam/index.m3u8";
    assert_eq!(get(ip("127.0.0.3"), http, hls, Some("192.0.2.7")), 403);
    assert_eq!(
        get(ip("127.0.0.2"), http, hls, Some("192.0.2.7")),
        404,
        "allowed; no stream"
    );
    assert_eq!(get(ip("127.0.0.2"), http, hls, Some("198.51.100.4")), 403);

    // State-changing routes: JSON only, from an allowed origin when a page sends one.
    let post = |ctype: &str, origin: Option<&str>| {
        let origin = origin.map_or(String::new(), |o| format!("\r\nOrigin: {o}"));
        http::request_from(
            None,
            api,
            &format!("POST /v3/auth/jwks/refresh HTTP/1.0\r\nContent-Type: {ctype}{origin}"),
            b"{}",
        )
        .0
    };
    assert_eq!(post("text/plain", None), 403, "a form-like POST");
    assert_eq!(post("application/x-www-form-urlencoded", None), 403);
    assert_eq!(post("application/json", Some("http://evil.example")), 403);
    assert_eq!(
        post("application/json", Some("http://app.good.example")),
        200
    );
    assert_eq!(post("application/json; charset=utf-8", None), 200);
    // No body type: curl kicking a session passes; a page's bodiless fetch carries an
    // Origin, which must be allowed.
    let bare = |origin: &str| {
        let head = format!("POST /v3/auth/jwks/refresh HTTP/1.0{origin}");
        http::request_from(None, api, &head, b"").0
    };
    assert_eq!(bare(""), 200, "a POST without body or Origin");
    assert_eq!(bare("\r\nOrigin: http://evil.example"), 403);
    // Reads stay simple GETs.
    assert_eq!(get(None, api, "/v3/paths/list", None), 200);
    assert!(!logs()
        .lines_with("WARN", &["API request refused"])
        .is_empty());
}

/// A page on another origin that sends a JWT in `Authorization` gets its preflight
/// answered; an origin not in `hlsAllowOrigins` gets no CORS headers.
#[test]
fn cors_preflight_allows_authorization_from_allowed_origins() {
    let srv = TestServer::start("hlsAllowOrigins: [https://app.example]\npaths:\n  all_others:\n");
    let http = srv.server.http_addr().unwrap();
    let preflight = |origin: &str| {
        http::request_from(
            None,
            http,
            &format!("OPTIONS /cam/index.m3u8 HTTP/1.0\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: authorization"),
            b"",
        )
    };
    let (code, head, _) = preflight("https://app.example");
    let head = head.to_lowercase();
    assert_eq!(code, 204);
    assert!(
        head.contains("access-control-allow-origin: https://app.example"),
        "{head}"
    );
    assert!(
        head.contains("access-control-allow-headers: authorization"),
        "{head}"
    );
    let (code, head, _) = preflight("https://evil.example");
    assert_eq!(code, 204);
    assert!(
        !head.to_lowercase().contains("access-control-allow"),
        "{head}"
    );
}
