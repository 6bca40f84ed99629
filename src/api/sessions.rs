//! `/v3/<protocol sessions>/list|get|kick` (MediaMTX's `rtspconns`, `rtspsessions`,
//! `rtmpconns`, `hlssessions`, … plus `flvsessions`) and `/v3/hlsmuxers/list|get`.

use super::paths::{error, paginate, Page};
use super::ApiState;
use crate::core::{Session, SessionKind};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::time::SystemTime;

fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// An entry in MediaMTX's shape for its kind; byte counts under both the current
/// names and the deprecated `bytesReceived`/`bytesSent`.
pub(crate) fn entry_json(s: &Session) -> Value {
    let d = s.detail();
    let (rx, tx) = (s.bytes_in.get(), s.bytes_out.get());
    let mut v = json!({
        "id": s.id.to_string(),
        "created": time(s.created),
        "remoteAddr": s.remote.to_string(),
    });
    let o = v.as_object_mut().expect("an object");
    let linked = d.linked.map(|id| id.to_string());
    match s.kind {
        SessionKind::RtspConn | SessionKind::RtspsConn => {
            o.insert("session".into(), json!(linked));
            o.insert("tunnel".into(), json!("none"));
        }
        _ => {
            o.insert("state".into(), json!(d.state));
            o.insert("path".into(), json!(d.path));
            o.insert("query".into(), json!(d.query));
            o.insert("user".into(), json!(d.user));
            o.insert("userAgent".into(), json!(d.user_agent));
        }
    }
    match s.kind {
        SessionKind::RtspSession | SessionKind::RtspsSession => {
            o.insert("transport".into(), json!(d.transport));
            o.insert("profile".into(), json!(d.transport.as_ref().map(|_| "AVP")));
            o.insert(
                "conns".into(),
                json!(linked.into_iter().collect::<Vec<_>>()),
            );
        }
        SessionKind::HlsSession => {
            o.remove("state");
            o.insert("isCDN".into(), json!(false));
        }
        SessionKind::WebrtcSession => {
            let (local, remote) = d
                .candidates
                .map_or((String::new(), String::new()), |(l, r)| {
                    (l.to_string(), r.to_string())
                });
            o.insert(
                "peerConnectionEstablished".into(),
                json!(d.candidates.is_some()),
            );
            o.insert("localCandidate".into(), json!(local));
            o.insert("remoteCandidate".into(), json!(remote));
        }
        SessionKind::SrtConn => srt_stats(o, s.id),
        _ => {}
    }
    if matches!(
        s.kind,
        SessionKind::RtspSession | SessionKind::RtspsSession | SessionKind::WebrtcSession
    ) {
        let (packets, lost) = s.rtp_in.get();
        o.insert("inboundRTPPackets".into(), json!(packets));
        o.insert("inboundRTPPacketsLost".into(), json!(lost));
        o.insert("rtpPacketsReceived".into(), json!(packets));
        o.insert("rtpPacketsLost".into(), json!(lost));
    }
    if s.kind != SessionKind::HlsSession {
        o.insert("inboundBytes".into(), json!(rx));
        o.insert("bytesReceived".into(), json!(rx));
        o.insert("bytesSent".into(), json!(tx));
    }
    o.insert("outboundBytes".into(), json!(tx));
    v
}

