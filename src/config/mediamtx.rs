//! Every key of MediaMTX's `mediamtx.yml` (current and the deprecated ones it still
//! converts), with what mediarouter does with it: so that a MediaMTX user's file loads
//! unchanged, a key not built yet is a warning, and a typo is still an error.

use super::node::{Entry, Node};

/// What mediarouter does with a MediaMTX key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Read as MediaMTX reads it.
    Implemented,
    /// Deprecated in MediaMTX and read, as MediaMTX does, as the key it was renamed to.
    Renamed(&'static str, Conv),
    /// Accepted and ignored, with a warning at each load.
    Ignored,
    /// Ignoring it would change what the user relies on (security, data kept): an error
    /// unless its value is off, which is what ignoring it does.
    Refused(&'static str),
}

/// How a deprecated key's value becomes its new key's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conv {
    Same,
    /// `rtspDisable: yes` is `rtsp: no`.
    Not,
    /// `apiAllowOrigin: x` is `apiAllowOrigins: [x]`.
    List,
    /// `externalAuthenticationURL: u` is `authMethod: http` with `authHTTPAddress: u`.
    AuthUrl,
}

use Status::{Ignored as W, Implemented as I};

const fn ren(to: &'static str) -> Status {
    Status::Renamed(to, Conv::Same)
}

const PROXIES: &str = "mediarouter does not read the PROXY protocol yet, so clients would be seen as the proxy's address (which authInternalUsers' ips and the logs rely on)";
const RECORD: &str = "MediaMTX moved the global record keys into pathDefaults: set record there, or nothing would be kept";

