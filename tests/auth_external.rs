//! `authMethod: http` (a test auth server records MediaMTX's JSON bodies and allows
//! some) and `authMethod: jwt` (a JWKS served by the test, RS256/ES256/EdDSA tokens
//! signed here), with ffmpeg over RTSP and RTMP and HTTP requests for HLS and the API.

mod common;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use base64::Engine;
use common::*;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const ALICE_PASS: &str = "Alice-Http-Secret";
const RTMP_TOKEN: &str = "rtmp-Token-Secret";

#[derive(Clone, Default)]
struct Shared {
    bodies: Arc<Mutex<Vec<Value>>>,
    jwks: Arc<Mutex<String>>,
    jwks_fetches: Arc<Mutex<usize>>,
}

/// An auth server and JWKS host on its own runtime.
struct AuthServer {
    _rt: tokio::runtime::Runtime,
    addr: SocketAddr,
    s: Shared,
}

impl AuthServer {
    fn start() -> AuthServer {
        let s = Shared::default();
        let app = axum::Router::new()
            .route("/auth", post(auth))
            .route("/jwks", get(jwks))
            .with_state(s.clone());
        let (rt, addr) = http::serve(app);
        AuthServer { _rt: rt, addr, s }
    }

    fn bodies(&self, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        let all = self.s.bodies.lock().unwrap();
        all.iter().filter(|b| pred(b)).cloned().collect()
    }
}

