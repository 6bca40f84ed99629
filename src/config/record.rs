//! Recording and playback settings' own value types: `recordFormat` and sizes written
//! as MediaMTX writes them (`50M`, `1GB`, `512K`, bytes).

use serde::{Deserialize, Deserializer};

/// What recorded segments are written as (`recordFormat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
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

/// MediaMTX's rules for a path's recording keys: every segment of every path gets a
/// name of its own (with `%f` for the playback server, which finds segments by it).
pub fn validate(conf: &super::PathConf, playback: bool) -> Result<(), String> {
    let p = &conf.record_path;
    if !p.contains("%path") {
        return Err("recordPath must contain %path".into());
    }
    let clock = ["%Y", "%m", "%d", "%H", "%M", "%S"];
    if !p.contains("%s") && !clock.iter().all(|f| p.contains(f)) {
        return Err("recordPath must contain either %s or %Y %m %d %H %M %S".into());
    }
    if playback && !p.contains("%f") {
        return Err("recordPath must contain %f (the playback server is on)".into());
    }
    if conf.record_segment_duration.0 > std::time::Duration::from_secs(86_400) {
        return Err("recordSegmentDuration: at most 1 day".into());
    }
    if conf.record_part_duration.0 < std::time::Duration::from_millis(100) {
        return Err("recordPartDuration: at least 100ms".into());
    }
    Ok(())
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
    fn record_paths_follow_mediamtx_rules() {
        let check = |path: &str, playback: bool| {
            let conf = crate::config::PathConf {
                record_path: path.into(),
                ..Default::default()
            };
            super::validate(&conf, playback)
        };
        assert!(check("./recordings/%path/%Y-%m-%d_%H-%M-%S-%f", true).is_ok());
        assert!(check("r/%path/%s", false).is_ok());
        assert!(check("r/%path/%s", true).unwrap_err().contains("%f"));
        assert!(check("r/%Y-%m-%d_%H-%M-%S", false)
            .unwrap_err()
            .contains("%path"));
        assert!(check("r/%path/%Y-%m-%d", false).unwrap_err().contains("%s"));
    }

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