/// Global keys, in the order of MediaMTX's `mediamtx.yml`.
pub const GLOBAL: &[(&str, Status)] = &[
    ("logLevel", I),
    ("logDestinations", W),
    ("logStructured", W),
    ("logFile", W),
    ("sysLogPrefix", W),
    ("dumpPackets", W),
    ("readTimeout", I),
    ("writeTimeout", I),
    ("readBufferCount", ren("writeQueueSize")),
    ("writeQueueSize", I),
    ("udpMaxPayloadSize", I),
    ("udpReadBufferSize", I),
    ("runOnConnect", I),
    ("runOnConnectRestart", I),
    ("runOnDisconnect", I),
    ("authMethod", I),
    ("authInternalUsers", I),
    ("authHTTPAddress", I),
    (
        "externalAuthenticationURL",
        Status::Renamed("authHTTPAddress", Conv::AuthUrl),
    ),
    ("authHTTPFingerprint", I),
    ("authHTTPExclude", I),
    ("authJWTJWKS", I),
    ("authJWTJWKSFingerprint", I),
    ("authJWTClaimKey", I),
    ("authJWTExclude", I),
    ("authJWTInHTTPQuery", I),
    ("authJWTIssuer", I),
    ("authJWTAudience", I),
    ("api", I),
    ("apiAddress", I),
    ("apiEncryption", I),
    ("apiServerKey", I),
    ("apiServerCert", I),
    (
        "apiAllowOrigin",
        Status::Renamed("apiAllowOrigins", Conv::List),
    ),
    ("apiAllowOrigins", I),
    ("apiTrustedProxies", I),
    ("metrics", I),
    ("metricsAddress", I),
    ("metricsEncryption", I),
    ("metricsServerKey", I),
    ("metricsServerCert", I),
    (
        "metricsAllowOrigin",
        Status::Renamed("metricsAllowOrigins", Conv::List),
    ),
    ("metricsAllowOrigins", I),
    ("metricsTrustedProxies", I),
    ("pprof", W),
    ("pprofAddress", W),
    ("pprofEncryption", W),
    ("pprofServerKey", W),
    ("pprofServerCert", W),
    ("pprofAllowOrigin", W),
    ("pprofAllowOrigins", W),
    ("pprofTrustedProxies", W),
    ("playback", I),
    ("playbackAddress", I),
    ("playbackEncryption", I),
    ("playbackServerKey", I),
    ("playbackServerCert", I),
    (
        "playbackAllowOrigin",
        Status::Renamed("playbackAllowOrigins", Conv::List),
    ),
    ("playbackAllowOrigins", I),
    ("playbackTrustedProxies", I),
    ("rtsp", I),
    ("rtspDisable", Status::Renamed("rtsp", Conv::Not)),
    ("protocols", ren("rtspTransports")),
    ("rtspTransports", I),
    ("encryption", ren("rtspEncryption")),
    ("rtspEncryption", I),
    ("rtspAddress", I),
    ("rtspsAddress", I),
    ("rtpAddress", I),
    ("rtcpAddress", I),
    ("multicastIPRange", I),
    ("multicastRTPPort", I),
    ("multicastRTCPPort", I),
    ("srtpAddress", W),
    ("srtcpAddress", W),
    ("multicastSRTPPort", W),
    ("multicastSRTCPPort", W),
    ("serverKey", ren("rtspServerKey")),
    ("serverCert", ren("rtspServerCert")),
    ("rtspServerKey", I),
    ("rtspServerCert", I),
    ("authMethods", ren("rtspAuthMethods")),
    ("rtspAuthMethods", I),
    ("rtspTrustedProxies", Status::Refused(PROXIES)),
    ("rtspUDPReadBufferSize", W),
    ("rtmp", I),
    ("rtmpDisable", Status::Renamed("rtmp", Conv::Not)),
    ("rtmpEncryption", I),
    ("rtmpAddress", I),
    ("rtmpsAddress", I),
    ("rtmpServerKey", I),
    ("rtmpServerCert", I),
    ("rtmpTrustedProxies", Status::Refused(PROXIES)),
    ("hls", I),
    ("hlsDisable", Status::Renamed("hls", Conv::Not)),
    ("hlsAddress", I),
    ("hlsEncryption", I),
    ("hlsServerKey", I),
    ("hlsServerCert", I),
    (
        "hlsAllowOrigin",
        Status::Renamed("hlsAllowOrigins", Conv::List),
    ),
    ("hlsAllowOrigins", I),
    ("hlsTrustedProxies", I),
    ("hlsAlwaysRemux", I),
    ("hlsVariant", I),
    ("hlsSegmentCount", I),
    ("hlsSegmentDuration", I),
    ("hlsPartDuration", I),
    ("hlsSegmentMaxSize", W),
    ("hlsDirectory", I),
    ("hlsMuxerCloseAfter", I),
    ("hlsCDNSecret", W),
    ("webrtc", I),
    ("webrtcDisable", Status::Renamed("webrtc", Conv::Not)),
    ("webrtcAddress", I),
    ("webrtcEncryption", I),
    ("webrtcServerKey", I),
    ("webrtcServerCert", I),
    (
        "webrtcAllowOrigin",
        Status::Renamed("webrtcAllowOrigins", Conv::List),
    ),
    ("webrtcAllowOrigins", I),
    ("webrtcTrustedProxies", I),
    ("webrtcLocalUDPAddress", I),
    ("webrtcLocalTCPAddress", W),
    ("webrtcIPsFromInterfaces", I),
    ("webrtcIPsFromInterfacesList", I),
    ("webrtcAdditionalHosts", I),
    ("webrtcICEServers2", I),
    ("webrtcSTUNGatherTimeout", W),
    ("webrtcHandshakeTimeout", I),
    ("webrtcTrackGatherTimeout", W),
    ("webrtcICEUDPMuxAddress", ren("webrtcLocalUDPAddress")),
    ("webrtcICETCPMuxAddress", W),
    ("webrtcICEHostNAT1To1IPs", ren("webrtcAdditionalHosts")),
    ("webrtcICEServers", W),
    ("srt", I),
    ("srtAddress", I),
    ("moq", W),
    ("moqHTTP2Address", W),
    ("moqHTTP3Address", W),
    ("moqQUICAddress", W),
    ("moqServerKey", W),
    ("moqServerCert", W),
    ("moqAllowOrigins", W),
    ("moqTrustedProxies", W),
    ("moqHTTPS2Address", W),
    ("moqHTTPS3Address", W),
    // Deprecated globals MediaMTX moves into pathDefaults.
    ("record", Status::Refused(RECORD)),
    ("recordPath", W),
    ("recordFormat", W),
    ("recordPartDuration", W),
    ("recordSegmentDuration", W),
    ("recordDeleteAfter", W),
    ("pathDefaults", I),
    ("paths", I),
];