async fn auth(State(s): State<Shared>, axum::Json(v): axum::Json<Value>) -> (StatusCode, String) {
    s.bodies.lock().unwrap().push(v.clone());
    if v["path"] == "hang" {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    let ok = (v["user"] == "alice" && v["password"] == ALICE_PASS) || v["token"] == RTMP_TOKEN;
    match ok {
        true => (StatusCode::OK, String::new()),
        false => (StatusCode::UNAUTHORIZED, "not on the list".into()),
    }
}

async fn jwks(State(s): State<Shared>) -> String {
    *s.jwks_fetches.lock().unwrap() += 1;
    s.jwks.lock().unwrap().clone()
}

fn get_status(addr: SocketAddr, path: &str, auth: Option<&str>) -> (u16, String) {
    let auth = auth.map_or(String::new(), |a| format!("\r\nAuthorization: {a}"));
    let (code, head, _) =
        http::request_from(None, addr, &format!("GET {path} HTTP/1.0{auth}"), b"");
    (code, head)
}

fn basic(user: &str, pass: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    format!("Basic {b64}")
}

/// An RTSP DESCRIBE's status line, on a connection of its own.
fn describe(srv: &TestServer, path: &str, auth: Option<&str>) -> u16 {
    let mut c = RawClient::connect(srv.addr);
    let url = srv.url(path);
    let mut headers = vec![("Accept", "application/sdp".to_string())];
    if let Some(a) = auth {
        headers.push(("Authorization", a.to_string()));
    }
    let hdrs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    c.request("DESCRIBE", &url, &hdrs, b"").status
}

#[test]
fn http_auth_server_decides_with_mediamtx_json() {
    if !have_ffmpeg() {
        return;
    }
    let auth = AuthServer::start();
    let srv = TestServer::start(&format!(
        r#"readTimeout: 3s
hlsAlwaysRemux: yes
authMethod: http
authHTTPAddress: http://{}/auth
authHTTPExclude: [{{action: read, path: open}}]
paths:
  all_others:
"#,
        auth.addr
    ));
    let clip = clip(Clip::H264Aac, 6);
    let rtsp_creds = srv
        .url("cam")
        .replace("rtsp://", &format!("rtsp://alice:{ALICE_PASS}@"));

    // Publish over RTSP with user:pass; the server was sent MediaMTX's fields.
    let _publishers = Children(vec![
        publish(&clip, &rtsp_creds, "tcp", true),
        publish_rtmp(
            &clip,
            &format!("{}?token={RTMP_TOKEN}", srv.rtmp_url("tokcam")),
            true,
        ),
        publish(
            &clip,
            &srv.url("open")
                .replace("rtsp://", &format!("rtsp://alice:{ALICE_PASS}@")),
            "tcp",
            true,
        ),
    ]);
    for p in ["cam", "tokcam", "open"] {
        srv.wait_stream(p);
    }
    let published = auth.bodies(|b| b["action"] == "publish" && b["path"] == "cam");
    let b = published.last().expect("a publish check");
    assert_eq!(b["protocol"], "rtsp");
    assert_eq!(b["user"], "alice");
    assert_eq!(b["password"], ALICE_PASS);
    assert_eq!(b["ip"], "127.0.0.1");
    assert_eq!(b["id"].as_str().map(str::len), Some(36), "{b}");
    for key in ["token", "query", "userAgent"] {
        assert!(b[key].is_string(), "{key} in {b}");
    }
    // RTMP: the token rides in the query.
    let b = &auth.bodies(|b| b["path"] == "tokcam")[0];
    assert_eq!(
        (b["protocol"].as_str(), b["token"].as_str()),
        (Some("rtmp"), Some(RTMP_TOKEN))
    );
    assert_eq!(b["query"], format!("token={RTMP_TOKEN}"));

    // Reads: anonymous and wrong are refused, the right user:pass reads.
    let tcp = |url: &str| ffmpeg_decoded(&["-t", "2", "-rtsp_transport", "tcp", "-i", url]);
    assert!(tcp(&srv.url("cam")).is_err(), "anonymous RTSP read");
    assert!(tcp(&rtsp_creds.replace(ALICE_PASS, "wrong-Pass")).is_err());
    assert!(tcp(&rtsp_creds).expect("RTSP read") >= 30);
    let rtmp = srv.rtmp_url("cam");
    assert!(
        ffmpeg_decoded(&["-t", "2", "-i", &rtmp]).is_err(),
        "anonymous RTMP read"
    );
    let frames = ffmpeg_decoded(&[
        "-t",
        "2",
        "-i",
        &format!("{rtmp}?user=alice&pass={ALICE_PASS}"),
    ]);
    assert!(frames.expect("RTMP read") >= 30);

    // HLS: a 401 asks for Basic; a success is remembered, not asked again.
    let http = srv.server.http_addr().unwrap();
    let (code, head) = get_status(http, "/cam/index.m3u8", None);
    assert_eq!(code, 401);
    assert!(
        head.to_lowercase().contains("www-authenticate: basic"),
        "{head}"
    );
    let alice = basic("alice", ALICE_PASS);
    wait_until(Duration::from_secs(20), "the HLS playlist", || {
        get_status(http, "/cam/index.m3u8", Some(&alice)).0 == 200
    });
    let asked = || {
        auth.bodies(|b| b["protocol"] == "hls" && b["user"] == "alice")
            .len()
    };
    let before = asked();
    for _ in 0..3 {
        assert_eq!(get_status(http, "/cam/index.m3u8", Some(&alice)).0, 200);
    }
    assert_eq!(asked(), before, "remembered successes ask the server again");

    // authHTTPExclude: reading `open` is allowed without asking.
    assert!(tcp(&srv.url("open")).expect("excluded read") >= 30);
    assert!(auth
        .bodies(|b| b["path"] == "open" && b["action"] == "read")
        .is_empty());

    // A server that doesn't answer holds only its own session, then refuses it.
    let hang = {
        let url = srv.url("hang");
        let addr = srv.addr;
        std::thread::spawn(move || {
            let mut c = RawClient::connect(addr);
            c.request(
                "DESCRIBE",
                &url,
                &[("Authorization", &basic("alice", ALICE_PASS))],
                b"",
            )
            .status
        })
    };
    wait_until(Duration::from_secs(10), "the hanging auth request", || {
        !auth.bodies(|b| b["path"] == "hang").is_empty()
    });
    assert_eq!(
        describe(&srv, "open", None),
        200,
        "another session waits for the hang"
    );
    assert!(!hang.is_finished());
    assert_eq!(hang.join().unwrap(), 401);
    assert!(!logs()
        .lines_with("WARN", &["didn't answer within"])
        .is_empty());

    let text = logs().text();
    for secret in [ALICE_PASS, RTMP_TOKEN] {
        assert!(!text.contains(secret), "the log holds {secret:?}");
    }
}

// ---------------------------------------------------------------- JWT

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

struct Keys {
    rsa: jsonwebtoken::EncodingKey,
    ec: jsonwebtoken::EncodingKey,
    ed: jsonwebtoken::EncodingKey,
    ec2: jsonwebtoken::EncodingKey,
    jwks: Vec<Value>,
    ec2_jwk: Value,
}

fn ec_key(kid: &str) -> (jsonwebtoken::EncodingKey, Value) {
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING as ALG};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ALG, &rng).unwrap();
    let kp = EcdsaKeyPair::from_pkcs8(&ALG, pkcs8.as_ref(), &rng).unwrap();
    let point = kp.public_key().as_ref();
    let jwk = json!({"kty": "EC", "kid": kid, "crv": "P-256", "x": b64url(&point[1..33]), "y": b64url(&point[33..65])});
    (jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref()), jwk)
}

