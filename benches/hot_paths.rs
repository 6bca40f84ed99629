//! Per-unit hot paths: RTP packetize/depacketize per codec, FLV tag build, RTMP
//! chunking, and the fan-out itself (one unit to N readers, in memory). Run with
//! `cargo bench`; figures in BENCHMARKS.md. fMP4 muxing joins when HLS lands.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use mediarouter::core::{Codec, Payload, Stream, StreamConfig, Track, Unit};
use mediarouter::format::flv::mux::{self, FlvTag};
use mediarouter::format::mpegts::TsMuxer;
use mediarouter::format::rtp::{self, Depacketizer, Packetizer, RtpFormatParams};
use mediarouter::rtmp::chunk::{write_message, MessageRef};
use mediarouter::rtsp::Interleaved;
use std::hint::black_box;

/// A P-frame of a 2 Mbit/s 30 fps stream (~8 KB) and a keyframe (~60 KB).
const P_FRAME: usize = 8 * 1024;
const KEYFRAME: usize = 60 * 1024;

fn h264() -> Track {
    Track::new(
        Codec::H264 {
            sps: Some(Bytes::from_static(&[0x67, 0x64, 0, 0x1f, 0xac])),
            pps: Some(Bytes::from_static(&[0x68, 0xee, 0x3c, 0x80])),
        },
        90000,
    )
}

fn h265() -> Track {
    Track::new(
        Codec::H265 {
            vps: None,
            sps: None,
            pps: None,
        },
        90000,
    )
}

fn aac() -> Track {
    Track::new(
        Codec::Aac {
            config: Bytes::from_static(&[0x11, 0x90]),
            sample_rate: 48000,
            channels: 2,
        },
        48000,
    )
}

fn video_unit(track: usize, h265: bool, size: usize, keyframe: bool) -> Unit {
    let mut nal = vec![0xab; size];
    nal[0] = match (h265, keyframe) {
        (false, true) => 0x65,
        (false, false) => 0x41,
        (true, true) => 19 << 1,
        (true, false) => 1 << 1,
    };
    if h265 {
        nal[1] = 1;
    }
    Unit {
        track,
        pts: 3000,
        dts: 3000,
        keyframe,
        payload: Payload::Nalus(vec![Bytes::from(nal)]),
    }
}

fn audio_unit(track: usize) -> Unit {
    Unit {
        track,
        pts: 1024,
        dts: 1024,
        keyframe: true,
        payload: Payload::Frame(Bytes::from(vec![0x21; 380])),
    }
}

fn rtp(c: &mut Criterion) {
    let mut g = c.benchmark_group("rtp");
    let cases = [
        ("h264_pframe", h264(), video_unit(0, false, P_FRAME, false)),
        (
            "h264_keyframe",
            h264(),
            video_unit(0, false, KEYFRAME, true),
        ),
        ("h265_pframe", h265(), video_unit(0, true, P_FRAME, false)),
        ("aac_frame", aac(), audio_unit(0)),
    ];
    for (name, track, unit) in &cases {
        g.throughput(Throughput::Bytes(unit.payload.len() as u64));
        let mut p = Packetizer::new(&track.codec, 96, rtp::DEFAULT_MAX_PAYLOAD);
        g.bench_function(format!("packetize/{name}"), |b| {
            b.iter(|| black_box(p.packetize(black_box(unit))))
        });
        let packets = Packetizer::new(&track.codec, 96, rtp::DEFAULT_MAX_PAYLOAD).packetize(unit);
        let mut fmtp = RtpFormatParams::new();
        if matches!(track.codec, Codec::Aac { .. }) {
            for (k, v) in [
                ("sizelength", "13"),
                ("indexlength", "3"),
                ("indexdeltalength", "3"),
            ] {
                fmtp.insert(k.into(), v.into());
            }
        }
        let mut d = Depacketizer::new(&track.codec, &fmtp);
        let mut out = Vec::new();
        g.bench_function(format!("depacketize/{name}"), |b| {
            b.iter(|| {
                for p in &packets {
                    let pkt = rtp::parse(p).unwrap();
                    d.push(&pkt, &mut out).unwrap();
                }
                black_box(out.drain(..).count())
            })
        });
    }
    g.finish();
}