/// Path keys (of `pathDefaults` and each `paths` entry).
pub const PATH: &[(&str, Status)] = &[
    ("source", I),
    ("sourceFingerprint", I),
    ("sourceOnDemand", I),
    ("sourceOnDemandStartTimeout", I),
    ("sourceOnDemandCloseAfter", I),
    ("maxReaders", I),
    ("srtReadPassphrase", I),
    ("fallback", W),
    ("useAbsoluteTimestamp", W),
    ("alwaysAvailable", W),
    ("alwaysAvailableTracks", W),
    ("alwaysAvailableFile", W),
    ("forward", I),
    ("record", I),
    ("playback", W),
    ("recordPath", I),
    ("recordFormat", I),
    ("recordPartDuration", I),
    ("recordMaxPartSize", I),
    ("recordSegmentDuration", I),
    ("recordDeleteAfter", I),
    ("publishUser", I),
    ("publishPass", I),
    ("publishIPs", I),
    ("readUser", I),
    ("readPass", I),
    ("readIPs", I),
    ("overridePublisher", I),
    (
        "disablePublisherOverride",
        Status::Renamed("overridePublisher", Conv::Not),
    ),
    ("srtPublishPassphrase", I),
    ("rtspDemuxMpegts", W),
    ("rtspTransport", I),
    ("rtspAnyPort", W),
    ("sourceProtocol", ren("rtspTransport")),
    ("sourceAnyPortEnable", W),
    ("rtspRangeType", W),
    ("rtspRangeStart", W),
    ("rtspScale", W),
    ("rtspUDPReadBufferSize", W),
    ("rtspUDPSourcePortRange", W),
    ("mpegtsUDPReadBufferSize", W),
    ("rtpSDP", W),
    ("rtpUDPReadBufferSize", W),
    ("moqTransport", W),
    ("whepBearerToken", W),
    ("whepSTUNGatherTimeout", W),
    ("whepHandshakeTimeout", W),
    ("whepTrackGatherTimeout", W),
    ("sourceRedirect", W),
    ("rpiCameraCamID", W),
    ("rpiCameraSecondary", W),
    ("rpiCameraWidth", W),
    ("rpiCameraHeight", W),
    ("rpiCameraHFlip", W),
    ("rpiCameraVFlip", W),
    ("rpiCameraBrightness", W),
    ("rpiCameraContrast", W),
    ("rpiCameraSaturation", W),
    ("rpiCameraSharpness", W),
    ("rpiCameraExposure", W),
    ("rpiCameraAWB", W),
    ("rpiCameraAWBGains", W),
    ("rpiCameraDenoise", W),
    ("rpiCameraShutter", W),
    ("rpiCameraMetering", W),
    ("rpiCameraGain", W),
    ("rpiCameraEV", W),
    ("rpiCameraROI", W),
    ("rpiCameraHDR", W),
    ("rpiCameraTuningFile", W),
    ("rpiCameraMode", W),
    ("rpiCameraFPS", W),
    ("rpiCameraAfMode", W),
    ("rpiCameraAfRange", W),
    ("rpiCameraAfSpeed", W),
    ("rpiCameraLensPosition", W),
    ("rpiCameraAfWindow", W),
    ("rpiCameraFlickerPeriod", W),
    ("rpiCameraTextOverlayEnable", W),
    ("rpiCameraTextOverlay", W),
    ("rpiCameraCodec", W),
    ("rpiCameraIDRPeriod", W),
    ("rpiCameraBitrate", W),
    ("rpiCameraProfile", W),
    ("rpiCameraLevel", W),
    ("rpiCameraHardwareH264Profile", W),
    ("rpiCameraHardwareH264Level", W),
    ("rpiCameraSoftwareH264Profile", W),
    ("rpiCameraSoftwareH264Level", W),
    ("rpiCameraH264Profile", W),
    ("rpiCameraH264Level", W),
    ("rpiCameraJPEGQuality", W),
    ("rpiCameraMJPEGQuality", W),
    ("runOnInit", I),
    ("runOnInitRestart", I),
    ("runOnDemand", I),
    ("runOnDemandRestart", I),
    ("runOnDemandStartTimeout", I),
    ("runOnDemandCloseAfter", I),
    ("runOnUnDemand", I),
    ("runOnAvailable", I),
    ("runOnAvailableRestart", I),
    ("runOnUnavailable", I),
    ("runOnReady", ren("runOnAvailable")),
    ("runOnReadyRestart", ren("runOnAvailableRestart")),
    ("runOnNotReady", ren("runOnUnavailable")),
    ("runOnOnline", I),
    ("runOnOnlineRestart", I),
    ("runOnOffline", I),
    ("runOnRead", I),
    ("runOnReadRestart", I),
    ("runOnUnread", I),
    ("runOnRecordSegmentCreate", I),
    ("runOnRecordSegmentComplete", I),
];

