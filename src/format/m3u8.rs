//! HLS playlists (RFC 8216), written by hand: `m3u8-rs` cannot write the LL-HLS tags
//! later variants need, so one writer serves all. Media playlists list segments with
//! their real durations; the multivariant playlist names the media playlists.

use std::fmt::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One segment as a media playlist lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentEntry {
    pub uri: String,
    pub duration: Duration,
    /// Wall-clock time of the segment's first frame (`EXT-X-PROGRAM-DATE-TIME`).
    pub start: SystemTime,
    /// The segment follows a change of publisher or encoding (`EXT-X-DISCONTINUITY`).
    pub discontinuity: bool,
}

/// A live media playlist over the segments still held.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaPlaylist<'a> {
    /// Media sequence number of the first entry.
    pub media_sequence: u64,
    /// Discontinuities that have left the playlist already.
    pub discontinuity_sequence: u64,
    pub segments: &'a [SegmentEntry],
    /// URI of the fMP4 init section (`EXT-X-MAP`), none for MPEG-TS.
    pub map: Option<&'a str>,
}

impl MediaPlaylist<'_> {
    /// `EXT-X-TARGETDURATION`: the longest segment, rounded to the nearest second as
    /// RFC 8216 §4.3.3.1 requires (and at least 1).
    pub fn target_duration(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| s.duration.as_secs_f64().round() as u64)
            .max()
            .unwrap_or(1)
            .max(1)
    }

    pub fn render(&self) -> String {
        let mut s = String::with_capacity(256 + 128 * self.segments.len());
        s.push_str("#EXTM3U\n");
        // Version 6 for EXT-X-MAP without I-frames-only; 3 suffices for TS with
        // decimal durations.
        let version = if self.map.is_some() { 6 } else { 3 };
        let _ = writeln!(s, "#EXT-X-VERSION:{version}");
        let _ = writeln!(s, "#EXT-X-TARGETDURATION:{}", self.target_duration());
        let _ = writeln!(s, "#EXT-X-MEDIA-SEQUENCE:{}", self.media_sequence);
        if self.discontinuity_sequence > 0 {
            let _ = writeln!(
                s,
                "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
                self.discontinuity_sequence
            );
        }
        if let Some(map) = self.map {
            let _ = writeln!(s, "#EXT-X-MAP:URI=\"{map}\"");
        }
        for seg in self.segments {
            if seg.discontinuity {
                s.push_str("#EXT-X-DISCONTINUITY\n");
            }
            let _ = writeln!(s, "#EXT-X-PROGRAM-DATE-TIME:{}", iso8601(seg.start));
            let _ = writeln!(s, "#EXTINF:{:.5},", seg.duration.as_secs_f64());
            s.push_str(&seg.uri);
            s.push('\n');
        }
        s
    }
}

/// One media playlist as the multivariant playlist names it.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant<'a> {
    pub uri: &'a str,
    /// Peak bit rate, bit/s.
    pub bandwidth: u64,
    /// RFC 6381 codec strings, comma-separated (`avc1.64001f,mp4a.40.2`).
    pub codecs: &'a str,
    pub resolution: Option<(u32, u32)>,
}

/// A multivariant playlist with one entry per media playlist.
pub fn multivariant(variants: &[Variant]) -> String {
    let mut s = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for Variant {
        uri,
        bandwidth,
        codecs,
        resolution: res,
    } in variants
    {
        let _ = write!(
            s,
            "#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},CODECS=\"{codecs}\""
        );
        if let Some((w, h)) = res {
            let _ = write!(s, ",RESOLUTION={w}x{h}");
        }
        let _ = writeln!(s, "\n{uri}");
    }
    s
}

/// `2026-11-22T09:51:36.123Z`
fn iso8601(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(i: u64, ms: u64, discontinuity: bool) -> SegmentEntry {
        SegmentEntry {
            uri: format!("seg{i}.ts"),
            duration: Duration::from_millis(ms),
            start: UNIX_EPOCH + Duration::from_millis(1_795_000_000_000 + i * 1000),
            discontinuity,
        }
    }

    #[test]
    fn media_playlist_parses_with_m3u8_rs_and_keeps_real_durations() {
        let segs = vec![seg(7, 1001, false), seg(8, 2400, true), seg(9, 966, false)];
        let pl = MediaPlaylist {
            media_sequence: 7,
            discontinuity_sequence: 2,
            segments: &segs,
            map: None,
        };
        let text = pl.render();
        let parsed = match m3u8_rs::parse_playlist_res(text.as_bytes()).unwrap() {
            m3u8_rs::Playlist::MediaPlaylist(m) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(parsed.media_sequence, 7);
        assert_eq!(parsed.discontinuity_sequence, 2);
        // 2.4 s rounds to 2 (RFC 8216 §4.3.3.1).
        assert_eq!(parsed.target_duration, 2);
        let durations: Vec<f32> = parsed.segments.iter().map(|s| s.duration).collect();
        assert_eq!(durations, [1.001, 2.4, 0.966]);
        assert!(parsed.segments[1].discontinuity && !parsed.segments[0].discontinuity);
        assert_eq!(parsed.segments[2].uri, "seg9.ts");
        assert!(
            text.contains("#EXT-X-PROGRAM-DATE-TIME:2026-11-18T"),
            "{text}"
        );
    }

    #[test]
    fn fmp4_playlists_carry_the_map() {
        let segs = vec![seg(0, 1000, false)];
        let text = MediaPlaylist {
            media_sequence: 0,
            discontinuity_sequence: 0,
            segments: &segs,
            map: Some("init.mp4"),
        }
        .render();
        assert!(text.contains("#EXT-X-VERSION:6\n"));
        assert!(text.contains("#EXT-X-MAP:URI=\"init.mp4\"\n"));
        assert!(!text.contains("DISCONTINUITY-SEQUENCE"));
    }

    #[test]
    fn multivariant_lists_each_media_playlist() {
        let text = multivariant(&[
            Variant {
                uri: "stream.m3u8",
                bandwidth: 2_200_000,
                codecs: "avc1.64001f,mp4a.40.2",
                resolution: Some((1280, 720)),
            },
            Variant {
                uri: "low.m3u8",
                bandwidth: 600_000,
                codecs: "avc1.42c01e",
                resolution: None,
            },
        ]);
        let parsed = match m3u8_rs::parse_playlist_res(text.as_bytes()).unwrap() {
            m3u8_rs::Playlist::MasterPlaylist(m) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(parsed.variants.len(), 2);
        assert_eq!(parsed.variants[0].uri, "stream.m3u8");
        assert_eq!(parsed.variants[0].bandwidth, 2_200_000);
        assert_eq!(parsed.variants[1].codecs.as_deref(), Some("avc1.42c01e"));
    }

    #[test]
    fn dates_are_iso8601_utc() {
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(951_782_400_250); // leap day 2000
        assert_eq!(iso8601(t), "2000-02-29T00:00:00.250Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_341_096);
        assert_eq!(iso8601(t), "2026-11-22T09:51:36.000Z");
    }
}
