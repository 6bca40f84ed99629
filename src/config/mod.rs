//! Typed configuration (`mediarouter.yml`): keys, defaults, validation with line:column
//! errors, the file search order and path-name resolution.

mod address;
mod duration;
pub mod edit;
pub mod env;
pub mod mediamtx;
pub mod node;
mod path;
pub mod record;
mod text;
pub mod transcode;
pub mod watch;
pub mod webhook;
mod webrtc;

pub use address::{parse_address, ListenAddress, OptionalAddress};
pub use duration::{parse_duration, ConfDuration};
pub use path::{validate_path_name, PathConf, PathPattern, Source, SourceTransport};
pub use webrtc::IceServer;

pub use crate::format::limits::InputLimits;
use indexmap::IndexMap;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A value written as a number (`5000000`) or a string with a unit (`5M`), as text.
pub(crate) fn number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        N(u64),
        S(String),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::N(n) => n.to_string(),
        Raw::S(s) => s,
    })
}

/// The documented default configuration, embedded in the binary.
pub const DEFAULT_CONFIG: &str = include_str!("../../mediarouter.yml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RtspTransport {
    Udp,
    /// RTP to a multicast group per track, sent once whatever the number of readers.
    Multicast,
    Tcp,
}

/// The HLS muxer's output (`hlsVariant`), as in MediaMTX.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
pub enum HlsVariant {
    /// MPEG-TS segments.
    #[serde(rename = "mpegts")]
    Mpegts,
    /// fMP4 segments.
    #[serde(rename = "fmp4")]
    Fmp4,
    /// fMP4 segments and parts, blocking playlist reload (Low-Latency HLS).
    #[serde(rename = "lowLatency")]
    LowLatency,
}

/// `rtspEncryption` / `rtmpEncryption`, as MediaMTX: `no`, `optional`, `strict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    No,
    Optional,
    Strict,
}

impl<'de> Deserialize<'de> for Encryption {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Encryption;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("no, optional or strict")
            }
            // YAML 1.1 reads an unquoted `no` as false.
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Encryption, E> {
                Ok(if v {
                    Encryption::Strict
                } else {
                    Encryption::No
                })
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Encryption, E> {
                match v {
                    "no" | "false" => Ok(Encryption::No),
                    "optional" => Ok(Encryption::Optional),
                    "strict" | "yes" | "true" => Ok(Encryption::Strict),
                    _ => Err(E::custom(format!("{v:?}: want no, optional or strict"))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    Internal,
    Http,
    Jwt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RtspAuthMethod {
    Basic,
    Digest,
}

/// A queue size: a positive number of units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSize(pub usize);

impl<'de> Deserialize<'de> for QueueSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u32::deserialize(d)?;
        if n == 0 || n > 1 << 20 {
            return Err(serde::de::Error::custom(format!(
                "invalid queue size {n}: must be between 1 and 1048576"
            )));
        }
        Ok(QueueSize(n as usize))
    }
}

/// `multicastIPRange`: an IPv4 multicast network in CIDR notation (`224.1.0.0/16`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MulticastRange {
    pub base: std::net::Ipv4Addr,
    pub prefix: u8,
}

impl MulticastRange {
    /// Addresses of the range usable as groups (the network address itself excluded).
    pub fn hosts(&self) -> impl Iterator<Item = std::net::Ipv4Addr> {
        let base = u32::from(self.base);
        let size = 1u64 << (32 - u32::from(self.prefix));
        (1..size.min(1 << 20)).map(move |i| std::net::Ipv4Addr::from(base + i as u32))
    }
}

impl std::str::FromStr for MulticastRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (ip, prefix) = s.split_once('/').ok_or_else(|| {
            format!("invalid multicast range {s:?}: want CIDR, e.g. 224.1.0.0/16")
        })?;
        let ip: std::net::Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("invalid multicast range {s:?}: not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| (4..=31).contains(p))
            .ok_or_else(|| format!("invalid multicast range {s:?}: prefix must be 4 to 31"))?;
        let mask = u32::MAX << (32 - u32::from(prefix));
        let base = std::net::Ipv4Addr::from(u32::from(ip) & mask);
        if !base.is_multicast() {
            return Err(format!("invalid multicast range {s:?}: not in 224.0.0.0/4"));
        }
        Ok(MulticastRange { base, prefix })
    }
}

impl<'de> Deserialize<'de> for MulticastRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Default `writeMerge`, in milliseconds: under a 30 fps frame interval, so up to
/// 40 fps every frame goes out as it arrives, and at 50–60 fps two frames share a
/// write; either way the added latency stays under the 30 ms p95 of issue 19's goal.
const MERGE_MS: u64 = 25;

/// Default `maxConnections`: far above any one machine's real audience (2000 readers
/// of a stream cost a core here), far below the 65536 descriptors the packaged unit
/// allows, so a flood is refused before the server runs out of files to record into.
pub const DEFAULT_MAX_CONNECTIONS: usize = 20_000;

