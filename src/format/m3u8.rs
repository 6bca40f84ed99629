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
    /// URI of the fMP4 init section, written (`EXT-X-MAP`) where it changes.
    pub map: Option<String>,
    /// LL-HLS parts (`EXT-X-PART`), listed near the live edge only.
    pub parts: Vec<PartEntry>,
    /// False for the segment still being cut: only its parts are listed.
    pub complete: bool,
}

/// One LL-HLS part.
#[derive(Debug, Clone, PartialEq)]
pub struct PartEntry {
    pub uri: String,
    pub duration: Duration,
    pub independent: bool,
}

/// What a Low-Latency HLS playlist adds.
#[derive(Debug, Clone, PartialEq)]
pub struct LowLatency<'a> {
    /// `EXT-X-PART-INF:PART-TARGET`: no part is longer.
    pub part_target: Duration,
    /// URI of the part being cut (`EXT-X-PRELOAD-HINT`).
    pub preload_hint: &'a str,
}

/// A live media playlist over the segments still held.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaPlaylist<'a> {
    /// Media sequence number of the first entry.
    pub media_sequence: u64,
    /// Discontinuities that have left the playlist already.
    pub discontinuity_sequence: u64,
    pub segments: &'a [SegmentEntry],
    pub low_latency: Option<LowLatency<'a>>,
    /// `EXT-X-TARGETDURATION` is at least this: RFC 8216 §6.2.1 forbids it to change,
    /// so a live muxer passes the largest it has announced.
    pub min_target_duration: u64,
}

fn secs(d: Duration) -> String {
    format!("{:.5}", d.as_secs_f64())
}

impl MediaPlaylist<'_> {
    /// `EXT-X-TARGETDURATION`: the longest segment, rounded to the nearest second as
    /// RFC 8216 §4.3.3.1 requires (and at least 1).
    pub fn target_duration(&self) -> u64 {
        self.segments
            .iter()
            .filter(|s| s.complete)
            .map(|s| s.duration.as_secs_f64().round() as u64)
            .max()
            .unwrap_or(1)
            .max(1)
            .max(self.min_target_duration)
    }

    pub fn render(&self) -> String {
        let mut s = String::with_capacity(256 + 128 * self.segments.len());
        s.push_str("#EXTM3U\n");
        // 9 for LL-HLS tags, 6 for EXT-X-MAP without I-frames-only; 3 suffices for TS
        // with decimal durations.
        let fmp4 = self.segments.iter().any(|e| e.map.is_some());
        let version = match (&self.low_latency, fmp4) {
            (Some(_), _) => 9,
            (None, true) => 6,
            (None, false) => 3,
        };
        let _ = writeln!(s, "#EXT-X-VERSION:{version}");
        let _ = writeln!(s, "#EXT-X-TARGETDURATION:{}", self.target_duration());
        if let Some(ll) = &self.low_latency {
            // Parts listed may run over the configured target by a frame at most.
            let longest = self
                .segments
                .iter()
                .flat_map(|e| &e.parts)
                .map(|p| p.duration)
                .max()
                .unwrap_or_default();
            let target = ll.part_target.max(longest);
            let _ = writeln!(
                s,
                "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={}",
                secs(target * 3)
            );
            let _ = writeln!(s, "#EXT-X-PART-INF:PART-TARGET={}", secs(target));
        }
        let _ = writeln!(s, "#EXT-X-MEDIA-SEQUENCE:{}", self.media_sequence);
        if self.discontinuity_sequence > 0 {
            let _ = writeln!(
                s,
                "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
                self.discontinuity_sequence
            );
        }
        for seg in self.segments {
            if seg.discontinuity {
                s.push_str("#EXT-X-DISCONTINUITY\n");
            }
            if let Some(map) = &seg.map {
                let _ = writeln!(s, "#EXT-X-MAP:URI=\"{map}\"");
            }
            let _ = writeln!(s, "#EXT-X-PROGRAM-DATE-TIME:{}", iso8601(seg.start));
            for p in &seg.parts {
                let _ = write!(
                    s,
                    "#EXT-X-PART:DURATION={},URI=\"{}\"",
                    secs(p.duration),
                    p.uri
                );
                s.push_str(if p.independent {
                    ",INDEPENDENT=YES\n"
                } else {
                    "\n"
                });
            }
            if seg.complete {
                let _ = writeln!(s, "#EXTINF:{},", secs(seg.duration));
                s.push_str(&seg.uri);
                s.push('\n');
            }
        }
        if let Some(ll) = &self.low_latency {
            let _ = writeln!(
                s,
                "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"",
                ll.preload_hint
            );
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
            map: None,
            parts: Vec::new(),
            complete: true,
        }
    }

    #[test]
    fn media_playlist_parses_with_m3u8_rs_and_keeps_real_durations() {
        let segs = vec![seg(7, 1001, false), seg(8, 2400, true), seg(9, 966, false)];
        let pl = MediaPlaylist {
            media_sequence: 7,
            discontinuity_sequence: 2,
            segments: &segs,
            low_latency: None,
            min_target_duration: 0,
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
        let mut segs = vec![seg(0, 1000, false)];
        segs[0].map = Some("init0.mp4".into());
        let text = MediaPlaylist {
            media_sequence: 0,
            discontinuity_sequence: 0,
            segments: &segs,
            low_latency: None,
            min_target_duration: 3,
        }
        .render();
        assert!(text.contains("#EXT-X-VERSION:6\n"));
        assert!(
            text.contains("#EXT-X-TARGETDURATION:3\n"),
            "never lower than announced"
        );
        assert!(text.contains("#EXT-X-MAP:URI=\"init0.mp4\"\n"));
        assert!(!text.contains("DISCONTINUITY-SEQUENCE"));
        assert!(!text.contains("PART"));
    }

    #[test]
    fn low_latency_playlists_list_parts_and_the_preload_hint() {
        let part = |id: u64, ms: u64, independent: bool| PartEntry {
            uri: format!("part{id}.mp4"),
            duration: Duration::from_millis(ms),
            independent,
        };
        let mut segs = vec![seg(3, 1000, false), seg(4, 1000, false)];
        segs[0].map = Some("init0.mp4".into());
        segs[1].parts = vec![part(20, 200, true), part(21, 200, false)];
        segs[1].complete = false;
        let text = MediaPlaylist {
            media_sequence: 3,
            discontinuity_sequence: 0,
            segments: &segs,
            low_latency: Some(LowLatency {
                part_target: Duration::from_millis(200),
                preload_hint: "part22.mp4",
            }),
            min_target_duration: 0,
        }
        .render();
        assert!(text.contains("#EXT-X-VERSION:9\n"), "{text}");
        assert!(
            text.contains("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.60000\n")
        );
        assert!(text.contains("#EXT-X-PART-INF:PART-TARGET=0.20000\n"));
        assert!(text.contains(
            "#EXT-X-PART:DURATION=0.20000,URI=\"part20.mp4\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=0.20000,URI=\"part21.mp4\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part22.mp4\"\n"
        ), "{text}");
        // The open segment has no EXTINF yet: m3u8-rs sees one segment.
        let parsed = match m3u8_rs::parse_playlist_res(text.as_bytes()).unwrap() {
            m3u8_rs::Playlist::MediaPlaylist(m) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(parsed.segments.len(), 1);
        assert_eq!(parsed.segments[0].uri, "seg3.ts");
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
