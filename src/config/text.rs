//! Config values written back as the text their parsers read (`10s`, `:8554`, `50M`,
//! `~^cam$`), so a config the API serializes loads again to the same config.

use super::record::ByteSize;
use super::transcode::Bitrate;
use super::{ConfDuration, Encryption, ListenAddress, MulticastRange, PathPattern, QueueSize};
use crate::auth::{Credential, IpNetwork, PathRule};
use serde::{Serialize, Serializer};
use std::time::Duration;

macro_rules! as_text {
    ($($t:ty => $f:expr;)*) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let text: String = ($f)(self);
                s.serialize_str(&text)
            }
        }
    )*};
}

as_text! {
    ConfDuration => |d: &ConfDuration| format_duration(d.0);
    ListenAddress => |a: &ListenAddress| address_text(a.0);
    Encryption => |e: &Encryption| match e {
        Encryption::No => "no".to_string(),
        Encryption::Optional => "optional".to_string(),
        Encryption::Strict => "strict".to_string(),
    };
    MulticastRange => |m: &MulticastRange| format!("{}/{}", m.base, m.prefix);
    super::OptionalAddress => |a: &super::OptionalAddress| a.0.map(address_text).unwrap_or_default();
    ByteSize => |b: &ByteSize| format_size(b.0);
    super::path::PushUrl => |p: &super::path::PushUrl| p.0.clone();
    PathPattern => |p: &PathPattern| p.entry_name();
    PathRule => |r: &PathRule| match r {
        PathRule::Any => String::new(),
        PathRule::Exact(p) => p.clone(),
        PathRule::Regex(re, _) => format!("~{re}"),
    };
    Credential => |c: &Credential| c.as_config_text();
    IpNetwork => |n: &IpNetwork| n.0.to_string();
    crate::tls::Fingerprint => |f: &crate::tls::Fingerprint| f.to_string();
}

/// `:8554` for every interface, else the address as `parse_address` reads it.
fn address_text(a: std::net::SocketAddr) -> String {
    match a {
        std::net::SocketAddr::V4(v4) if v4.ip().is_unspecified() => format!(":{}", v4.port()),
        other => other.to_string(),
    }
}

impl Serialize for QueueSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0 as u64)
    }
}

impl Serialize for Bitrate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

/// Go's form (`1h0m0s`, `1m30s`, `200ms`, `1.5s`), which MediaMTX writes and
/// `parse_duration` reads.
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    if d < Duration::from_millis(1) {
        return format!("{}us", d.as_micros());
    }
    if d < Duration::from_secs(1) {
        return trim(format!("{:.6}", d.as_secs_f64() * 1e3)) + "ms";
    }
    let total = d.as_secs();
    let (h, m) = (total / 3600, (total / 60) % 60);
    let secs = trim(format!(
        "{:.9}",
        (total % 60) as f64 + f64::from(d.subsec_nanos()) / 1e9
    )) + "s";
    match (h, m) {
        (0, 0) => secs,
        (0, m) => format!("{m}m{secs}"),
        (h, m) => format!("{h}h{m}m{secs}"),
    }
}

fn trim(s: String) -> String {
    if !s.contains('.') {
        return s;
    }
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `50M`, `1G`, `512K`, or bytes.
fn format_size(n: u64) -> String {
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        if n != 0 && n.is_multiple_of(1 << shift) {
            return format!("{}{unit}", n >> shift);
        }
    }
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_duration, record::parse_size};

    #[test]
    fn durations_and_sizes_read_back() {
        for ms in [
            0, 1, 200, 1000, 1500, 90_000, 3_600_000, 86_400_000, 3_723_250,
        ] {
            let d = Duration::from_millis(ms);
            let text = format_duration(d);
            assert_eq!(parse_duration(&text), Ok(d), "{text}");
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_millis(200)), "200ms");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h0m0s");
        for n in [0, 100, 1 << 10, 50 << 20, 3 << 29, 1 << 40] {
            assert_eq!(parse_size(&format_size(n)), Ok(n));
        }
        assert_eq!(format_size(50 << 20), "50M");
    }
}
