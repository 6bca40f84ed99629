//! Bounds on what the network-fed parsers accept (the `maxRequestHeaderSize`, …,
//! `amfMaxElements` config keys). Parsers take them as plain numbers so they stay
//! sans-io and free of the config; `Default` is the keys' defaults.

/// What one request, message or value may hold before its connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputLimits {
    /// An RTSP or HTTP request's line and headers, in bytes (`maxRequestHeaderSize`).
    pub request_head: usize,
    /// Header lines in an RTSP or HTTP request (`maxRequestHeaders`).
    pub request_headers: usize,
    /// An RTSP request's body: an ANNOUNCE's SDP (`rtspMaxBodySize`).
    pub rtsp_body: usize,
    /// Media sections in an SDP (`sdpMaxMedias`).
    pub sdp_medias: usize,
    /// The largest chunk size an RTMP peer may set (`rtmpMaxChunkSize`).
    pub rtmp_chunk_size: u32,
    /// An RTMP message: a video frame, a command (`rtmpMaxMessageSize`).
    pub rtmp_message: usize,
    /// Nesting of AMF0 objects and arrays (`amfMaxDepth`).
    pub amf_depth: usize,
    /// Values in one AMF0 message, nested ones included (`amfMaxElements`).
    pub amf_elements: usize,
}

impl Default for InputLimits {
    fn default() -> Self {
        InputLimits {
            request_head: 32 * 1024,
            request_headers: 100,
            rtsp_body: 64 * 1024,
            sdp_medias: 16,
            rtmp_chunk_size: 16 << 20,
            rtmp_message: 8 << 20,
            amf_depth: 16,
            amf_elements: 65_536,
        }
    }
}