/// Unknown keys are found by the key check (`mediamtx::check`), which knows MediaMTX's.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Config {
    pub log_level: LogLevel,
    pub read_timeout: ConfDuration,
    pub write_timeout: ConfDuration,
    pub write_queue_size: QueueSize,
    /// Largest RTP packet sent (header included), as MediaMTX's key.
    pub udp_max_payload_size: u32,
    /// Kernel receive buffer of the UDP sockets (RTSP RTP/RTCP, WebRTC); 0: the OS's.
    pub udp_read_buffer_size: u32,
    /// Open TCP connections the server accepts over every listener (0: no limit).
    pub max_connections: usize,
    /// Open TCP connections one client address may have (0: no limit).
    #[serde(rename = "maxConnectionsPerIP")]
    pub max_connections_per_ip: usize,
    /// An RTSP or HTTP request's line and headers, in bytes.
    pub max_request_header_size: usize,
    /// Header lines in an RTSP or HTTP request.
    pub max_request_headers: usize,
    /// An RTSP request's body (an ANNOUNCE's SDP), in bytes.
    pub rtsp_max_body_size: usize,
    /// Media sections in an SDP (ANNOUNCE, a pulled source's DESCRIBE).
    pub sdp_max_medias: usize,
    /// The largest chunk size an RTMP peer may set.
    pub rtmp_max_chunk_size: u32,
    /// An RTMP message (a video frame, a command), in bytes.
    pub rtmp_max_message_size: usize,
    /// Nesting of AMF0 objects and arrays in an RTMP command or FLV script data.
    pub amf_max_depth: usize,
    /// Values in one AMF0 message, nested ones included.
    pub amf_max_elements: usize,
    /// HTTP requests one connection may make before it is closed (0: no limit).
    pub http_max_requests_per_connection: usize,
    /// The host a client named (RTMP `tcUrl` or `?vhost=`, HTTP `Host`) prefixes the
    /// path (SRS's vhosts).
    pub path_vhosts: bool,
    /// Longest media waits to be merged into one write per reader (SRS's merged write).
    pub write_merge: ConfDuration,
    /// While an RTSP or RTMP connection is open (`MTX_CONN_TYPE`, `MTX_CONN_ID`).
    pub run_on_connect: String,
    pub run_on_connect_restart: bool,
    /// When it closes.
    pub run_on_disconnect: String,

    pub rtsp: bool,
    pub rtsp_transports: Vec<RtspTransport>,
    pub rtsp_address: ListenAddress,
    pub rtp_address: ListenAddress,
    pub rtcp_address: ListenAddress,
    /// Multicast groups are allocated from this range, one per track of a read path.
    #[serde(rename = "multicastIPRange")]
    pub multicast_ip_range: MulticastRange,
    /// Destination ports of multicast RTP and RTCP.
    #[serde(rename = "multicastRTPPort")]
    pub multicast_rtp_port: u16,
    #[serde(rename = "multicastRTCPPort")]
    pub multicast_rtcp_port: u16,
    /// `no`: RTSP only; `optional`: RTSP and RTSPS; `strict`: RTSPS only (TCP).
    pub rtsp_encryption: Encryption,
    pub rtsps_address: ListenAddress,
    pub rtsp_server_key: String,
    pub rtsp_server_cert: String,

    pub rtmp: bool,
    pub rtmp_address: ListenAddress,
    /// `no`: plain RTMP only; `optional`: RTMP and RTMPS; `strict`: RTMPS only.
    pub rtmp_encryption: Encryption,
    pub rtmps_address: ListenAddress,
    pub rtmp_server_key: String,
    pub rtmp_server_cert: String,

    /// The HTTP media listener: HTTP-FLV, HLS and player pages.
    pub hls: bool,
    pub hls_address: ListenAddress,
    /// Values for `Access-Control-Allow-Origin`; `*` allows every page.
    pub hls_allow_origins: Vec<String>,
    /// Segments an HLS playlist lists (older ones are freed).
    pub hls_segment_count: usize,
    /// Shortest HLS segment; segments end on the first keyframe after it.
    pub hls_segment_duration: ConfDuration,
    /// An HLS muxer stops this long after its last request.
    pub hls_muxer_close_after: ConfDuration,
    pub hls_variant: HlsVariant,
    /// Longest LL-HLS part.
    pub hls_part_duration: ConfDuration,
    /// Mux every stream from its start, not from the first HLS request.
    pub hls_always_remux: bool,
    /// Also write segments and playlists under this directory (empty: don't).
    pub hls_directory: String,
    /// Serve the HTTP media listener over TLS only (https://), with this key and chain
    /// (PEM; read again when the files change).
    pub hls_encryption: bool,
    pub hls_server_key: String,
    pub hls_server_cert: String,
    /// Proxies whose `X-Forwarded-For` names the client (for auth and logs).
    pub hls_trusted_proxies: Vec<crate::auth::IpNetwork>,

    /// `internal` (the user list), `http` (ask an external server) or `jwt` (tokens
    /// signed by an identity server whose keys are at `authJWTJWKS`).
    pub auth_method: AuthMethod,
    pub auth_internal_users: Vec<crate::auth::InternalUser>,
    /// `authMethod: http`: the URL POSTed MediaMTX's JSON for each check; 2xx allows.
    #[serde(rename = "authHTTPAddress")]
    pub auth_http_address: String,
    /// SHA-256 of the auth server's certificate, for a self-signed `https://` one.
    #[serde(rename = "authHTTPFingerprint")]
    pub auth_http_fingerprint: Option<crate::tls::Fingerprint>,
    /// Requests these permissions cover are allowed without asking the server.
    #[serde(rename = "authHTTPExclude")]
    pub auth_http_exclude: Vec<crate::auth::Permission>,
    /// `authMethod: jwt`: where the identity server's public keys (a JWK set) are.
    #[serde(rename = "authJWTJWKS")]
    pub auth_jwt_jwks: String,
    #[serde(rename = "authJWTJWKSFingerprint")]
    pub auth_jwt_jwks_fingerprint: Option<crate::tls::Fingerprint>,
    /// The claim that holds the token's permissions.
    #[serde(rename = "authJWTClaimKey")]
    pub auth_jwt_claim_key: String,
    #[serde(rename = "authJWTExclude")]
    pub auth_jwt_exclude: Vec<crate::auth::Permission>,
    /// Expected `iss` and `aud`; empty: not checked.
    #[serde(rename = "authJWTIssuer")]
    pub auth_jwt_issuer: String,
    #[serde(rename = "authJWTAudience")]
    pub auth_jwt_audience: String,
    /// Deprecated in MediaMTX: also take `?token=` / `?jwt=` on HTTP (RTSP and RTMP
    /// always take them, having no other place for a token).
    #[serde(rename = "authJWTInHTTPQuery")]
    pub auth_jwt_in_http_query: bool,
    /// How RTSP clients may send credentials: `basic`, `digest` (MD5, RFC 2617).
    pub rtsp_auth_methods: Vec<RtspAuthMethod>,

    /// The control API.
    pub api: bool,
    pub api_address: ListenAddress,
    pub api_encryption: bool,
    pub api_server_key: String,
    pub api_server_cert: String,
    /// Origins a browser page may call the API from (`*`: any; `http://*.example.com`).
    /// State-changing routes also need a JSON body, so a form can't reach them.
    pub api_allow_origins: Vec<String>,
    /// Proxies whose `X-Forwarded-For` names the client (for auth and logs).
    pub api_trusted_proxies: Vec<crate::auth::IpNetwork>,
    /// Config writes through the API are saved to the config file (mediarouter's own
    /// key; MediaMTX keeps them in memory only).
    pub api_persist: bool,

    /// WebRTC: WHEP readers and WHIP publishers (HTTP signalling and pages on
    /// `webrtcAddress`, media on one UDP port for every session).
    pub webrtc: bool,
    pub webrtc_address: ListenAddress,
    pub webrtc_encryption: bool,
    pub webrtc_server_key: String,
    pub webrtc_server_cert: String,
    pub webrtc_allow_origins: Vec<String>,
    pub webrtc_trusted_proxies: Vec<crate::auth::IpNetwork>,
    /// The UDP port ICE and media use; blank: none (no session can connect).
    #[serde(rename = "webrtcLocalUDPAddress")]
    pub webrtc_local_udp_address: OptionalAddress,
    /// Offer the addresses of the host's interfaces as candidates.
    #[serde(rename = "webrtcIPsFromInterfaces")]
    pub webrtc_ips_from_interfaces: bool,
    /// Only these interfaces (by name); empty: all.
    #[serde(rename = "webrtcIPsFromInterfacesList")]
    pub webrtc_ips_from_interfaces_list: Vec<String>,
    /// More addresses or host names to offer (NAT, Docker).
    pub webrtc_additional_hosts: Vec<String>,
    /// STUN/TURN servers handed to clients.
    #[serde(rename = "webrtcICEServers2")]
    pub webrtc_ice_servers2: Vec<IceServer>,
    /// A session that is not connected (ICE and DTLS) this long after its offer ends.
    pub webrtc_handshake_timeout: ConfDuration,

    /// SRT publishers and readers (MPEG-TS), named by stream id.
    pub srt: bool,
    pub srt_address: ListenAddress,

    /// Prometheus metrics (`GET /metrics`).
    pub metrics: bool,
    pub metrics_address: ListenAddress,
    pub metrics_encryption: bool,
    pub metrics_server_key: String,
    pub metrics_server_cert: String,
    pub metrics_allow_origins: Vec<String>,
    pub metrics_trusted_proxies: Vec<crate::auth::IpNetwork>,

    /// The playback server: lists and serves recordings (`/list`, `/get`).
    pub playback: bool,
    pub playback_address: ListenAddress,
    pub playback_encryption: bool,
    pub playback_server_key: String,
    pub playback_server_cert: String,
    pub playback_allow_origins: Vec<String>,
    pub playback_trusted_proxies: Vec<crate::auth::IpNetwork>,

    /// Settings every path entry starts from (merged into `paths` at load).
    pub path_defaults: Option<PathConf>,
    pub paths: IndexMap<PathPattern, Option<PathConf>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            log_level: LogLevel::Info,
            read_timeout: ConfDuration::secs(10),
            write_timeout: ConfDuration::secs(10),
            write_queue_size: QueueSize(512),
            udp_max_payload_size: 1452,
            udp_read_buffer_size: 0,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: 0,
            max_request_header_size: InputLimits::default().request_head,
            max_request_headers: InputLimits::default().request_headers,
            rtsp_max_body_size: InputLimits::default().rtsp_body,
            sdp_max_medias: InputLimits::default().sdp_medias,
            rtmp_max_chunk_size: InputLimits::default().rtmp_chunk_size,
            rtmp_max_message_size: InputLimits::default().rtmp_message,
            amf_max_depth: InputLimits::default().amf_depth,
            amf_max_elements: InputLimits::default().amf_elements,
            http_max_requests_per_connection: 1000,
            path_vhosts: false,
            write_merge: ConfDuration(std::time::Duration::from_millis(MERGE_MS)),
            run_on_connect: String::new(),
            run_on_connect_restart: false,
            run_on_disconnect: String::new(),
            rtsp: true,
            rtsp_transports: vec![
                RtspTransport::Udp,
                RtspTransport::Multicast,
                RtspTransport::Tcp,
            ],
            rtsp_address: ListenAddress(([0, 0, 0, 0], 8554).into()),
            rtp_address: ListenAddress(([0, 0, 0, 0], 8000).into()),
            rtcp_address: ListenAddress(([0, 0, 0, 0], 8001).into()),
            multicast_ip_range: MulticastRange {
                base: std::net::Ipv4Addr::new(224, 1, 0, 0),
                prefix: 16,
            },
            multicast_rtp_port: 8002,
            multicast_rtcp_port: 8003,
            rtsp_encryption: Encryption::No,
            rtsps_address: ListenAddress(([0, 0, 0, 0], 8322).into()),
            rtsp_server_key: "server.key".into(),
            rtsp_server_cert: "server.crt".into(),
            rtmp: true,
            rtmp_address: ListenAddress(([0, 0, 0, 0], 1935).into()),
            rtmp_encryption: Encryption::No,
            rtmps_address: ListenAddress(([0, 0, 0, 0], 1936).into()),
            rtmp_server_key: "server.key".into(),
            rtmp_server_cert: "server.crt".into(),
            hls: true,
            hls_address: ListenAddress(([0, 0, 0, 0], 8888).into()),
            hls_allow_origins: vec!["*".to_string()],
            hls_segment_count: 7,
            hls_segment_duration: ConfDuration::secs(1),
            hls_muxer_close_after: ConfDuration::secs(60),
            hls_variant: HlsVariant::LowLatency,
            hls_part_duration: ConfDuration(std::time::Duration::from_millis(200)),
            hls_always_remux: false,
            hls_directory: String::new(),
            hls_encryption: false,
            hls_server_key: "server.key".into(),
            hls_server_cert: "server.crt".into(),
            hls_trusted_proxies: Vec::new(),
            auth_method: AuthMethod::Internal,
            auth_internal_users: crate::auth::default_users(),
            auth_http_address: String::new(),
            auth_http_fingerprint: None,
            auth_http_exclude: Vec::new(),
            auth_jwt_jwks: String::new(),
            auth_jwt_jwks_fingerprint: None,
            auth_jwt_claim_key: "mediamtx_permissions".into(),
            auth_jwt_exclude: Vec::new(),
            auth_jwt_issuer: String::new(),
            auth_jwt_audience: String::new(),
            auth_jwt_in_http_query: false,
            rtsp_auth_methods: vec![RtspAuthMethod::Basic],
            api: false,
            api_address: ListenAddress(([0, 0, 0, 0], 9997).into()),
            api_encryption: false,
            api_server_key: "server.key".into(),
            api_server_cert: "server.crt".into(),
            api_allow_origins: vec!["*".to_string()],
            api_trusted_proxies: Vec::new(),
            api_persist: true,
            webrtc: true,
            webrtc_address: ListenAddress(([0, 0, 0, 0], 8889).into()),
            webrtc_encryption: false,
            webrtc_server_key: "server.key".into(),
            webrtc_server_cert: "server.crt".into(),
            webrtc_allow_origins: vec!["*".to_string()],
            webrtc_trusted_proxies: Vec::new(),
            webrtc_local_udp_address: OptionalAddress(Some(([0, 0, 0, 0], 8189).into())),
            webrtc_ips_from_interfaces: true,
            webrtc_ips_from_interfaces_list: Vec::new(),
            webrtc_additional_hosts: Vec::new(),
            webrtc_ice_servers2: Vec::new(),
            webrtc_handshake_timeout: ConfDuration::secs(10),
            srt: true,
            srt_address: ListenAddress(([0, 0, 0, 0], 8890).into()),
            metrics: false,
            metrics_address: ListenAddress(([0, 0, 0, 0], 9998).into()),
            metrics_encryption: false,
            metrics_server_key: "server.key".into(),
            metrics_server_cert: "server.crt".into(),
            metrics_allow_origins: vec!["*".to_string()],
            metrics_trusted_proxies: Vec::new(),
            playback: false,
            playback_address: ListenAddress(([0, 0, 0, 0], 9996).into()),
            playback_encryption: false,
            playback_server_key: "server.key".into(),
            playback_server_cert: "server.crt".into(),
            playback_allow_origins: vec!["*".to_string()],
            playback_trusted_proxies: Vec::new(),
            path_defaults: None,
            paths: IndexMap::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    /// An unknown or refused key; the message names the file, line and column.
    #[error("{message}")]
    Key { message: String },
    #[error("can't read {file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
}

