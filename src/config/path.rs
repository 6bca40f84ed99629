//! Per-path settings and how a requested path name is matched to a `paths:` entry.

use regex::Regex;
use serde::{Deserialize, Deserializer};

/// Where a path's media comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Source {
    /// A client publishes (RTSP ANNOUNCE/RECORD, RTMP publish).
    #[default]
    Publisher,
    /// The server pulls from these URLs (`rtsp://`, `rtmp[s]://`, HLS `http[s]://`), one
    /// at a time: the first, then the next when one fails (`source:` a list; never
    /// empty). `$G1`… stand for the capture groups of a regex path.
    Urls(Vec<String>),
}

impl Source {
    /// The URLs with `$G1`… replaced by `captures` (from the highest number down, so
    /// `$G10` isn't read as `$G1` followed by `0`).
    pub fn urls_for(&self, captures: &[String]) -> Option<Vec<String>> {
        let Source::Urls(urls) = self else {
            return None;
        };
        Some(urls.iter().map(|u| expand(u, captures)).collect())
    }
}

fn expand(url: &str, captures: &[String]) -> String {
    let mut url = url.to_string();
    for (i, c) in captures.iter().enumerate().rev() {
        url = url.replace(&format!("$G{}", i + 1), c);
    }
    url
}

const SOURCE_SCHEMES: [&str; 6] = [
    "rtsp://", "rtsps://", "rtmp://", "rtmps://", "http://", "https://",
];

impl<'de> Deserialize<'de> for Source {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            List(Vec<String>),
        }
        let urls = match Raw::deserialize(d)? {
            Raw::One(s) if s == "publisher" => return Ok(Source::Publisher),
            Raw::One(s) => vec![s],
            Raw::List(l) if l.is_empty() => {
                return Err(serde::de::Error::custom(
                    "source: an empty list; give one URL or more, or 'publisher'",
                ))
            }
            Raw::List(l) => l,
        };
        for u in &urls {
            if !SOURCE_SCHEMES.iter().any(|p| u.starts_with(p)) {
                return Err(serde::de::Error::custom(format!(
                    "unsupported source '{u}': use 'publisher', or one rtsp://, rtsps://, rtmp://, \
                     rtmps://, http:// or https:// (HLS) URL or a list of them (origins tried in order)"
                )));
            }
        }
        Ok(Source::Urls(urls))
    }
}

impl serde::Serialize for Source {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Source::Publisher => s.serialize_str("publisher"),
            Source::Urls(u) if u.len() == 1 => s.serialize_str(&u[0]),
            Source::Urls(u) => u.serialize(s),
        }
    }
}

/// How an RTSP source receives RTP (`rtspTransport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceTransport {
    /// UDP, or TCP when the server refuses UDP.
    #[default]
    Automatic,
    Udp,
    Tcp,
}

/// Settings of one `paths:` entry. Keys follow MediaMTX.
/// Unknown keys are found by the key check (`mediamtx::check`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PathConf {
    pub source: Source,
    /// 0 means unlimited.
    pub max_readers: u32,
    /// A new publisher replaces the current one (`yes`) or is refused (`no`).
    pub override_publisher: bool,
    pub rtsp_transport: SourceTransport,
    /// SHA-256 of a TLS source's certificate: that certificate is accepted instead of
    /// one the system's roots vouch for (self-signed `https://`/`rtmps://` sources).
    pub source_fingerprint: Option<crate::tls::Fingerprint>,
    /// Pull the source only while someone reads the path.
    pub source_on_demand: bool,
    /// How long a reader of an on-demand path waits for its source.
    pub source_on_demand_start_timeout: super::ConfDuration,
    /// An on-demand source stops this long after the last reader left.
    pub source_on_demand_close_after: super::ConfDuration,
    /// Destinations the path's stream is published to (nginx-rtmp `push`).
    #[serde(alias = "forward")]
    pub push: Vec<PushUrl>,
    /// Re-encode what the path serves; the input stays readable as `<path>/source`.
    pub transcode: Option<super::transcode::TranscodeConf>,
    /// Deprecated in MediaMTX for `authInternalUsers`, into which they are converted.
    pub publish_user: Option<crate::auth::Credential>,
    pub publish_pass: Option<crate::auth::Credential>,
    #[serde(rename = "publishIPs")]
    pub publish_ips: Option<Vec<crate::auth::IpNetwork>>,
    pub read_user: Option<crate::auth::Credential>,
    pub read_pass: Option<crate::auth::Credential>,
    #[serde(rename = "readIPs")]
    pub read_ips: Option<Vec<crate::auth::IpNetwork>>,
    /// SRT publishers must encrypt with this passphrase (10–79 characters; empty: none).
    pub srt_publish_passphrase: String,
    /// SRT readers must encrypt with this passphrase (10–79 characters; empty: none).
    pub srt_read_passphrase: String,

    /// Hooks (commands; `$MTX_PATH`, `$RTSP_PORT`, `$G1`… expand), as in MediaMTX.
    /// While the path's entry is loaded (exact names only).
    pub run_on_init: String,
    pub run_on_init_restart: bool,
    /// When a reader asks for the path and no one publishes; it should publish.
    pub run_on_demand: String,
    pub run_on_demand_restart: bool,
    pub run_on_demand_start_timeout: super::ConfDuration,
    pub run_on_demand_close_after: super::ConfDuration,
    /// Once `runOnDemand` stopped for want of readers.
    pub run_on_un_demand: String,
    /// While the stream is readable (`runOnReady` in older MediaMTX).
    pub run_on_available: String,
    pub run_on_available_restart: bool,
    pub run_on_unavailable: String,
    /// While the stream is readable from a live source (always the same as available
    /// here: mediarouter has no offline segments).
    pub run_on_online: String,
    pub run_on_online_restart: bool,
    pub run_on_offline: String,
    /// While a reader reads.
    pub run_on_read: String,
    pub run_on_read_restart: bool,
    pub run_on_unread: String,
    /// HTTP endpoints told of this path's events (mediarouter's own).
    pub webhooks: Vec<super::webhook::Webhook>,

    /// Write the stream to disk, as MediaMTX does: segment files named by `recordPath`
    /// (`%path`, `%Y %m %d %H %M %S`, `%f` microseconds, `%z`, `%s`; the format adds
    /// the extension), flushed every `recordPartDuration`.
    pub record: bool,
    pub record_path: String,
    pub record_format: super::record::RecordFormat,
    pub record_part_duration: super::ConfDuration,
    /// A part is flushed early once it holds this much.
    pub record_max_part_size: super::record::ByteSize,
    /// Shortest segment: a new file starts at the first keyframe after it.
    pub record_segment_duration: super::ConfDuration,
    /// Segments older than this are deleted (`0s`: kept).
    pub record_delete_after: super::ConfDuration,
    /// Hooks with `MTX_SEGMENT_PATH` (and `MTX_SEGMENT_DURATION` at completion).
    pub run_on_record_segment_create: String,
    pub run_on_record_segment_complete: String,
}