fn muxing(c: &mut Criterion) {
    let mut g = c.benchmark_group("mux");
    let track = h264();
    let unit = video_unit(0, false, P_FRAME, false);
    g.throughput(Throughput::Bytes(P_FRAME as u64));
    g.bench_function("flv_tag/h264_pframe", |b| {
        b.iter(|| black_box(mux::unit_tag(black_box(&track), black_box(&unit))))
    });
    let mut ts = TsMuxer::new(&[h264(), aac()]).unwrap();
    let mut out_ts = Vec::with_capacity(2 * P_FRAME);
    g.bench_function("mpegts/h264_pframe", |b| {
        b.iter(|| {
            out_ts.clear();
            ts.write(black_box(&unit), &mut out_ts);
            black_box(out_ts.len())
        })
    });
    let audio = audio_unit(1);
    g.bench_function("mpegts/aac_frame", |b| {
        b.iter(|| {
            out_ts.clear();
            ts.write(black_box(&audio), &mut out_ts);
            black_box(out_ts.len())
        })
    });
    let tag = mux::unit_tag(&track, &unit).unwrap();
    let body = &tag[11..tag.len() - 4];
    let mut out = Vec::with_capacity(2 * P_FRAME);
    g.bench_function("rtmp_chunks/h264_pframe_4096", |b| {
        b.iter(|| {
            out.clear();
            write_message(
                &mut out,
                6,
                &MessageRef {
                    timestamp: 100,
                    type_id: 9,
                    stream_id: 1,
                    payload: black_box(body),
                },
                4096,
            );
            black_box(out.len())
        })
    });
    g.finish();
}