fn keys() -> Keys {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("rsa.pem");
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl");
        assert!(out.status.success(), "openssl {args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let pem_s = pem.to_str().unwrap();
    run(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        pem_s,
    ]);
    let modulus = run(&["rsa", "-in", pem_s, "-noout", "-modulus"]);
    let hex = modulus.trim().trim_start_matches("Modulus=");
    let n: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let rsa = jsonwebtoken::EncodingKey::from_rsa_pem(&std::fs::read(&pem).unwrap()).unwrap();
    let rsa_jwk = json!({"kty": "RSA", "kid": "rsa1", "alg": "RS256", "use": "sig", "n": b64url(&n), "e": "AQAB"});
    let (ec, ec_jwk) = ec_key("ec1");
    let (ec2, ec2_jwk) = ec_key("ec2");
    use ring::signature::{Ed25519KeyPair, KeyPair};
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let kp = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let ed_jwk = json!({"kty": "OKP", "kid": "ed1", "crv": "Ed25519", "x": b64url(kp.public_key().as_ref())});
    let ed = jsonwebtoken::EncodingKey::from_ed_der(pkcs8.as_ref());
    Keys {
        rsa,
        ec,
        ed,
        ec2,
        jwks: vec![rsa_jwk, ec_jwk, ed_jwk],
        ec2_jwk,
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn sign(
    alg: jsonwebtoken::Algorithm,
    kid: &str,
    key: &jsonwebtoken::EncodingKey,
    claims: &Value,
) -> String {
    let header = jsonwebtoken::Header {
        alg,
        kid: Some(kid.into()),
        ..Default::default()
    };
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn claims(perms: Value) -> Value {
    json!({
        "iss": "https://idp.test", "aud": "mediarouter", "sub": "carol",
        "exp": now() + 600, "mediamtx_permissions": perms,
    })
}

#[test]
fn jwt_tokens_checked_against_the_jwks() {
    if !have_ffmpeg() {
        return;
    }
    use jsonwebtoken::Algorithm::{EdDSA, ES256, HS256, RS256};
    let auth = AuthServer::start();
    let k = keys();
    *auth.s.jwks.lock().unwrap() = json!({"keys": k.jwks}).to_string();
    let srv = TestServer::start(&format!(
        r#"hlsAlwaysRemux: yes
authMethod: jwt
authJWTInHTTPQuery: yes
authJWTJWKS: http://{}/jwks
authJWTIssuer: https://idp.test
authJWTAudience: mediarouter
paths:
  all_others:
"#,
        auth.addr
    ));
    let cam = json!([{"action": "publish", "path": "cam"}, {"action": "read", "path": "~^cam$"}]);
    let rs = sign(RS256, "rsa1", &k.rsa, &claims(cam.clone()));

    // RTMP publish with ?jwt= (MediaMTX's older key), RTSP read with ?token=.
    let clip = clip(Clip::H264Aac, 6);
    let _publisher = Children(vec![publish_rtmp(
        &clip,
        &format!("{}?jwt={rs}", srv.rtmp_url("cam")),
        true,
    )]);
    srv.wait_stream("cam");
    let frames = ffmpeg_decoded(&[
        "-t",
        "2",
        "-rtsp_transport",
        "tcp",
        "-i",
        &format!("{}?token={rs}", srv.url("cam")),
    ]);
    assert!(frames.expect("RTSP read with ?token=") >= 30);
    assert_eq!(describe(&srv, "cam", None), 401, "no token");

    // HLS: Bearer with each algorithm, or the token as the Basic password.
    let http = srv.server.http_addr().unwrap();
    let playlist = "/cam/index.m3u8";
    let bearer = |t: &str| format!("Bearer {t}");
    wait_until(Duration::from_secs(20), "the HLS playlist", || {
        get_status(http, playlist, Some(&bearer(&rs))).0 == 200
    });
    let es = sign(ES256, "ec1", &k.ec, &claims(cam.clone()));
    let ed = sign(EdDSA, "ed1", &k.ed, &claims(cam.clone()));
    for (name, t) in [("ES256", &es), ("EdDSA", &ed)] {
        assert_eq!(
            get_status(http, playlist, Some(&bearer(t))).0,
            200,
            "{name}"
        );
    }
    assert_eq!(
        get_status(http, playlist, Some(&basic("", &ed))).0,
        200,
        "token as the password"
    );

    // ?jwt= on the playlist URL only: the session cookie carries ffmpeg through the
    // segments, whose URLs have no token.
    let frames = ffmpeg_decoded(&[
        "-t",
        "2",
        "-i",
        &format!("http://{http}{playlist}?jwt={rs}"),
    ]);
    assert!(frames.expect("HLS read with ?jwt=") >= 30);
    let (code, head) = get_status(http, playlist, Some(&bearer(&es)));
    assert_eq!(code, 200);
    let cookie = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_string();
    let with_cookie = |from: &str| {
        let from = Some(from.parse().unwrap());
        http::request_from(
            from,
            http,
            &format!("GET {playlist} HTTP/1.0\r\nCookie: {cookie}"),
            b"",
        )
        .0
    };
    assert_eq!(
        with_cookie("127.0.0.1"),
        200,
        "the session, without credentials"
    );
    assert_eq!(
        with_cookie("127.0.0.3"),
        401,
        "the session from another address"
    );

    // Refused: each of these fails one check.
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims(cam.clone());
        f(&mut c);
        sign(RS256, "rsa1", &k.rsa, &c)
    };
    let tampered = {
        let other = with(&|c| c["sub"] = "mallory".into());
        let mut parts: Vec<&str> = rs.split('.').collect();
        parts[1] = other.split('.').nth(1).unwrap();
        parts.join(".")
    };
    let refused = [
        ("expired", with(&|c| c["exp"] = (now() - 3600).into())),
        ("not yet valid", with(&|c| c["nbf"] = (now() + 3600).into())),
        (
            "wrong audience",
            with(&|c| c["aud"] = "someone-else".into()),
        ),
        (
            "wrong issuer",
            with(&|c| c["iss"] = "https://evil.test".into()),
        ),
        (
            "another path",
            with(&|c| c["mediamtx_permissions"] = json!([{"action": "read", "path": "other"}])),
        ),
        (
            "no permissions claim",
            with(&|c| {
                c.as_object_mut().unwrap().remove("mediamtx_permissions");
            }),
        ),
        ("tampered", tampered),
        (
            "signed by a key not in the JWKS",
            sign(ES256, "ec2", &k.ec2, &claims(cam.clone())),
        ),
        (
            "HS256 with a guessed secret",
            sign(
                HS256,
                "rsa1",
                &jsonwebtoken::EncodingKey::from_secret(b"secret"),
                &claims(cam.clone()),
            ),
        ),
        ("garbage", "not.a.jwt".to_string()),
    ];
    for (name, t) in &refused {
        assert_eq!(
            get_status(http, playlist, Some(&bearer(t))).0,
            401,
            "{name}"
        );
    }
    let (code, head) = get_status(http, playlist, None);
    assert_eq!(code, 401);
    assert!(
        head.to_lowercase().contains("www-authenticate: basic"),
        "{head}"
    );

    // The API needs a token with `api` too; refresh picks up a rotated key set.
    let api = srv.server.api_addr().unwrap();
    let api_token = sign(ES256, "ec1", &k.ec, &claims(json!([{"action": "api"}])));
    let refresh = |auth: Option<&str>| {
        let auth = auth.map_or(String::new(), |a| format!("\r\nAuthorization: {a}"));
        http::request_from(
            None,
            api,
            &format!("POST /v3/auth/jwks/refresh HTTP/1.0\r\nContent-Type: application/json{auth}"),
            b"",
        )
        .0
    };
    assert_eq!(refresh(None), 401);
    assert_eq!(refresh(Some(&bearer(&rs))), 401, "a token without `api`");
    let ec2 = sign(ES256, "ec2", &k.ec2, &claims(cam.clone()));
    let mut rotated = k.jwks.clone();
    rotated.push(k.ec2_jwk.clone());
    *auth.s.jwks.lock().unwrap() = json!({"keys": rotated}).to_string();
    let fetches = *auth.s.jwks_fetches.lock().unwrap();
    assert_eq!(refresh(Some(&bearer(&api_token))), 200);
    assert_eq!(
        get_status(http, playlist, Some(&bearer(&ec2))).0,
        200,
        "the rotated key"
    );
    assert_eq!(*auth.s.jwks_fetches.lock().unwrap(), fetches + 1);

    let text = logs().text();
    assert!(!text.contains(&rs), "the log holds a token");
    assert!(!logs()
        .lines_with("WARN", &["authentication failed from 127.0.0.1", "JWT"])
        .is_empty());
}
