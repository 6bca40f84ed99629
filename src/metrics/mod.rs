//! The Prometheus listener (`metrics`, `metricsAddress`): `GET /metrics` in the text
//! exposition format, built with prometheus-client from the live state at each scrape.
//! Names are MediaMTX's where it has the metric; bitrates, reader lags and drops,
//! source failures, transcode counters and reloads are ours.

use crate::config::Config;
use crate::core::{PathManager, SessionKind};
use crate::server::{ListenError, ServerInner};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Weak;
use tokio_util::sync::CancellationToken;

pub struct MetricsServer {
    pub local_addr: SocketAddr,
    pub(crate) task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct MetricsState {
    manager: PathManager,
    server: Weak<ServerInner>,
}

impl MetricsServer {
    pub async fn start(
        config: &Config,
        manager: PathManager,
        server: Weak<ServerInner>,
        listen: CancellationToken,
    ) -> Result<MetricsServer, ListenError> {
        let admit = manager.admission("metrics");
        let app = axum::Router::new()
            .fallback(scrape)
            .with_state(MetricsState { manager, server });
        let listener = crate::http::AppListener {
            what: "metrics",
            addr: config.metrics_address.0,
            tls: config.metrics_encryption.then_some((
                config.metrics_server_key.as_str(),
                config.metrics_server_cert.as_str(),
            )),
            write_timeout: config.write_timeout.0,
            limits: crate::http::serve::ServeLimits::of(config),
            admit,
        };
        let (local_addr, task) = crate::http::serve_app(listener, app, listen).await?;
        Ok(MetricsServer { local_addr, task })
    }
}

type Labels = Vec<(String, String)>;

/// Families by name, registered on first use.
struct Builder {
    registry: Registry,
    families: std::collections::HashMap<String, Family<Labels, Gauge>>,
}

impl Builder {
    fn new() -> Builder {
        Builder {
            registry: Registry::default(),
            families: Default::default(),
        }
    }

    /// Sets `name{labels}` to `v`. Every metric is a gauge, as MediaMTX's untyped
    /// values are read: a counter here would be renamed `<name>_total`.
    fn set(&mut self, name: &str, help: &str, labels: &[(&str, &str)], v: u64) {
        let family = self.families.entry(name.to_string()).or_insert_with(|| {
            let f = Family::<Labels, Gauge>::default();
            self.registry.register(name, help, f.clone());
            f
        });
        let labels: Labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        family
            .get_or_create(&labels)
            .set(i64::try_from(v).unwrap_or(i64::MAX));
    }
}

/// The prefix of a kind's metrics (`rtsp_sessions`, `rtmp_conns`, …).
fn prefix(kind: SessionKind) -> &'static str {
    match kind {
        SessionKind::RtspConn => "rtsp_conns",
        SessionKind::RtspsConn => "rtsps_conns",
        SessionKind::RtspSession => "rtsp_sessions",
        SessionKind::RtspsSession => "rtsps_sessions",
        SessionKind::RtmpConn => "rtmp_conns",
        SessionKind::RtmpsConn => "rtmps_conns",
        SessionKind::FlvSession => "flv_sessions",
        SessionKind::HlsSession => "hls_sessions",
        SessionKind::WebrtcSession => "webrtc_sessions",
        SessionKind::SrtConn => "srt_conns",
    }
}

/// libsrt's counters of one SRT connection, under MediaMTX's names.
fn srt_stats(b: &mut Builder, id: u64, l: &[(&str, &str)]) {
    let Some(st) = crate::srt::stats(id) else {
        return;
    };
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    let counters: [(&str, &str, u64); 9] = [
        (
            "packets_sent",
            "SRT data packets sent, retransmissions included",
            n(st.pkt_sent_total),
        ),
        (
            "packets_received",
            "SRT data packets received",
            n(st.pkt_recv_total),
        ),
        (
            "packets_send_loss",
            "SRT packets the peer reported lost",
            n(st.pkt_snd_loss_total.into()),
        ),
        (
            "packets_received_loss",
            "SRT packets found missing on arrival",
            n(st.pkt_rcv_loss_total.into()),
        ),
        (
            "packets_retrans",
            "SRT packets sent again",
            n(st.pkt_retrans_total.into()),
        ),
        (
            "packets_received_retrans",
            "SRT retransmitted packets received",
            n(st.pkt_rcv_retrans.into()),
        ),
        (
            "packets_send_drop",
            "SRT packets dropped unsent (too late)",
            n(st.pkt_snd_drop_total.into()),
        ),
        (
            "packets_received_drop",
            "SRT packets never recovered in time",
            n(st.pkt_rcv_drop_total.into()),
        ),
        (
            "packets_received_undecrypt",
            "SRT packets that failed to decrypt",
            n(st.pkt_rcv_undecrypt_total.into()),
        ),
    ];
    for (m, help, v) in counters {
        b.set(&format!("srt_conns_{m}"), help, l, v);
    }
    b.set(
        "srt_conns_ms_rtt",
        "SRT round-trip time, milliseconds",
        l,
        st.ms_rtt.max(0.0) as u64,
    );
}

