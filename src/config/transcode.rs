//! The per-path `transcode:` settings (video codec, size, bitrate, GOP; audio; which
//! hardware to try and what runs when no hardware encoder opens).

use super::ConfDuration;
use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HwAccel {
    /// CUDA decode and NVENC when they open, else what `fallback` says.
    #[default]
    Auto,
    /// Like auto, but a path whose GPU encoder can't open says so at warn level.
    Cuda,
    /// Software only.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fallback {
    /// Pass the input through untouched.
    #[default]
    Copy,
    /// Encode with libx264 / libx265.
    Software,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoCodec {
    #[default]
    H264,
    H265,
    Copy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AudioCodec {
    /// Audio is passed through.
    #[default]
    Copy,
    /// AAC-LC (FFmpeg's encoder), from AAC or Opus input: Opus publishers become
    /// playable over RTMP, HTTP-FLV and MPEG-TS HLS.
    Aac,
    /// Opus at 48 kHz (libopus), from AAC or Opus input: AAC cameras get sound in
    /// browsers over WebRTC.
    Opus,
}

/// A bit rate written as `2500k`, `2.5M` or `800000`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bitrate(pub u64);

pub fn parse_bitrate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, scale) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1e3),
        Some((i, 'm' | 'M')) => (&t[..i], 1e6),
        _ => (t, 1.0),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("invalid bitrate '{s}': use e.g. 2500k or 2.5M"))?;
    let bps = v * scale;
    if !(10e3..=1e9).contains(&bps) {
        return Err(format!("bitrate '{s}' is outside 10k..1000M"));
    }
    Ok(bps as u64)
}

impl<'de> Deserialize<'de> for Bitrate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = super::number_or_string(d)?;
        parse_bitrate(&s)
            .map(Bitrate)
            .map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct VideoConf {
    pub codec: VideoCodec,
    pub bitrate: Bitrate,
    /// Output size; with only one of them set the other keeps the aspect ratio. Unset:
    /// the input's size.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// At most this many frames per second (frames are dropped, never repeated).
    pub fps: Option<u32>,
    /// A keyframe every `gop` of media time.
    pub gop: ConfDuration,
    /// x264/x265 preset (NVENC gets the closest of its own).
    pub preset: String,
}

impl Default for VideoConf {
    fn default() -> Self {
        VideoConf {
            codec: VideoCodec::H264,
            bitrate: Bitrate(2_500_000),
            width: None,
            height: None,
            fps: None,
            gop: ConfDuration::secs(1),
            preset: "fast".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct AudioConf {
    pub codec: AudioCodec,
    /// For `aac` and `opus`.
    pub bitrate: Bitrate,
}

impl Default for AudioConf {
    fn default() -> Self {
        AudioConf {
            codec: AudioCodec::Copy,
            bitrate: Bitrate(128_000),
        }
    }
}

/// One more output of the same decode (an ABR ladder rung), readable as
/// `<path>/<name>` and listed in `<path>`'s HLS multivariant playlist.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Rendition {
    pub name: String,
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
    pub bitrate: Bitrate,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct TranscodeConf {
    pub hwaccel: HwAccel,
    pub video: VideoConf,
    pub audio: AudioConf,
    pub fallback: Fallback,
    pub renditions: Vec<Rendition>,
}

impl TranscodeConf {
    fn check_size(&self, w: Option<u32>, h: Option<u32>) -> Result<(), String> {
        for (key, n) in [("width", w), ("height", h)] {
            if let Some(n) = n {
                if !(16..=8192).contains(&n) || n % 2 != 0 {
                    return Err(format!(
                        "transcode: {key} {n} must be even and within 16..8192"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The video settings of rendition `r`: the main ones with its size and bit rate.
    pub fn rendition_video(&self, r: &Rendition) -> VideoConf {
        VideoConf {
            width: r.width,
            height: r.height,
            bitrate: r.bitrate,
            ..self.video.clone()
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        for (i, r) in self.renditions.iter().enumerate() {
            let ok = !r.name.is_empty()
                && r.name != "source"
                && r.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
            if !ok {
                return Err(format!(
                    "transcode.renditions: name '{}' must be letters, digits, '_', '-' or '.', and not 'source'",
                    r.name
                ));
            }
            if self.renditions[..i].iter().any(|o| o.name == r.name) {
                return Err(format!("transcode.renditions: '{}' appears twice", r.name));
            }
            if self.video.codec == VideoCodec::Copy {
                return Err("transcode.renditions: need a video codec other than copy".into());
            }
        }
        let sizes = std::iter::once((self.video.width, self.video.height))
            .chain(self.renditions.iter().map(|r| (r.width, r.height)));
        for (w, h) in sizes {
            self.check_size(w, h)?;
        }
        let v = &self.video;
        if v.fps.is_some_and(|f| !(1..=240).contains(&f)) {
            return Err("transcode.video.fps: must be within 1..240".into());
        }
        if v.gop.0 < std::time::Duration::from_millis(100) {
            return Err("transcode.video.gop: must be at least 100ms".into());
        }
        const PRESETS: [&str; 10] = [
            "ultrafast",
            "superfast",
            "veryfast",
            "faster",
            "fast",
            "medium",
            "slow",
            "slower",
            "veryslow",
            "placebo",
        ];
        if !PRESETS.contains(&v.preset.as_str()) {
            return Err(format!(
                "transcode.video.preset: '{}' is not one of {}",
                v.preset,
                PRESETS.join(", ")
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitrates() {
        assert_eq!(parse_bitrate("2500k"), Ok(2_500_000));
        assert_eq!(parse_bitrate("2.5M"), Ok(2_500_000));
        assert_eq!(parse_bitrate("800000"), Ok(800_000));
        assert!(parse_bitrate("fast").is_err());
        assert!(parse_bitrate("1").is_err());
        assert!(parse_bitrate("").is_err());
        assert!(parse_bitrate("é").is_err());
    }
}