impl PathConf {
    pub(crate) fn has_deprecated_credentials(&self) -> bool {
        self.publish_user.is_some()
            || self.publish_pass.is_some()
            || self.publish_ips.is_some()
            || self.read_user.is_some()
            || self.read_pass.is_some()
            || self.read_ips.is_some()
    }
}

/// A push destination: `rtmp[s]://host[:port]/app/stream` or `rtsp://host[:port]/path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushUrl(pub String);

impl std::ops::Deref for PushUrl {
    type Target = String;
    fn deref(&self) -> &String {
        &self.0
    }
}

impl PushUrl {
    /// The destination for path `name`: `$MTX_PATH` is its name, `$G1`… the groups of
    /// a regex entry.
    pub fn for_path(&self, name: &str, captures: &[String]) -> String {
        expand(&self.0.replace("$MTX_PATH", name), captures)
    }
}

/// A destination as written: a URL, or MediaMTX's `forward` entry.
#[derive(Deserialize)]
#[serde(untagged)]
enum PushEntry {
    Url(String),
    Forward(ForwardDest),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ForwardDest {
    dest: String,
    #[serde(default)]
    dest_fingerprint: String,
    #[serde(default)]
    whip_bearer_token: String,
}

impl<'de> Deserialize<'de> for PushUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = match PushEntry::deserialize(d)? {
            PushEntry::Url(s) => s,
            PushEntry::Forward(f) => {
                if !f.dest_fingerprint.is_empty() || !f.whip_bearer_token.is_empty() {
                    return Err(serde::de::Error::custom(format!(
                        "forward '{}': destFingerprint and whipBearerToken are not implemented yet",
                        f.dest
                    )));
                }
                f.dest
            }
        };
        // MediaMTX writes an RTMP stream key after '#': rtmp://host/app#key.
        let s = match s.split_once('#') {
            Some((url, key)) if s.starts_with("rtmp") && !key.is_empty() => {
                format!("{}/{key}", url.trim_end_matches('/'))
            }
            _ => s,
        };
        let parts = |rest: &str| rest.split('/').filter(|p| !p.is_empty()).count();
        let rtmp = s
            .strip_prefix("rtmp://")
            .or_else(|| s.strip_prefix("rtmps://"));
        match (rtmp, s.strip_prefix("rtsp://")) {
            (Some(rest), _) if parts(rest) >= 3 => Ok(PushUrl(s)),
            (_, Some(rest)) if parts(rest) >= 2 => Ok(PushUrl(s)),
            _ => Err(serde::de::Error::custom(format!(
                "push destination '{s}': use rtmp[s]://host[:port]/app/stream or rtsp://host[:port]/path"
            ))),
        }
    }
}