/// Keys mediarouter has that MediaMTX doesn't.
pub const OWN_GLOBAL: &[&str] = &[
    "writeMerge",
    "apiPersist",
    "maxConnections",
    "maxConnectionsPerIP",
    "maxRequestHeaderSize",
    "maxRequestHeaders",
    "rtspMaxBodySize",
    "sdpMaxMedias",
    "rtmpMaxChunkSize",
    "rtmpMaxMessageSize",
    "amfMaxDepth",
    "amfMaxElements",
    "httpMaxRequestsPerConnection",
    "pathVhosts",
];
pub const OWN_PATH: &[&str] = &["push", "transcode", "webhooks"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Global,
    Path,
}

impl Scope {
    fn table(self) -> &'static [(&'static str, Status)] {
        match self {
            Scope::Global => GLOBAL,
            Scope::Path => PATH,
        }
    }

    fn own(self) -> &'static [&'static str] {
        match self {
            Scope::Global => OWN_GLOBAL,
            Scope::Path => OWN_PATH,
        }
    }

    /// Every key of this scope, MediaMTX's and mediarouter's own.
    pub fn keys(self) -> impl Iterator<Item = &'static str> {
        self.table()
            .iter()
            .map(|(k, _)| *k)
            .chain(self.own().iter().copied())
    }

    pub fn status(self, key: &str) -> Option<Status> {
        if self.own().contains(&key) {
            return Some(Status::Implemented);
        }
        self.table()
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, s)| *s)
    }
}

/// What the key check found: warnings to log at each load, or the first error.
#[derive(Debug, Default)]
pub struct Report {
    pub warnings: Vec<String>,
}

/// Checks one key: `Ok(Some(warning))` for an ignored MediaMTX key, an error for a
/// key that is nobody's or a refused one that is set. `at` says where for warnings
/// (`file:12`), `at_err` for errors (`file:12:5`).
pub fn check_key(
    scope: Scope,
    key: &str,
    value: &Node,
    at: &str,
    at_err: &str,
) -> Result<Option<String>, String> {
    let status = match scope.status(key) {
        Some(s) => s,
        None => {
            let near = scope
                .keys()
                .filter(|k| *k != "paths")
                .find(|k| super::env::close(k, key))
                .map(|k| format!(" (did you mean {k}?)"))
                .unwrap_or_default();
            return Err(format!("{at_err}: unknown field `{key}`{near}"));
        }
    };
    Ok(match status {
        Status::Implemented => None,
        Status::Renamed(to, _) => Some(format!(
            "{at}: {key} is deprecated in MediaMTX and read as {to}"
        )),
        Status::Ignored => Some(format!(
            "{at}: {key} is a MediaMTX key that mediarouter does not implement yet; ignored"
        )),
        Status::Refused(_) if value.is_off() => Some(format!(
            "{at}: {key} is a MediaMTX key that mediarouter does not implement yet; ignored (it is off)"
        )),
        Status::Refused(why) => {
            return Err(format!(
                "{at_err}: {key} is a MediaMTX key that mediarouter does not implement yet, and it can't be ignored: {why}"
            ))
        }
    })
}

