//! Recording and playback settings' own value types: `recordFormat` and sizes written
//! as MediaMTX writes them (`50M`, `1GB`, `512K`, bytes).

use serde::{Deserialize, Deserializer};

/// What recorded segments are written as (`recordFormat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordFormat {
    /// Fragmented MP4: `ftyp`+`moov`, then one `moof`+`mdat` per part.
    #[default]
    Fmp4,
    Mpegts,
}

impl RecordFormat {
    /// The extension added to `recordPath`.
    pub fn extension(self) -> &'static str {
        match self {
            RecordFormat::Fmp4 => ".mp4",
            RecordFormat::Mpegts => ".ts",
        }
    }
}

/// A size in bytes; deserializes from `50M`, `1.5G`, `512KB`, `100B` or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

/// Parses sizes with MediaMTX's units (powers of 1024; `K`/`KB`/`KiB` alike).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("invalid size '{s}': use a number with B, K, M, G or T"))?;
    let unit = unit.trim().to_ascii_uppercase();
    let unit = unit.trim_end_matches("IB").trim_end_matches('B');
    let mult: u64 = match unit {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(format!("invalid size '{s}': unknown unit")),
    };
    Ok((value * mult as f64) as u64)
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = super::number_or_string(d)?;
        parse_size(&s)
            .map(ByteSize)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_read_as_mediamtx_writes_them() {
        assert_eq!(parse_size("50M"), Ok(50 << 20));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("512KB"), Ok(512 << 10));
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("7MiB"), Ok(7 << 20));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("M").is_err());
    }
}