/// The exposition text of everything live now.
pub fn render(manager: &PathManager, server: Option<&ServerInner>) -> String {
    let mut b = Builder::new();
    let mut names = manager.path_names();
    names.sort();
    for name in names {
        let Some(path) = manager.path(&name) else {
            continue;
        };
        let info = path.info();
        let state = if info.ready_time.is_some() {
            "ready"
        } else {
            "notReady"
        };
        let l = [("name", name.as_str()), ("state", state)];
        b.set("paths", "A path that is live (1)", &l, 1);
        let mut by_type = std::collections::BTreeMap::<&str, u64>::new();
        for (kind, _, _) in &info.readers {
            *by_type.entry(kind).or_default() += 1;
        }
        for (t, n) in by_type {
            let rl = [("name", name.as_str()), ("state", state), ("readerType", t)];
            b.set("paths_readers", "Readers of a path, by type", &rl, n);
        }
        let (rx, tx) = (info.bytes_received, info.bytes_sent);
        b.set(
            "paths_inbound_bytes",
            "Media bytes published to a path",
            &l,
            rx,
        );
        b.set(
            "paths_outbound_bytes",
            "Bytes a path's readers wrote to their clients",
            &l,
            tx,
        );
        b.set(
            "paths_bytes_received",
            "Deprecated name of paths_inbound_bytes",
            &l,
            rx,
        );
        b.set(
            "paths_bytes_sent",
            "Deprecated name of paths_outbound_bytes",
            &l,
            tx,
        );
        b.set(
            "paths_inbound_bitrate",
            "Bits per second published to a path over the last 5 s",
            &l,
            info.inbound_bitrate,
        );
        b.set(
            "paths_outbound_bitrate",
            "Bits per second written to a path's readers over the last 5 s",
            &l,
            info.outbound_bitrate,
        );
        let (lags, dropped) = path.reader_stats();
        b.set(
            "paths_reader_lags",
            "Times a reader fell behind the stream and skipped to a keyframe",
            &l,
            lags,
        );
        b.set(
            "paths_readers_dropped",
            "Readers disconnected for staying behind the stream",
            &l,
            dropped,
        );
        if let Some(s) = manager.source_status(&name) {
            b.set(
                "paths_source_failures",
                "Tries of a pulled source that failed in a row",
                &[("name", name.as_str())],
                s.failures as u64,
            );
        }
        if let Some(t) = manager.stage_status(&name) {
            let tl = [("name", name.as_str())];
            b.set(
                "transcode_dropped_units",
                "Units a transcode stage dropped",
                &tl,
                t.dropped_units,
            );
            b.set(
                "transcode_decode_errors",
                "Decode errors of a transcode stage",
                &tl,
                t.decode_errors,
            );
            b.set(
                "transcode_fallbacks",
                "Times a transcode stage fell back (GPU to software, or to copy)",
                &tl,
                t.fallbacks,
            );
        }
    }
    for kind in SessionKind::ALL {
        let name = prefix(kind);
        let [inbound, outbound, received, sent] = [
            "inbound_bytes",
            "outbound_bytes",
            "bytes_received",
            "bytes_sent",
        ]
        .map(|m| format!("{name}_{m}"));
        for s in manager.sessions().list(kind) {
            let d = s.detail();
            let (id, remote) = (s.id.to_string(), s.remote.to_string());
            let state = match d.state {
                crate::core::SessionState::Idle => "idle",
                crate::core::SessionState::Read => "read",
                crate::core::SessionState::Publish => "publish",
            };
            let mut l = vec![("id", id.as_str()), ("remoteAddr", remote.as_str())];
            if !kind.is_conn() {
                l.push(("path", d.path.as_str()));
                if kind != SessionKind::HlsSession {
                    l.push(("state", state));
                }
            }
            let (rx, tx) = (s.bytes_in.get(), s.bytes_out.get());
            b.set(name, "A live connection or session (1)", &l, 1);
            if kind != SessionKind::HlsSession {
                b.set(&inbound, "Bytes received from the client", &l, rx);
                b.set(&received, "Deprecated name of *_inbound_bytes", &l, rx);
                b.set(&sent, "Deprecated name of *_outbound_bytes", &l, tx);
            }
            b.set(&outbound, "Bytes sent to the client", &l, tx);
            if matches!(
                kind,
                SessionKind::RtspSession | SessionKind::RtspsSession | SessionKind::WebrtcSession
            ) {
                let (packets, lost) = s.rtp_in.get();
                let help = "RTP packets received from a publisher";
                b.set(&format!("{name}_inbound_rtp_packets"), help, &l, packets);
                let help = "RTP packets of a publisher found missing (after reordering)";
                b.set(&format!("{name}_inbound_rtp_packets_lost"), help, &l, lost);
            }
            if kind == SessionKind::SrtConn {
                srt_stats(&mut b, s.id, &l);
            }
        }
    }
    if let Some(srv) = server {
        if let Some(hls) = srv.hls() {
            for (path, m) in hls.list() {
                let l = [("name", path.as_str())];
                b.set("hls_muxers", "A running HLS muxer (1)", &l, 1);
                b.set(
                    "hls_muxers_outbound_bytes",
                    "Bytes of playlists, segments and parts served",
                    &l,
                    m.bytes_sent(),
                );
                b.set(
                    "hls_muxers_bytes_sent",
                    "Deprecated name of hls_muxers_outbound_bytes",
                    &l,
                    m.bytes_sent(),
                );
            }
        }
        let r = &srv.reloads;
        b.set(
            "config_reloads",
            "Config reloads applied (file, SIGHUP or API)",
            &[],
            r.applied.load(Ordering::Relaxed),
        );
        b.set(
            "config_reload_failures",
            "Config reloads that failed (did not load, or a listener did not restart)",
            &[],
            r.failed.load(Ordering::Relaxed),
        );
        b.set(
            "config_reload_last_success",
            "Whether the last reload succeeded (1) or not (0)",
            &[],
            u64::from(!r.last_failed.load(Ordering::Relaxed)),
        );
    }
    let mut out = String::new();
    // Writing into a String can't fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &b.registry);
    out
}

