//! Durations written as in MediaMTX configs: `10s`, `200ms`, `1m30s`, `1.5s`, `2h`, `1d`.

use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// A config duration; deserializes from strings such as `10s` or `200ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfDuration(pub Duration);

impl ConfDuration {
    pub const fn secs(s: u64) -> Self {
        ConfDuration(Duration::from_secs(s))
    }
}

/// Parses `10s`, `200ms`, `1m30s`, `1.5s`, `500us`, `2h`, `7d`. A bare `0` is zero.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("invalid duration '{s}': missing unit (use ms, s, m or h)"))?;
        if num_len == 0 {
            return Err(format!("invalid duration '{s}'"));
        }
        let value: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("invalid duration '{s}'"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            // MediaMTX's own unit (recordDeleteAfter: 1d).
            "d" => 86400.0,
            u => return Err(format!("invalid duration '{s}': unknown unit '{u}'")),
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    if !total.is_finite() || total > 1e9 {
        return Err(format!("invalid duration '{s}': out of range"));
    }
    Ok(Duration::from_secs_f64(total))
}

impl<'de> Deserialize<'de> for ConfDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s)
            .map(ConfDuration)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("200ms").unwrap(), Duration::from_millis(200));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(
            parse_duration("1d12h").unwrap(),
            Duration::from_secs(129_600)
        );
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "10", "10x", "s", "1..2s", "-1s", "1e400s"] {
            assert!(parse_duration(bad).is_err(), "{bad} should fail");
        }
    }
}
