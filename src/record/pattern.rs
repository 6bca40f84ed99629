//! `recordPath` patterns: MediaMTX's placeholders (`%path`, `%Y %m %d %H %M %S`, `%f`
//! microseconds, `%z` zone, `%s` unix seconds), not strftime. A segment's file name from
//! its path and start time, and back: only names the pattern makes are ever read or
//! deleted.

use chrono::{DateTime, Datelike, FixedOffset, Local, NaiveDate, TimeZone, Timelike};
use regex::Regex;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordPattern {
    /// The pattern with the format's extension.
    pattern: String,
}

/// The placeholders, longest first so `%path` isn't read as `%p`.
const FIELDS: [&str; 10] = [
    "%path", "%Y", "%m", "%d", "%H", "%M", "%S", "%f", "%z", "%s",
];

fn zone(offset_secs: i32) -> String {
    if offset_secs == 0 {
        return "Z".into();
    }
    let sign = if offset_secs > 0 { '+' } else { '-' };
    let a = offset_secs.unsigned_abs();
    format!("{sign}{:02}{:02}", a / 3600, (a / 60) % 60)
}

/// The pattern split into literal text and placeholders.
fn tokens(p: &str) -> Vec<Result<&'static str, &str>> {
    let mut out = Vec::new();
    let mut rest = p;
    while !rest.is_empty() {
        let next = rest.find('%').unwrap_or(rest.len());
        if next > 0 {
            out.push(Err(&rest[..next]));
            rest = &rest[next..];
            continue;
        }
        match FIELDS.iter().find(|f| rest.starts_with(**f)) {
            Some(f) => {
                out.push(Ok(*f));
                rest = &rest[f.len()..];
            }
            None => {
                out.push(Err(&rest[..1]));
                rest = &rest[1..];
            }
        }
    }
    out
}

impl RecordPattern {
    pub fn new(record_path: &str, extension: &str) -> Self {
        RecordPattern {
            pattern: format!("{record_path}{extension}"),
        }
    }

    /// The file of `path`'s segment that starts at `t` (local time, as MediaMTX).
    pub fn render(&self, path: &str, t: SystemTime) -> String {
        let local: DateTime<Local> = t.into();
        let mut out = String::new();
        for tok in tokens(&self.pattern) {
            match tok {
                Err(lit) => out.push_str(lit),
                Ok("%path") => out.push_str(path),
                Ok("%Y") => out.push_str(&format!("{:04}", local.year())),
                Ok("%m") => out.push_str(&format!("{:02}", local.month())),
                Ok("%d") => out.push_str(&format!("{:02}", local.day())),
                Ok("%H") => out.push_str(&format!("{:02}", local.hour())),
                Ok("%M") => out.push_str(&format!("{:02}", local.minute())),
                Ok("%S") => out.push_str(&format!("{:02}", local.second())),
                Ok("%f") => out.push_str(&format!("{:06}", local.nanosecond() / 1000 % 1_000_000)),
                Ok("%z") => out.push_str(&zone(local.offset().local_minus_utc())),
                Ok(_) => out.push_str(&local.timestamp().to_string()),
            }
        }
        out
    }

    /// The directory every segment of `path` lies under: the pattern up to the first
    /// component with a time placeholder (`None`: of any path).
    pub fn base_dir(&self, path: Option<&str>) -> PathBuf {
        let p = match path {
            Some(name) => self.pattern.replace("%path", name),
            None => self.pattern.clone(),
        };
        let mut base = String::new();
        let mut rest = p.as_str();
        while let Some(i) = rest.find('/') {
            let part = &rest[..=i];
            if part.contains('%') {
                break;
            }
            base.push_str(part);
            rest = &rest[i + 1..];
        }
        if base.is_empty() {
            return PathBuf::from(".");
        }
        if base.len() > 1 {
            base.pop();
        }
        PathBuf::from(base)
    }

    fn regex(&self, path: Option<&str>) -> Option<Regex> {
        let mut re = String::from("^");
        for tok in tokens(&self.pattern) {
            re.push_str(&match tok {
                Err(lit) => regex::escape(lit),
                Ok("%path") => match path {
                    Some(name) => regex::escape(name),
                    None => "(?P<path>.+)".into(),
                },
                Ok("%Y") => r"(?P<Y>\d{4})".into(),
                Ok("%f") => r"(?P<f>\d{6})".into(),
                Ok("%z") => r"(?P<z>Z|[+-]\d{4})".into(),
                Ok("%s") => r"(?P<s>\d+)".into(),
                Ok(f) => format!(r"(?P<{}>\d{{2}})", &f[1..]),
            });
        }
        re.push('$');
        Regex::new(&re).ok()
    }