/// Checks every global key, `pathDefaults`' and each path entry's.
pub fn check(doc: &Node, file: &str) -> Result<Report, String> {
    let mut report = Report::default();
    let at = |e: &Entry| format!("{file}:{}", e.line);
    let at_err = |e: &Entry| format!("{file}:{}:{}", e.line, e.column);
    for e in doc.entries() {
        report.warnings.extend(check_key(
            Scope::Global,
            &e.key,
            &e.value,
            &at(e),
            &at_err(e),
        )?);
    }
    let path_maps = doc.get("pathDefaults").into_iter().chain(
        doc.get("paths")
            .into_iter()
            .flat_map(|p| p.entries().iter().map(|e| &e.value)),
    );
    for conf in path_maps {
        for e in conf.entries() {
            report.warnings.extend(check_key(
                Scope::Path,
                &e.key,
                &e.value,
                &at(e),
                &at_err(e),
            )?);
        }
    }
    Ok(report)
}

/// Rewrites deprecated keys (in the document, `pathDefaults` and paths) into the keys
/// they were renamed to; set under both names, the deprecated one wins, as in MediaMTX.
pub fn convert_renamed(doc: &mut Node) {
    rename_in(doc, Scope::Global);
    if let Some(d @ Node::Map(_)) = doc.get_mut("pathDefaults") {
        rename_in(d, Scope::Path);
    }
    if let Some(Node::Map(paths)) = doc.get_mut("paths") {
        for e in paths.iter_mut().filter(|e| matches!(e.value, Node::Map(_))) {
            rename_in(&mut e.value, Scope::Path);
        }
    }
}

fn rename_in(map: &mut Node, scope: Scope) {
    for (old, status) in scope.table() {
        let Status::Renamed(to, conv) = status else {
            continue;
        };
        let Some(value) = map.remove(old) else {
            continue;
        };
        let value = match conv {
            Conv::Same => value,
            Conv::Not => match value.as_bool() {
                Some(b) => Node::Scalar((!b).to_string()),
                None => value,
            },
            Conv::List => Node::Seq(vec![value]),
            Conv::AuthUrl => {
                map.set("authMethod", Node::Scalar("http".into()));
                value
            }
        };
        map.set(to, value);
    }
}

/// `pathDefaults` merged under every path entry: the entry's own keys win, as in
/// MediaMTX. Returns whether there was anything to merge.
pub fn apply_path_defaults(doc: &mut Node) -> bool {
    let defaults = match doc.get("pathDefaults") {
        Some(Node::Map(d)) if !d.is_empty() => d.clone(),
        _ => return false,
    };
    let Some(Node::Map(paths)) = doc.get("paths").cloned() else {
        return false;
    };
    let merged: Vec<Entry> = paths
        .into_iter()
        .map(|e| {
            let mut conf = Node::Map(defaults.clone());
            for own in e.value.entries() {
                conf.set(&own.key, own.value.clone());
            }
            Entry { value: conf, ..e }
        })
        .collect();
    doc.set("paths", Node::Map(merged));
    true
}