async fn scrape(
    State(s): State<MetricsState>,
    ConnectInfo(crate::http::conn::Peer(peer, _)): ConnectInfo<crate::http::conn::Peer>,
    req: Request,
) -> Response {
    let config = s.manager.config();
    let origin = req.headers().get(header::ORIGIN).cloned();
    let cors = crate::http::cors::allow_origin(&config.metrics_allow_origins, origin.as_ref());
    if req.method() == Method::OPTIONS {
        return crate::http::cors::preflight(cors, "GET, OPTIONS", "Authorization");
    }
    let mut resp = if !matches!(*req.method(), Method::GET | Method::HEAD) {
        StatusCode::METHOD_NOT_ALLOWED.into_response()
    } else if req.uri().path() != "/metrics" {
        StatusCode::NOT_FOUND.into_response()
    } else {
        let asked = crate::http::auth::Asked {
            ip: crate::http::auth::client_ip(
                peer.ip(),
                req.headers(),
                &config.metrics_trusted_proxies,
            ),
            headers: req.headers(),
            query: req.uri().query().unwrap_or_default(),
            action: crate::auth::Action::Metrics,
            path: "",
            protocol: "metrics",
        };
        match crate::http::auth::check(&s.manager, asked).await {
            Err(refused) => refused,
            Ok(_) => {
                let server = s.server.upgrade();
                let text = render(&s.manager, server.as_deref());
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    text,
                )
                    .into_response()
            }
        }
    };
    if let Some(o) = cors {
        resp.headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
    }
    resp
}