    /// The start time of the segment file `file` (as `render` writes paths), and the
    /// path name it belongs to; `None` if the pattern (for `path`, when given) can't
    /// have made it.
    pub fn parse(&self, path: Option<&str>, file: &str) -> Option<(String, SystemTime)> {
        let caps = self.regex(path)?.captures(file)?;
        let name = match path {
            Some(p) => p.to_string(),
            None => caps.name("path")?.as_str().to_string(),
        };
        let num = |k: &str| caps.name(k).and_then(|m| m.as_str().parse::<u32>().ok());
        let micros = num("f").unwrap_or(0);
        let t = if let Some(s) = caps.name("s").and_then(|m| m.as_str().parse::<u64>().ok()) {
            UNIX_EPOCH + Duration::from_secs(s) + Duration::from_micros(u64::from(micros))
        } else {
            let date = NaiveDate::from_ymd_opt(num("Y")? as i32, num("m")?, num("d")?)?;
            let at = date.and_hms_micro_opt(
                num("H").unwrap_or(0),
                num("M").unwrap_or(0),
                num("S").unwrap_or(0),
                micros,
            )?;
            let dt: DateTime<FixedOffset> = match caps.name("z").map(|m| m.as_str()) {
                Some("Z") => FixedOffset::east_opt(0)?
                    .from_local_datetime(&at)
                    .single()?,
                Some(z) => {
                    let sign = if z.starts_with('-') { -1 } else { 1 };
                    let h: i32 = z[1..3].parse().ok()?;
                    let m: i32 = z[3..5].parse().ok()?;
                    FixedOffset::east_opt(sign * (h * 3600 + m * 60))?
                        .from_local_datetime(&at)
                        .single()?
                }
                None => Local.from_local_datetime(&at).earliest()?.fixed_offset(),
            };
            SystemTime::from(dt)
        };
        Some((name, t))
    }
}

/// The regular files under `dir`, to `max_depth` levels; symlinks are neither
/// followed nor listed, so nothing outside the directory is ever reached through one.
pub fn files_under(dir: &std::path::Path, max_depth: usize) -> Vec<PathBuf> {
    fn walk(dir: &std::path::Path, depth: usize, max: usize, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let Ok(t) = e.file_type() else { continue };
            let p = dir.join(e.file_name());
            if t.is_dir() && depth < max {
                walk(&p, depth + 1, max, out);
            } else if t.is_file() {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, 0, max_depth, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, micros: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros)
    }

    #[test]
    fn names_round_trip_with_the_default_pattern() {
        let p = RecordPattern::new("./recordings/%path/%Y-%m-%d_%H-%M-%S-%f", ".mp4");
        let t = at(1_764_000_000, 123_456);
        let name = p.render("cams/front", t);
        assert!(name.starts_with("./recordings/cams/front/"), "{name}");
        assert!(name.ends_with("-123456.mp4"), "{name}");
        assert_eq!(
            p.parse(Some("cams/front"), &name),
            Some(("cams/front".into(), t))
        );
        assert_eq!(p.parse(None, &name), Some(("cams/front".into(), t)));
        // Another path's file, a stray file, another extension: not ours.
        assert_eq!(p.parse(Some("cams/back"), &name), None);
        assert_eq!(
            p.parse(Some("cams/front"), "./recordings/cams/front/notes.txt"),
            None
        );
        assert_eq!(
            p.parse(Some("cams/front"), &name.replace(".mp4", ".ts")),
            None
        );
        assert_eq!(
            p.base_dir(Some("cams/front")),
            PathBuf::from("./recordings/cams/front")
        );
        assert_eq!(p.base_dir(None), PathBuf::from("./recordings"));
    }

    #[test]
    fn unix_seconds_zones_and_odd_patterns() {
        let p = RecordPattern::new("/var/rec/%path_%s-%f", ".ts");
        let t = at(1_700_000_000, 42);
        let name = p.render("a", t);
        assert_eq!(name, "/var/rec/a_1700000000-000042.ts");
        assert_eq!(p.parse(Some("a"), &name), Some(("a".into(), t)));
        assert_eq!(p.base_dir(Some("a")), PathBuf::from("/var/rec"));

        let z = RecordPattern::new("r/%Y%m%d%H%M%S%z", ".mp4");
        let t = at(1_700_000_000, 0);
        let name = z.render("x", t);
        assert_eq!(z.parse(Some("x"), &name).map(|(_, t)| t), Some(t));
        assert_eq!(
            z.parse(Some("x"), "r/20231114221320+0100.mp4")
                .map(|(_, t)| t),
            Some(at(1_699_996_400, 0))
        );
        // A '%' that is no placeholder is text.
        let q = RecordPattern::new("r/100%_%s", ".mp4");
        assert_eq!(q.render("x", t), "r/100%_1700000000.mp4");
    }
}