impl Default for PathConf {
    fn default() -> Self {
        PathConf {
            source: Source::Publisher,
            max_readers: 0,
            override_publisher: true,
            rtsp_transport: SourceTransport::Automatic,
            source_fingerprint: None,
            source_on_demand: false,
            source_on_demand_start_timeout: super::ConfDuration::secs(10),
            source_on_demand_close_after: super::ConfDuration::secs(10),
            push: Vec::new(),
            transcode: None,
            publish_user: None,
            publish_pass: None,
            publish_ips: None,
            read_user: None,
            read_pass: None,
            read_ips: None,
            srt_publish_passphrase: String::new(),
            srt_read_passphrase: String::new(),
            run_on_init: String::new(),
            run_on_init_restart: false,
            run_on_demand: String::new(),
            run_on_demand_restart: false,
            run_on_demand_start_timeout: super::ConfDuration::secs(10),
            run_on_demand_close_after: super::ConfDuration::secs(10),
            run_on_un_demand: String::new(),
            run_on_available: String::new(),
            run_on_available_restart: false,
            run_on_unavailable: String::new(),
            run_on_online: String::new(),
            run_on_online_restart: false,
            run_on_offline: String::new(),
            run_on_read: String::new(),
            run_on_read_restart: false,
            run_on_unread: String::new(),
            webhooks: Vec::new(),
            record: false,
            record_path: "./recordings/%path/%Y-%m-%d_%H-%M-%S-%f".into(),
            record_format: super::record::RecordFormat::Fmp4,
            record_part_duration: super::ConfDuration::secs(1),
            record_max_part_size: super::record::ByteSize(50 << 20),
            record_segment_duration: super::ConfDuration::secs(3600),
            record_delete_after: super::ConfDuration::secs(86400),
            run_on_record_segment_create: String::new(),
            run_on_record_segment_complete: String::new(),
        }
    }
}

/// The regex `all_others` stands for.
const ALL_OTHERS: &str = "^.*$";

/// The name of a `paths:` entry: an exact name, a `~regex`, or `all_others`.
#[derive(Debug, Clone)]
pub enum PathPattern {
    Exact(String),
    Regex(Regex),
}

impl PartialEq for PathPattern {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (PathPattern::Exact(a), PathPattern::Exact(b)) => a == b,
            (PathPattern::Regex(a), PathPattern::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}
impl Eq for PathPattern {}

impl std::hash::Hash for PathPattern {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match self {
            PathPattern::Exact(s) => ("e", s).hash(state),
            PathPattern::Regex(r) => ("r", r.as_str()).hash(state),
        }
    }
}

impl PathPattern {
    pub fn parse(name: &str) -> Result<Self, String> {
        if name == "all_others" || name == "all" {
            return Ok(PathPattern::Regex(
                Regex::new(ALL_OTHERS).map_err(|e| e.to_string())?,
            ));
        }
        if let Some(re) = name.strip_prefix('~') {
            return Regex::new(re)
                .map(PathPattern::Regex)
                .map_err(|e| format!("invalid path regex '{re}': {e}"));
        }
        validate_path_name(name)?;
        Ok(PathPattern::Exact(name.to_string()))
    }

    /// The entry's name as written in the file (`cam1`, `~^cam(\d+)$`, `all_others`).
    pub fn entry_name(&self) -> String {
        match self {
            PathPattern::Exact(n) => n.clone(),
            PathPattern::Regex(r) if r.as_str() == ALL_OTHERS => "all_others".into(),
            PathPattern::Regex(r) => format!("~{}", r.as_str()),
        }
    }

    /// Returns the capture groups (`$G1`… later) when `name` matches.
    pub fn matches(&self, name: &str) -> Option<Vec<String>> {
        match self {
            PathPattern::Exact(n) => (n == name).then(Vec::new),
            PathPattern::Regex(re) => re.captures(name).map(|c| {
                c.iter()
                    .skip(1)
                    .map(|m| m.map(|m| m.as_str().to_string()).unwrap_or_default())
                    .collect()
            }),
        }
    }
}

impl<'de> Deserialize<'de> for PathPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PathPattern::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Path names are what follows the host in a URL: letters, digits and `_-.~/`,
/// no leading/trailing slash, no `..` segment.
pub fn validate_path_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("path name is empty".into());
    }
    if name.len() > 512 {
        return Err("path name is longer than 512 bytes".into());
    }
    if name.starts_with('/') || name.ends_with('/') {
        return Err(format!(
            "path name '{name}' can't begin or end with a slash"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_-.~/:@+".contains(*c)))
    {
        return Err(format!(
            "path name '{name}' contains invalid character '{c}'"
        ));
    }
    if name.split('/').any(|seg| seg.is_empty() || seg == "..") {
        return Err(format!(
            "path name '{name}' contains an empty or '..' segment"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let p = PathPattern::parse("~^cam(\\d+)$").unwrap();
        assert_eq!(p.matches("cam12"), Some(vec!["12".to_string()]));
        assert_eq!(p.matches("xcam12"), None);
        assert!(PathPattern::parse("all_others")
            .unwrap()
            .matches("any/thing")
            .is_some());
        assert!(PathPattern::parse("~(").is_err());
        assert!(PathPattern::parse("a//b").is_err());
        assert!(PathPattern::parse("../x").is_err());
        assert!(PathPattern::parse("live/cam1").is_ok());
    }
}