/// libsrt's counters of an SRT connection under MediaMTX's names (zero before the
/// connection is up or after it ended).
fn srt_stats(o: &mut serde_json::Map<String, Value>, id: u64) {
    let st = crate::srt::stats(id).unwrap_or_default();
    let fields: [(&str, Value); 28] = [
        ("packetsSent", json!(st.pkt_sent_total)),
        ("packetsReceived", json!(st.pkt_recv_total)),
        ("packetsSentUnique", json!(st.pkt_sent_unique_total)),
        ("packetsReceivedUnique", json!(st.pkt_recv_unique_total)),
        ("packetsSendLoss", json!(st.pkt_snd_loss_total)),
        ("packetsReceivedLoss", json!(st.pkt_rcv_loss_total)),
        ("packetsRetrans", json!(st.pkt_retrans_total)),
        ("packetsReceivedRetrans", json!(st.pkt_rcv_retrans)),
        ("packetsSentACK", json!(st.pkt_sent_ack_total)),
        ("packetsReceivedACK", json!(st.pkt_recv_ack_total)),
        ("packetsSentNAK", json!(st.pkt_sent_nak_total)),
        ("packetsReceivedNAK", json!(st.pkt_recv_nak_total)),
        ("usSndDuration", json!(st.us_snd_duration_total)),
        ("packetsReceivedBelated", json!(st.pkt_rcv_belated)),
        ("packetsSendDrop", json!(st.pkt_snd_drop_total)),
        ("packetsReceivedDrop", json!(st.pkt_rcv_drop_total)),
        (
            "packetsReceivedUndecrypt",
            json!(st.pkt_rcv_undecrypt_total),
        ),
        ("bytesSentUnique", json!(st.byte_sent_unique_total)),
        ("bytesReceivedUnique", json!(st.byte_recv_unique_total)),
        ("bytesReceivedLoss", json!(st.byte_rcv_loss_total)),
        ("bytesRetrans", json!(st.byte_retrans_total)),
        ("bytesSendDrop", json!(st.byte_snd_drop_total)),
        ("bytesReceivedDrop", json!(st.byte_rcv_drop_total)),
        ("msRTT", json!(st.ms_rtt)),
        ("mbpsSendRate", json!(st.mbps_send_rate)),
        ("mbpsReceiveRate", json!(st.mbps_recv_rate)),
        ("mbpsLinkCapacity", json!(st.mbps_bandwidth)),
        ("msReceiveTsbPdDelay", json!(st.ms_rcv_tsbpd_delay)),
    ];
    for (k, v) in fields {
        o.insert(k.into(), v);
    }
}

fn bad_id() -> Response {
    error(StatusCode::BAD_REQUEST, "invalid id")
}

pub(super) fn list(s: &ApiState, kind: SessionKind, q: &Page) -> Response {
    let all: Vec<Value> = s
        .manager
        .sessions()
        .list(kind)
        .iter()
        .map(|e| entry_json(e))
        .collect();
    Json(paginate(all, q)).into_response()
}

pub(super) fn get(s: &ApiState, kind: SessionKind, id: &str) -> Response {
    let Ok(id) = id.parse() else {
        return bad_id();
    };
    match s.manager.sessions().get(kind, id) {
        Some(e) => Json(entry_json(&e)).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            &format!("{} not found", kind.api_name()),
        ),
    }
}

pub(super) fn kick(s: &ApiState, kind: SessionKind, id: &str) -> Response {
    let Ok(id) = id.parse() else {
        return bad_id();
    };
    if s.manager.sessions().kick(kind, id) {
        tracing::info!(kind = kind.api_name(), id, "kick requested through the API");
        StatusCode::OK.into_response()
    } else {
        error(
            StatusCode::NOT_FOUND,
            &format!("{} not found", kind.api_name()),
        )
    }
}

/// The kinds with routes, and whether they can be kicked (connections carry sessions:
/// those are kicked).
pub(super) fn kinds() -> impl Iterator<Item = (SessionKind, bool)> {
    SessionKind::ALL.into_iter().map(|k| (k, !k.is_conn()))
}

fn muxer_json(path: &str, m: &crate::hls::HlsMuxer) -> Value {
    let sent = m.bytes_sent();
    json!({
        "path": path,
        "created": time(m.created),
        "lastRequest": m.last_request().map(time),
        "outboundBytes": sent,
        "outboundFramesDiscarded": 0,
        "bytesSent": sent,
    })
}

fn muxers(s: &ApiState) -> Vec<(String, std::sync::Arc<crate::hls::HlsMuxer>)> {
    s.server
        .upgrade()
        .and_then(|srv| srv.hls())
        .map(|h| h.list())
        .unwrap_or_default()
}

pub(super) async fn muxers_list(State(s): State<ApiState>, Query(q): Query<Page>) -> Response {
    let all: Vec<Value> = muxers(&s).iter().map(|(p, m)| muxer_json(p, m)).collect();
    Json(paginate(all, &q)).into_response()
}

pub(super) async fn muxers_get(State(s): State<ApiState>, Path(name): Path<String>) -> Response {
    match muxers(&s).into_iter().find(|(p, _)| *p == name) {
        Some((p, m)) => Json(muxer_json(&p, &m)).into_response(),
        None => error(StatusCode::NOT_FOUND, "HLS muxer not found"),
    }
}
