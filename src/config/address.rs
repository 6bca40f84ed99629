//! Listener addresses as written in the config: `:8554` (all interfaces), `127.0.0.1:8554`, `[::1]:8554`.

use serde::{Deserialize, Deserializer};
use std::net::{Ipv4Addr, SocketAddr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenAddress(pub SocketAddr);

pub fn parse_address(s: &str) -> Result<SocketAddr, String> {
    if let Some(port) = s.strip_prefix(':') {
        let port: u16 = port
            .parse()
            .map_err(|_| format!("invalid address '{s}': bad port"))?;
        return Ok(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)));
    }
    s.parse::<SocketAddr>()
        .map_err(|_| format!("invalid address '{s}': expected ':PORT', 'IP:PORT' or '[IPv6]:PORT'"))
}

impl<'de> Deserialize<'de> for ListenAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_address(&s)
            .map(ListenAddress)
            .map_err(serde::de::Error::custom)
    }
}

/// An address that may be blank: `""` turns that listener off (MediaMTX's
/// `webrtcLocalUDPAddress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OptionalAddress(pub Option<SocketAddr>);

impl<'de> Deserialize<'de> for OptionalAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.trim().is_empty() {
            return Ok(OptionalAddress(None));
        }
        parse_address(&s)
            .map(|a| OptionalAddress(Some(a)))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(parse_address(":8554").unwrap().to_string(), "0.0.0.0:8554");
        assert_eq!(
            parse_address("127.0.0.1:0").unwrap().to_string(),
            "127.0.0.1:0"
        );
        assert_eq!(parse_address("[::1]:80").unwrap().to_string(), "[::1]:80");
        assert!(parse_address("8554").is_err());
        assert!(parse_address(":99999").is_err());
        assert!(parse_address("host:80").is_err());
        let blank: OptionalAddress = serde_json::from_str("\"\"").unwrap();
        assert_eq!(blank, OptionalAddress(None));
        let set: OptionalAddress = serde_json::from_str("\":8189\"").unwrap();
        assert_eq!(set.0.unwrap().port(), 8189);
    }
}