/// The key table of `docs/mediamtx-keys.md`.
pub fn markdown() -> String {
    let mut out = String::from(
        "# MediaMTX keys in mediarouter\n\n\
         Every key of MediaMTX's `mediamtx.yml`, the deprecated ones it still converts \
         included, and what mediarouter does with it. A key that is neither MediaMTX's nor \
         mediarouter's is an error with its line and column. Generated from \
         `src/config/mediamtx.rs` by `UPDATE_DOCS=1 cargo test --lib mediamtx`; a test \
         fails when it drifts.\n\n\
         * **implemented**: read as MediaMTX reads it (name, type, default, meaning).\n\
         * **deprecated**: MediaMTX's old name, read as the key it was renamed to.\n\
         * **ignored**: accepted, and logged as a warning at each load (`--check` lists them).\n\
         * **error unless off**: ignoring it would change what you rely on, so a file that \
         turns it on is refused until mediarouter implements it.\n\n",
    );
    let count =
        |t: &[(&str, Status)], f: fn(&Status) -> bool| t.iter().filter(|(_, s)| f(s)).count();
    for (title, table, own) in [
        ("Global keys", GLOBAL, OWN_GLOBAL),
        ("Path keys (`pathDefaults` and `paths`)", PATH, OWN_PATH),
    ] {
        out.push_str(&format!(
            "## {title}\n\n{} keys: {} implemented, {} deprecated names read as their new ones, \
             {} ignored with a warning, {} refused unless off. mediarouter's own: {}.\n\n\
             | key | in mediarouter |\n| --- | --- |\n",
            table.len(),
            count(table, |s| matches!(s, Status::Implemented)),
            count(table, |s| matches!(s, Status::Renamed(..))),
            count(table, |s| matches!(s, Status::Ignored)),
            count(table, |s| matches!(s, Status::Refused(_))),
            own.iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", "),
        ));
        for (key, status) in table {
            let what = match status {
                Status::Implemented => "implemented".to_string(),
                Status::Renamed(to, _) => format!("deprecated: read as `{to}`"),
                Status::Ignored => "ignored, with a warning".to_string(),
                Status::Refused(why) => format!("error unless off: {why}"),
            };
            out.push_str(&format!("| `{key}` | {what} |\n"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{env::fields, Config, PathConf};

    /// A key is "implemented" exactly when the typed config reads it, so the table
    /// can't claim what the code doesn't do (or miss what it does).
    #[test]
    fn table_matches_the_typed_config() {
        for (scope, fields) in [
            (Scope::Global, fields::<Config>()),
            (Scope::Path, fields::<PathConf>()),
        ] {
            let own = scope.own();
            for (key, status) in scope.table() {
                let read = fields.contains(key);
                assert_eq!(
                    read,
                    *status == Status::Implemented,
                    "{scope:?} {key}: {status:?}, but the typed config {} it",
                    if read { "reads" } else { "doesn't read" }
                );
                if let Status::Renamed(to, _) = status {
                    assert!(
                        fields.contains(to),
                        "{key} is renamed to {to}, which isn't read"
                    );
                }
            }
            for f in fields {
                assert!(
                    own.contains(f) || scope.table().iter().any(|(k, _)| k == f),
                    "{scope:?} key {f} is in neither MediaMTX's table nor mediarouter's own"
                );
            }
            let mut seen = std::collections::HashSet::new();
            for k in scope.keys() {
                assert!(seen.insert(k), "{k} listed twice");
            }
        }
    }

    #[test]
    fn docs_table_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/mediamtx-keys.md");
        let want = markdown();
        if std::env::var("UPDATE_DOCS").is_ok() {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "docs/mediamtx-keys.md is stale: run UPDATE_DOCS=1 cargo test --lib mediamtx"
        );
    }

    fn load(text: &str) -> Result<(Config, Vec<String>), String> {
        Config::load_text(text, "mediamtx.yml", std::iter::empty()).map_err(|e| e.to_string())
    }

    #[test]
    fn ignored_keys_warn_with_their_line_and_typos_fail_with_line_and_column() {
        let (_, w) = load(
            "logLevel: info\nlogDestinations: [stdout]\npaths:\n  cam:\n    rpiCameraWidth: 1920\n",
        )
        .unwrap();
        assert_eq!(
            w,
            [
                "mediamtx.yml:2: logDestinations is a MediaMTX key that mediarouter does not implement yet; ignored",
                "mediamtx.yml:5: rpiCameraWidth is a MediaMTX key that mediarouter does not implement yet; ignored",
            ]
        );
        let e = load("logLevel: info\nrtspAdress: :8554\n").unwrap_err();
        assert_eq!(
            e,
            "mediamtx.yml:2:1: unknown field `rtspAdress` (did you mean rtspAddress?)"
        );
        let e = load("pathDefaults:\n  sourceOnDemmand: yes\n").unwrap_err();
        assert!(
            e.starts_with("mediamtx.yml:2:3: unknown field `sourceOnDemmand`"),
            "{e}"
        );
    }

    #[test]
    fn refused_keys_are_errors_when_on() {
        for (text, at) in [
            ("record: yes\n", "mediamtx.yml:1:1: record"),
            (
                "rtspTrustedProxies: [10.0.0.1]\n",
                "mediamtx.yml:1:1: rtspTrustedProxies",
            ),
        ] {
            let e = load(text).unwrap_err();
            assert!(
                e.starts_with(at) && e.contains("can't be ignored"),
                "{text:?}: {e}"
            );
        }
        let (_, w) = load("record: no\nrtmpTrustedProxies: []\n").unwrap();
        assert_eq!(w.len(), 2, "{w:?}");
        // Per path, MediaMTX's recording keys are read.
        let (c, _) = load("pathDefaults:\n  record: yes\n  recordMaxPartSize: 8M\npaths:\n  cam:\n    recordFormat: mpegts\n").unwrap();
        let cam = c.find_path("cam").unwrap().conf;
        assert!(cam.record);
        assert_eq!(
            cam.record_format,
            crate::config::record::RecordFormat::Mpegts
        );
        assert_eq!(cam.record_max_part_size.0, 8 << 20);
    }

    #[test]
    fn deprecated_keys_are_read_under_their_new_names() {
        let (c, w) = load(
            "readBufferCount: 64\nprotocols: [tcp]\nrtmpDisable: yes\nhlsAllowOrigin: http://a\n\
             externalAuthenticationURL: http://127.0.0.1:9/auth\n\
             paths:\n  cam:\n    disablePublisherOverride: yes\n    sourceProtocol: tcp\n",
        )
        .unwrap();
        assert_eq!(c.write_queue_size.0, 64);
        assert_eq!(c.rtsp_transports, [crate::config::RtspTransport::Tcp]);
        assert!(!c.rtmp);
        assert_eq!(c.hls_allow_origins, ["http://a"]);
        assert_eq!(c.auth_method, crate::config::AuthMethod::Http);
        assert_eq!(c.auth_http_address, "http://127.0.0.1:9/auth");
        let cam = c.find_path("cam").unwrap();
        assert!(!cam.conf.override_publisher);
        assert_eq!(cam.conf.rtsp_transport, crate::config::SourceTransport::Tcp);
        assert_eq!(w.len(), 7, "{w:?}");
        assert!(
            w[0].contains("readBufferCount is deprecated in MediaMTX and read as writeQueueSize")
        );
    }

    #[test]
    fn path_defaults_apply_to_every_entry() {
        let (c, _) = load(
            "pathDefaults:\n  maxReaders: 2\n  sourceOnDemand: yes\n\
             paths:\n  cam:\n    maxReaders: 5\n  '~^nvr/(\\d+)$':\n    source: rtsp://h/$G1\n  all_others:\n",
        )
        .unwrap();
        assert_eq!(c.find_path("cam").unwrap().conf.max_readers, 5);
        assert!(c.find_path("cam").unwrap().conf.source_on_demand);
        // Valid only with the default's sourceOnDemand: validation sees the merge.
        assert!(c.find_path("nvr/3").unwrap().conf.source_on_demand);
        assert_eq!(c.find_path("x").unwrap().conf.max_readers, 2);
    }

    #[test]
    fn forward_takes_mediamtx_destinations() {
        let (c, _) = load(
            "paths:\n  '~^live/(.+)$':\n    forward:\n      - dest: rtmp://cdn/app#$G1\n      - dest: rtsp://other:8554/$MTX_PATH\n",
        )
        .unwrap();
        let m = c.find_path("live/a").unwrap();
        let urls: Vec<String> = m
            .conf
            .push
            .iter()
            .map(|u| u.for_path("live/a", &m.captures))
            .collect();
        assert_eq!(urls, ["rtmp://cdn/app/a", "rtsp://other:8554/live/a"]);
        let e = load("paths:\n  a:\n    forward: [{dest: rtmps://x/a/b, destFingerprint: ab}]\n")
            .unwrap_err();
        assert!(e.contains("not implemented yet"), "{e}");
    }
}