/// One P-frame written to a stream with `n` readers, each taking it and the RTMP,
/// RTSP-interleaved and FLV forms a connection would send (built once, shared).
fn fanout(c: &mut Criterion) {
    let mut g = c.benchmark_group("fanout");
    for n in [1usize, 100, 1000] {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("unit_to_{n}_readers"), |b| {
            b.iter_batched(
                || {
                    let s = Stream::new(vec![h264(), aac()], StreamConfig::default());
                    s.write(video_unit(0, false, KEYFRAME, true));
                    let mut readers: Vec<_> = (0..n).map(|_| s.subscribe().unwrap()).collect();
                    for r in &mut readers {
                        while let Ok(Some(_)) = r.try_next() {}
                    }
                    (s, readers)
                },
                |(s, mut readers)| {
                    s.write(video_unit(0, false, P_FRAME, false));
                    let mut bytes = 0;
                    for r in &mut readers {
                        while let Ok(Some(item)) = r.try_next() {
                            if let mediarouter::core::StreamItem::Unit(e) = item {
                                bytes += e.form::<Interleaved>().len();
                                bytes += e.form::<FlvTag>().as_ref().map_or(0, |t| t.len());
                            }
                        }
                    }
                    black_box(bytes)
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

/// A read of `cam` from 10.0.0.1 with `creds`.
fn read_cam(creds: &mediarouter::auth::Credentials) -> mediarouter::auth::Request<'_> {
    mediarouter::auth::Request {
        ip: "10.0.0.1".parse().unwrap(),
        action: mediarouter::auth::Action::Read,
        path: "cam",
        creds,
        method: "",
        protocol: "bench",
        query: "",
        id: None,
        user_agent: "",
    }
}

/// The credential check a session pays once at its start: anonymous, plain, sha256,
/// argon2 (the default parameters), and argon2 remembered (an HLS segment request).
fn auth(c: &mut Criterion) {
    use futures_util::FutureExt;
    use mediarouter::auth::{Credentials, Gate, InternalUser, Request};
    // The user list never waits: its check completes at the first poll.
    let check = |gate: &Gate, cfg: &mediarouter::config::Config, req: &Request<'_>| {
        gate.check(cfg, req)
            .now_or_never()
            .expect("internal check is ready")
    };
    let mut g = c.benchmark_group("auth");
    g.sample_size(20);
    let argon = mediarouter::auth::hash_password("s3cret");
    let sha = {
        use base64::Engine;
        use sha2::Digest;
        let d = sha2::Sha256::digest(b"s3cret");
        format!(
            "sha256:{}",
            base64::engine::general_purpose::STANDARD.encode(d)
        )
    };
    for (name, pass) in [
        ("plain", "s3cret"),
        ("sha256", sha.as_str()),
        ("argon2", argon.as_str()),
    ] {
        let yaml = format!("- user: u\n  pass: \"{pass}\"\n  permissions: [{{action: read}}]\n");
        let users: Vec<InternalUser> = serde_saphyr::from_str(&yaml).unwrap();
        let users = mediarouter::config::Config {
            auth_internal_users: users,
            ..Default::default()
        };
        let creds = Credentials::Basic {
            user: "u".into(),
            pass: "s3cret".into(),
        };
        let req = read_cam(&creds);
        g.bench_function(format!("check/{name}"), |b| {
            b.iter_batched(
                Gate::default,
                |gate| check(&gate, &users, &req),
                BatchSize::SmallInput,
            )
        });
        if name == "argon2" {
            let gate = Gate::default();
            let _ = check(&gate, &users, &req);
            g.bench_function("check/argon2_remembered", |b| {
                b.iter(|| check(&gate, &users, &req))
            });
        }
    }
    let users = mediarouter::config::Config::default();
    let none = Credentials::None;
    let req = read_cam(&none);
    let gate = Gate::default();
    g.bench_function("check/anonymous_default_users", |b| {
        b.iter(|| check(&gate, &users, &req))
    });
    g.finish();
}

/// `authMethod: jwt` (ES256 and EdDSA tokens, the key set already fetched) and
/// `authMethod: http` (a POST to an auth server on loopback, a fresh connection each),
/// against a JWKS and auth server in this process.
fn auth_external(c: &mut Criterion) {
    use base64::Engine;
    use mediarouter::auth::{Credentials, Gate};
    use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let rng = ring::rand::SystemRandom::new();
    let alg = &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let ec8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    let ec = EcdsaKeyPair::from_pkcs8(alg, ec8.as_ref(), &rng).unwrap();
    let ed8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let ed = Ed25519KeyPair::from_pkcs8(ed8.as_ref()).unwrap();
    let point = ec.public_key().as_ref();
    let jwks = serde_json::json!({"keys": [
        {"kty": "EC", "kid": "ec", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65])},
        {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": b64(ed.public_key().as_ref())},
    ]})
    .to_string();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/jwks", axum::routing::get(move || async move { jwks }))
        .route("/auth", axum::routing::post(|| async { "" }));
    rt.spawn(async move { axum::serve(listener, app).await });
    let claims = serde_json::json!({"sub": "u", "exp": 4_000_000_000u64,
        "mediamtx_permissions": [{"action": "read"}]});
    let sign = |alg, kid: &str, key| {
        let h = jsonwebtoken::Header {
            alg,
            kid: Some(kid.into()),
            ..Default::default()
        };
        jsonwebtoken::encode(&h, &claims, &key).unwrap()
    };
    let tokens = [
        (
            "jwt_es256",
            sign(
                jsonwebtoken::Algorithm::ES256,
                "ec",
                jsonwebtoken::EncodingKey::from_ec_der(ec8.as_ref()),
            ),
        ),
        (
            "jwt_eddsa",
            sign(
                jsonwebtoken::Algorithm::EdDSA,
                "ed",
                jsonwebtoken::EncodingKey::from_ed_der(ed8.as_ref()),
            ),
        ),
    ];
    let jwt_cfg = mediarouter::config::Config::parse(
        &format!("authMethod: jwt\nauthJWTJWKS: http://{addr}/jwks\n"),
        "bench",
    )
    .unwrap();
    let mut g = c.benchmark_group("auth");
    g.sample_size(20);
    let gate = Gate::default();
    for (name, token) in &tokens {
        let creds = Credentials::Token(token.clone());
        let req = read_cam(&creds);
        assert!(rt.block_on(gate.check(&jwt_cfg, &req)).is_ok(), "{name}");
        g.bench_function(format!("check/{name}"), |b| {
            b.iter(|| rt.block_on(gate.check(&jwt_cfg, &req)))
        });
    }
    let http_cfg = mediarouter::config::Config::parse(
        &format!("authMethod: http\nauthHTTPAddress: http://{addr}/auth\n"),
        "bench",
    )
    .unwrap();
    let creds = Credentials::Basic {
        user: "u".into(),
        pass: "p".into(),
    };
    let req = read_cam(&creds);
    // A fresh gate each time: a remembered success would skip the call.
    g.bench_function("check/http_server", |b| {
        b.iter_batched(
            Gate::default,
            |gate| assert!(rt.block_on(gate.check(&http_cfg, &req)).is_ok()),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, rtp, muxing, fanout, auth, auth_external);
criterion_main!(benches);