/// A path entry that matched a requested name.
#[derive(Debug, Clone)]
pub struct PathMatch {
    /// The entry's name as written in the file (`cam1`, `~^cam(\d+)$`, …).
    pub entry: String,
    pub conf: Arc<PathConf>,
    pub captures: Vec<String>,
}

impl Config {
    /// Parses and validates YAML; `file` names the source in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        Config::parse_with_env(text, file, std::iter::empty())
    }

    /// `load_text`, with its warnings logged.
    pub fn parse_with_env(
        text: &str,
        file: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let (cfg, warnings) = Config::load_text(text, file, vars)?;
        for w in warnings {
            tracing::warn!("{w}");
        }
        Ok(cfg)
    }

    /// Parses `text` with the environment overrides among `vars` (`MEDIAROUTER_…`,
    /// `MTX_…`) merged in, and returns the warnings its keys give (MediaMTX keys that
    /// mediarouter ignores, deprecated ones). Errors in the file keep its line:column:
    /// the file is parsed as written first, then again as merged with `pathDefaults`,
    /// the deprecated keys' new names and the overrides.
    pub fn load_text(
        text: &str,
        file: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Config, Vec<String>), ConfigError> {
        let parse = |message: String| ConfigError::Parse {
            file: file.to_string(),
            message,
        };
        let invalid = |message: String| ConfigError::Invalid {
            file: file.to_string(),
            message,
        };
        let mut doc = match text.trim() {
            "" => node::Node::Null,
            _ => node::Node::parse(text).map_err(parse)?,
        };
        let mut warnings = mediamtx::check(&doc, file)
            .map_err(|message| ConfigError::Key { message })?
            .warnings;
        let nulls = doc.drop_nulls();
        let mut cfg: Config = serde_saphyr::from_str(&node::blank_keys(text, &nulls))
            .map_err(|e| parse(e.to_string()))?;

        let overrides = env::overrides(vars);
        let as_written = doc.clone();
        mediamtx::convert_renamed(&mut doc);
        warnings.extend(env::apply(&mut doc, &overrides).map_err(invalid)?);
        mediamtx::apply_path_defaults(&mut doc);
        if doc != as_written {
            let names: Vec<&str> = overrides.iter().map(|o| o.var.as_str()).collect();
            let with = match names.is_empty() {
                true => "pathDefaults and renamed keys applied".to_string(),
                false => format!("with {}", names.join(", ")),
            };
            cfg = serde_saphyr::from_str(&doc.to_yaml()).map_err(|e| ConfigError::Parse {
                file: format!("{file} ({with})"),
                message: e.to_string(),
            })?;
        }
        cfg.validate()
            .and_then(|()| cfg.convert_deprecated_credentials())
            .and_then(|()| cfg.validate_auth())
            .map_err(invalid)?;
        Ok((cfg, warnings))
    }

    /// MediaMTX's conversion of the per-path `publishUser/Pass/IPs` and
    /// `readUser/Pass/IPs`: with any of them set, every path gets a publish and a read
    /// user (anonymous where unset), plus playback for all and the API from localhost.
    fn convert_deprecated_credentials(&mut self) -> Result<(), String> {
        use crate::auth::{Action, Credential, InternalUser, Permission};
        let confs: Vec<(String, PathConf)> = self
            .paths
            .iter()
            .map(|(k, v)| (k.entry_name(), v.clone().unwrap_or_default()))
            .collect();
        if !confs.iter().any(|(_, c)| c.has_deprecated_credentials()) {
            return Ok(());
        }
        if self.auth_internal_users != crate::auth::default_users() {
            return Err("authInternalUsers and the deprecated publishUser/publishPass/publishIPs/readUser/readPass/readIPs can't be used together".into());
        }
        tracing::warn!("publishUser, publishPass, publishIPs, readUser, readPass and readIPs are deprecated: converted into authInternalUsers");
        let mut defaults = crate::auth::default_users();
        defaults[0]
            .permissions
            .retain(|p| p.action == Action::Playback);
        let mut users = defaults;
        for (name, c) in confs {
            let rule = if name == "all_others" {
                "~^.*$".to_string()
            } else {
                name
            };
            let path: crate::auth::PathRule = rule.parse()?;
            for (action, user, pass, ips) in [
                (
                    Action::Publish,
                    &c.publish_user,
                    &c.publish_pass,
                    &c.publish_ips,
                ),
                (Action::Read, &c.read_user, &c.read_pass, &c.read_ips),
            ] {
                users.push(InternalUser {
                    user: user
                        .clone()
                        .filter(|u| !u.is_empty())
                        .unwrap_or(Credential::Plain("any".into())),
                    pass: pass.clone().unwrap_or_default(),
                    ips: ips.clone().unwrap_or_default(),
                    permissions: vec![Permission {
                        action,
                        path: path.clone(),
                    }],
                });
            }
        }
        self.auth_internal_users = users;
        Ok(())
    }

    fn validate_input_limits(&self) -> Result<(), String> {
        // hyper reads a request head into a buffer of at least 8 KiB; RTMP's own
        // default chunk size is 128; below these, ordinary clients fail.
        let ranges: [(&str, u64, u64, u64); 8] = [
            (
                "maxRequestHeaderSize",
                self.max_request_header_size as u64,
                8192,
                16 << 20,
            ),
            (
                "maxRequestHeaders",
                self.max_request_headers as u64,
                8,
                10_000,
            ),
            (
                "rtspMaxBodySize",
                self.rtsp_max_body_size as u64,
                1024,
                16 << 20,
            ),
            ("sdpMaxMedias", self.sdp_max_medias as u64, 1, 256),
            (
                "rtmpMaxChunkSize",
                u64::from(self.rtmp_max_chunk_size),
                128,
                0x7fff_ffff,
            ),
            (
                "rtmpMaxMessageSize",
                self.rtmp_max_message_size as u64,
                1024,
                0xff_ffff,
            ),
            ("amfMaxDepth", self.amf_max_depth as u64, 2, 64),
            ("amfMaxElements", self.amf_max_elements as u64, 8, 1 << 24),
        ];
        for (key, v, min, max) in ranges {
            if !(min..=max).contains(&v) {
                return Err(format!("{key}: {v} is outside {min}..{max}"));
            }
        }
        Ok(())
    }

    fn validate_auth(&self) -> Result<(), String> {
        let digest = self.rtsp_auth_methods.contains(&RtspAuthMethod::Digest);
        let url = |key: &str, v: &str| match url::Url::parse(v) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
            _ => Err(format!("{key}: want an http:// or https:// URL, got {v:?}")),
        };
        match self.auth_method {
            AuthMethod::Internal => {}
            AuthMethod::Http => url("authHTTPAddress", &self.auth_http_address)?,
            AuthMethod::Jwt => {
                url("authJWTJWKS", &self.auth_jwt_jwks)?;
                if self.auth_jwt_claim_key.is_empty() {
                    return Err("authJWTClaimKey: empty".into());
                }
            }
        }
        if digest && self.auth_method != AuthMethod::Internal {
            return Err("rtspAuthMethods: digest needs authMethod: internal (an external server or a token can't check a Digest response)".into());
        }
        for (i, u) in self.auth_internal_users.iter().enumerate() {
            if u.user.is_empty() {
                return Err(format!("authInternalUsers[{i}]: user is empty"));
            }
            if u.is_any() && !u.pass.is_empty() {
                return Err(format!(
                    "authInternalUsers[{i}]: user 'any' can't have a password"
                ));
            }
            if digest && !u.is_any() && (u.user.is_hashed() || u.pass.is_hashed()) {
                return Err(format!("authInternalUsers[{i}]: rtspAuthMethods has digest, which needs the plain password, but this user's credentials are hashed"));
            }
        }
        if self.rtsp_auth_methods.is_empty() {
            return Err("rtspAuthMethods: at least one of basic, digest is required".into());
        }
        Ok(())
    }

    /// What the network-fed parsers accept (`maxRequestHeaderSize` … `amfMaxElements`).
    pub fn input_limits(&self) -> InputLimits {
        InputLimits {
            request_head: self.max_request_header_size,
            request_headers: self.max_request_headers,
            rtsp_body: self.rtsp_max_body_size,
            sdp_medias: self.sdp_max_medias,
            rtmp_chunk_size: self.rtmp_max_chunk_size,
            rtmp_message: self.rtmp_max_message_size,
            amf_depth: self.amf_max_depth,
            amf_elements: self.amf_max_elements,
        }
    }

    fn validate(&self) -> Result<(), String> {
        self.validate_input_limits()?;
        if !(128..=65_000).contains(&self.udp_max_payload_size) {
            return Err(format!(
                "udpMaxPayloadSize: {} is outside 128..65000",
                self.udp_max_payload_size
            ));
        }
        if !(1..=1000).contains(&self.hls_segment_count) {
            return Err(format!(
                "hlsSegmentCount: {} is outside 1..1000",
                self.hls_segment_count
            ));
        }
        if self.hls_segment_duration.0 < std::time::Duration::from_millis(100) {
            return Err("hlsSegmentDuration: must be at least 100ms".into());
        }
        let part = self.hls_part_duration.0;
        if part < std::time::Duration::from_millis(10) || part > self.hls_segment_duration.0 {
            return Err(
                "hlsPartDuration: must be at least 10ms and at most hlsSegmentDuration".into(),
            );
        }
        for s in &self.webrtc_ice_servers2 {
            s.validate()?;
        }
        if self.webrtc_handshake_timeout.0.is_zero() {
            return Err("webrtcHandshakeTimeout: must be more than 0s".into());
        }
        if self.rtsp_transports.is_empty() {
            return Err("rtspTransports: at least one of udp, multicast, tcp is required".into());
        }
        if self.multicast_rtcp_port == self.multicast_rtp_port {
            return Err("multicastRTCPPort: must differ from multicastRTPPort".into());
        }
        if self.rtsp && self.rtsp_transports.contains(&RtspTransport::Udp) {
            let (rtp, rtcp) = (self.rtp_address.0, self.rtcp_address.0);
            if rtp.port() != 0 && rtp.port() % 2 != 0 {
                return Err(format!("rtpAddress: port {} must be even", rtp.port()));
            }
            if rtp.port() != 0 && rtcp.port() != rtp.port().wrapping_add(1) {
                return Err(format!(
                    "rtcpAddress: port must be rtpAddress port + 1 ({})",
                    rtp.port().wrapping_add(1)
                ));
            }
            if (rtp.port() == 0) != (rtcp.port() == 0) {
                return Err("rtpAddress and rtcpAddress: use port 0 for both or neither".into());
            }
        }
        for (pattern, conf) in &self.paths {
            let hooks = conf.as_ref().map_or(&[][..], |c| &c.webhooks[..]);
            if hooks
                .iter()
                .any(|h| h.allow && !h.wants(webhook::Event::Publish))
            {
                return Err(format!(
                    "paths: '{}': webhooks: allow decides publish events, and events leaves publish out",
                    pattern.entry_name()
                ));
            }
            if let Some(t) = conf.as_ref().and_then(|c| c.transcode.as_ref()) {
                t.validate()
                    .map_err(|e| format!("paths: '{}': {e}", pattern.entry_name()))?;
            }
            if let Some(c) = conf {
                for (key, pass) in [
                    ("srtPublishPassphrase", &c.srt_publish_passphrase),
                    ("srtReadPassphrase", &c.srt_read_passphrase),
                ] {
                    if !pass.is_empty() && !(10..=79).contains(&pass.chars().count()) {
                        return Err(format!(
                            "paths: '{}': {key}: must be 10 to 79 characters long",
                            pattern.entry_name()
                        ));
                    }
                }
            }
            let default = PathConf::default();
            record::validate(conf.as_ref().unwrap_or(&default), self.playback)
                .map_err(|e| format!("paths: '{}': {e}", pattern.entry_name()))?;
        }
        for (pattern, conf) in &self.paths {
            let (PathPattern::Regex(re), Some(conf)) = (pattern, conf) else {
                continue;
            };
            if matches!(conf.source, Source::Urls(_)) && !conf.source_on_demand {
                return Err(format!(
                    "paths: '~{}': a regex path with a source needs sourceOnDemand: yes \
                     (which names to pull is only known when someone asks)",
                    re.as_str()
                ));
            }
        }
        Ok(())
    }

    /// Finds the entry for `name`: exact names first, then regexes in file order
    /// (`all_others` is a regex that matches everything), as MediaMTX does. With the
    /// transcode stage built in, `<path>/source` of a transcoding path is its input:
    /// the entry's settings without `transcode` and `push` (those act on the output).
    pub fn find_path(&self, name: &str) -> Option<PathMatch> {
        let (parent, what) = match (self.transcode_input_of(name), self.rendition_of(name)) {
            (Some(parent), _) => (parent, "transcode input"),
            (_, Some((parent, _))) => (parent, "rendition"),
            _ => return self.find_entry(name),
        };
        let mut m = self.find_entry(parent)?;
        let conf = Arc::make_mut(&mut m.conf);
        conf.transcode = None;
        conf.push.clear();
        // The path itself is recorded, not each stage of it.
        conf.record = false;
        m.entry = format!("{} ({what})", m.entry);
        Some(m)
    }

    /// (parent, rendition) when `name` is `<parent>/<rendition>` of a transcoding
    /// path: the transcode stage writes it.
    pub fn rendition_of<'a>(&self, name: &'a str) -> Option<(&'a str, &'a str)> {
        if !cfg!(feature = "transcode") {
            return None;
        }
        let (parent, r) = name.rsplit_once('/')?;
        let m = self.find_entry(parent)?;
        let t = m.conf.transcode.as_ref()?;
        t.renditions
            .iter()
            .any(|x| x.name == r)
            .then_some((parent, r))
    }

    /// `name`'s parent when `name` is `<parent>/source` and the parent transcodes.
    pub fn transcode_input_of<'a>(&self, name: &'a str) -> Option<&'a str> {
        if !cfg!(feature = "transcode") {
            return None;
        }
        let parent = name.strip_suffix("/source")?;
        self.find_entry(parent)?
            .conf
            .transcode
            .is_some()
            .then_some(parent)
    }

    /// Where a publisher of `name` writes: `<name>/source` when the path transcodes
    /// (the stage then publishes `name`), else `name`.
    pub fn publish_target(&self, name: &str) -> String {
        let transcodes = cfg!(feature = "transcode")
            && self
                .find_entry(name)
                .is_some_and(|m| m.conf.transcode.is_some());
        match transcodes {
            true => format!("{name}/source"),
            false => name.to_string(),
        }
    }

    fn find_entry(&self, name: &str) -> Option<PathMatch> {
        let exact = self
            .paths
            .iter()
            .find(|(p, _)| matches!(p, PathPattern::Exact(n) if n == name));
        let found = exact.map(|(p, c)| (p, c, Vec::new())).or_else(|| {
            self.paths.iter().find_map(|(p, c)| match p {
                PathPattern::Regex(_) => p.matches(name).map(|caps| (p, c, caps)),
                PathPattern::Exact(_) => None,
            })
        })?;
        let (pattern, conf, captures) = found;
        Some(PathMatch {
            entry: pattern.entry_name(),
            conf: Arc::new(conf.clone().unwrap_or_default()),
            captures,
        })
    }
}

