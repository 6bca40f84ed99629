//! WHEP/WHIP by hand: browser-like SDP offers and the POST that sends them.

use std::net::SocketAddr;

const FINGERPRINT: &str = "sha-256 3A:96:6D:57:B2:C2:C7:61:A0:46:3E:1C:97:39:D3:F7:0A:88:A0:B1:EC:03:FB:10:A5:5D:3A:37:AB:DD:02:AA";

/// An offer with one receive-only media per `(kind, rtpmap and what follows)`.
pub fn offer(media: &[(&str, &str)]) -> String {
    let mut s = format!(
        "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE{}\r\na=msid-semantic: WMS\r\n",
        (0..media.len()).map(|i| format!(" {i}")).collect::<String>()
    );
    for (i, (kind, rtpmap)) in media.iter().enumerate() {
        s += &format!(
            "m={kind} 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=ice-options:trickle\r\na=fingerprint:{FINGERPRINT}\r\na=setup:actpass\r\na=mid:{i}\r\na=recvonly\r\na=rtcp-mux\r\na=rtpmap:96 {rtpmap}\r\n"
        );
    }
    s
}

/// A receive-only H.264 offer (Constrained Baseline), as any browser makes.
pub fn h264_offer() -> String {
    offer(&[(
        "video",
        "H264/90000\r\na=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
    )])
}

/// POSTs `body` to `path` of the WebRTC listener: (status, head, body).
pub fn post(web: SocketAddr, path: &str, content_type: &str, body: &str) -> (u16, String, String) {
    let (code, head, body) = super::http::request_from(
        None,
        web,
        &format!("POST {path} HTTP/1.0\r\nContent-Type: {content_type}"),
        body.as_bytes(),
    );
    (code, head, String::from_utf8_lossy(&body).into_owned())
}

/// The `Location` header of a response head.
pub fn location(head: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("location")
            .then(|| v.trim().to_string())
    })
}

/// `webrtc_read.mjs`'s output; panics with it when it isn't JSON.
pub fn stats(out: &str) -> serde_json::Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Whether `key` (`decoded`, `audioSamples`) rose in every second of the page's window.
pub fn rose(stats: &serde_json::Value, key: &str) -> bool {
    let v: Vec<u64> = stats[key]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
        .unwrap_or_default();
    v.len() > 1 && v.windows(2).all(|w| w[1] > w[0])
}