/// Where the config came from, for logs.
#[derive(Debug, Clone)]
pub enum ConfigOrigin {
    File(PathBuf),
    Embedded,
}

impl std::fmt::Display for ConfigOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigOrigin::File(p) => write!(f, "{}", p.display()),
            ConfigOrigin::Embedded => write!(f, "embedded default"),
        }
    }
}

pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        file: file.clone(),
        source,
    })?;
    Config::parse_with_env(&text, &file, std::env::vars())
}

/// Search order: explicit argument, `./mediarouter.yml`, `/etc/mediarouter/mediarouter.yml`,
/// then the embedded default.
/// Returns the text the config was read from too.
pub fn load(explicit: Option<&Path>) -> Result<(Config, ConfigOrigin, String), ConfigError> {
    let from_file = |p: &Path| {
        let file = p.display().to_string();
        let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Io {
            file: file.clone(),
            source,
        })?;
        let cfg = Config::parse_with_env(&text, &file, std::env::vars())?;
        Ok((cfg, ConfigOrigin::File(p.to_path_buf()), text))
    };
    if let Some(p) = explicit {
        return from_file(p);
    }
    for candidate in ["mediarouter.yml", "/etc/mediarouter/mediarouter.yml"] {
        let p = Path::new(candidate);
        if p.is_file() {
            return from_file(p);
        }
    }
    Ok((
        Config::parse_with_env(DEFAULT_CONFIG, "embedded default", std::env::vars())?,
        ConfigOrigin::Embedded,
        DEFAULT_CONFIG.to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_parses_and_matches_code_defaults() {
        let cfg = Config::parse(DEFAULT_CONFIG, "default").unwrap();
        let expected = Config {
            paths: cfg.paths.clone(),
            ..Default::default()
        };
        assert_eq!(cfg, expected);
        assert!(cfg.find_path("anything/at/all").is_some());
    }

    #[test]
    fn unknown_key_names_key_and_position() {
        let err = Config::parse("logLevel: info\nrtspAdress: :8554\n", "f.yml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("rtspAdress"), "{msg}");
        assert!(
            msg.starts_with("f.yml:2:1: unknown field `rtspAdress`"),
            "{msg}"
        );
    }

    /// What the API shows (the effective config as JSON) loads again to the same config.
    #[test]
    fn serialized_config_loads_back_the_same() {
        let readme = include_str!("../../README.md");
        let mut texts: Vec<&str> = readme
            .split("```yaml\n")
            .skip(1)
            .map(|b| b.split("```").next().unwrap_or_default())
            .collect();
        texts.push(DEFAULT_CONFIG);
        texts.push(include_str!("../../tests/fixtures/mediamtx-all-keys.yml"));
        let rich = "writeMerge: 0ms\nrtspEncryption: optional\nmulticastIPRange: 239.5.0.0/16\nauthInternalUsers:\n  - user: u\n    pass: sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n    ips: [10.0.0.0/8, 127.0.0.1]\n    permissions: [{action: read, path: '~^cam'}, {action: publish, path: x}, {action: api}]\npaths:\n  cam:\n    source: rtsp://h:554/x\n    sourceFingerprint: 33949e05fffb5ff3e8aa16f8213a6251b4d9363804ba53233c4da9a46d6f2739\n    push: [rtmp://h/app/k]\n    recordMaxPartSize: 1.5M\n    recordSegmentDuration: 1h30m\n    transcode: {video: {bitrate: 1500k, width: 640}, renditions: [{name: low, height: 240, bitrate: 400k}]}\n    webhooks: [{url: 'http://h/x', events: [ready]}]\n  '~^live/(.+)$':\n";
        texts.push(rich);
        for text in texts {
            let cfg = Config::parse(text, "t").unwrap();
            let json = serde_json::to_string_pretty(&cfg).unwrap();
            let back = Config::parse(&json, "json").unwrap_or_else(|e| panic!("{e}\n{json}"));
            assert_eq!(back, cfg, "{json}");
        }
    }

    /// The README's examples stay valid configs.
    #[test]
    fn readme_examples_parse() {
        let readme = include_str!("../../README.md");
        let mut n = 0;
        for block in readme.split("```yaml\n").skip(1) {
            let yaml = block.split("```").next().unwrap_or_default();
            if let Err(e) = Config::parse(yaml, "README.md") {
                panic!("{e}\n{yaml}");
            }
            n += 1;
        }
        assert!(n >= 3, "{n} examples");
    }

    #[test]
    fn bad_values_are_located() {
        for (text, needle) in [
            ("readTimeout: 10x\n", "line 1 column 14"),
            ("writeQueueSize: 0\n", "invalid queue size"),
            ("rtspTransports: [udp, quic]\n", "quic"),
            ("paths:\n  cam:\n    maxReaders: lots\n", "line 3 column 17"),
            ("paths:\n  cam:\n    maxReaderz: 1\n", "maxReaderz"),
            ("paths:\n  '~(':\n", "invalid path regex"),
            (
                "paths:\n  cam:\n    source: srt://x/y\n",
                "unsupported source",
            ),
            (
                "paths:\n  '~^c(.*)$':\n    source: rtsp://x/$G1\n",
                "needs sourceOnDemand",
            ),
            (
                "rtpAddress: ':8002'\nrtcpAddress: ':8004'\n",
                "rtpAddress port + 1",
            ),
            ("logLevel: loud\n", "loud"),
            (
                "paths:\n  cam:\n    push: [srt://x/y]\n",
                "push destination",
            ),
            (
                "paths:\n  cam:\n    forward: [rtmp://x]\n",
                "push destination",
            ),
            ("udpMaxPayloadSize: 20\n", "udpMaxPayloadSize"),
            (
                "paths:\n  cam:\n    source: srt://x/y\n",
                "unsupported source",
            ),
            (
                "paths:\n  cam:\n    source: https://x/y.m3u8\n    sourceFingerprint: abc\n",
                "64 hex digits",
            ),
        ] {
            let msg = Config::parse(text, "f").unwrap_err().to_string();
            assert!(msg.contains(needle), "{text:?} -> {msg}");
        }
    }

    #[test]
    fn tls_sources_and_push_destinations() {
        let fp = "ab".repeat(32);
        let c = Config::parse(
            &format!(
                "paths:\n  a:\n    source: https://h/x.m3u8\n    sourceFingerprint: {fp}\n  b:\n    source: rtmps://h/app/s\n    push: [rtmps://cdn/app/key]\n"
            ),
            "f",
        )
        .unwrap();
        let conf = |i: usize| c.paths[i].clone().unwrap();
        assert_eq!(conf(0).source_fingerprint.map(|f| f.to_string()), Some(fp));
        assert_eq!(
            conf(1).source,
            path::Source::Urls(vec!["rtmps://h/app/s".into()])
        );
        assert_eq!(conf(1).push[0].0, "rtmps://cdn/app/key");
    }

    #[test]
    fn source_lists_are_origins_in_order() {
        let c = Config::parse(
            "paths:\n  '~^e(\\d)$':\n    source: [rtsp://a/cam$G1, rtmp://b/live/cam$G1]\n    sourceOnDemand: yes\n  one:\n    source: rtsp://a/x\n",
            "f",
        )
        .unwrap();
        let conf = |i: usize| c.paths[i].clone().unwrap();
        assert_eq!(
            conf(0).source.urls_for(&["7".into()]),
            Some(vec![
                "rtsp://a/cam7".to_string(),
                "rtmp://b/live/cam7".into()
            ])
        );
        // Written back as read: a list stays a list, one URL a string.
        let yaml = serde_saphyr::to_string(&c).unwrap();
        assert!(yaml.contains("- rtsp://a/cam$G1"), "{yaml}");
        assert!(yaml.contains("source: rtsp://a/x"), "{yaml}");
        assert_eq!(Config::parse(&yaml, "again").unwrap().paths, c.paths);
        for (bad, needle) in [
            ("source: []", "empty list"),
            (
                "source: [rtsp://a/x, publisher]",
                "unsupported source 'publisher'",
            ),
            ("source: [srt://a/x]", "unsupported source 'srt://a/x'"),
        ] {
            let err = Config::parse(&format!("paths:\n  p:\n    {bad}\n"), "f").unwrap_err();
            assert!(err.to_string().contains(needle), "{bad}: {err}");
        }
    }

    #[test]
    fn path_matching_order() {
        let cfg = Config::parse(
            "paths:\n  all_others:\n    maxReaders: 3\n  '~^cam(\\d+)$':\n    maxReaders: 2\n  cam1:\n    maxReaders: 1\n  live/room:\n",
            "f",
        )
        .unwrap();
        assert_eq!(cfg.find_path("cam1").unwrap().conf.max_readers, 1);
        // all_others comes first in the file, so it wins over the later regex.
        assert_eq!(cfg.find_path("cam7").unwrap().conf.max_readers, 3);
        let room = cfg.find_path("live/room").unwrap();
        assert_eq!(room.conf.max_readers, 0);
        assert!(room.conf.override_publisher);

        let cfg = Config::parse("paths:\n  '~^cam(\\d+)$':\n  cam1:\n", "f").unwrap();
        assert_eq!(cfg.find_path("cam42").unwrap().captures, vec!["42"]);
        assert!(cfg.find_path("other").is_none());
    }

    #[test]
    fn yes_no_booleans() {
        let cfg =
            Config::parse("rtsp: no\npaths:\n  a:\n    overridePublisher: no\n", "f").unwrap();
        assert!(!cfg.rtsp);
        assert!(!cfg.find_path("a").unwrap().conf.override_publisher);
    }
}
