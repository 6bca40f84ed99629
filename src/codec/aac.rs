//! MPEG-4 AudioSpecificConfig: the sample rate and channel count a reader needs.

const RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioSpecificConfig {
    pub object_type: u8,
    pub sample_rate: u32,
    pub channels: u8,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AacError {
    #[error("AudioSpecificConfig too short")]
    TooShort,
    #[error("AudioSpecificConfig has an invalid sample rate index {0}")]
    BadRateIndex(u8),
}

struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn read(&mut self, n: usize) -> Result<u32, AacError> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.data.get(self.pos / 8).ok_or(AacError::TooShort)?;
            v = (v << 1) | u32::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        Ok(v)
    }
}

impl AudioSpecificConfig {
    /// The 7-byte ADTS header (no CRC) for one raw AAC frame of `frame_len` bytes, as
    /// MPEG-TS carries AAC. `None` if ADTS can't express this config (object types
    /// above 4, rates outside the index table, more than 7 channels, frames ≥ 8 KiB).
    pub fn adts_header(&self, frame_len: usize) -> Option<[u8; 7]> {
        let rate = RATES.iter().position(|r| *r == self.sample_rate)? as u8;
        let profile = self.object_type.checked_sub(1).filter(|p| *p < 4)?;
        let ch = self.channels;
        let len = frame_len + 7;
        if ch > 7 || len >= 1 << 13 {
            return None;
        }
        Some([
            0xff,
            0xf1, // MPEG-4, layer 0, no CRC
            (profile << 6) | (rate << 2) | (ch >> 2),
            ((ch & 3) << 6) | (len >> 11) as u8,
            (len >> 3) as u8,
            (((len & 7) as u8) << 5) | 0x1f,
            0xfc, // buffer fullness 0x7ff (VBR), one raw data block
        ])
    }

    /// The two-byte AudioSpecificConfig of an object type up to 30 at a rate in the
    /// index table; `None` otherwise.
    pub fn to_bytes(&self) -> Option<[u8; 2]> {
        let rate = RATES.iter().position(|r| *r == self.sample_rate)? as u8;
        if self.object_type > 30 || self.channels > 15 {
            return None;
        }
        Some([
            (self.object_type << 3) | (rate >> 1),
            ((rate & 1) << 7) | (self.channels << 3),
        ])
    }

    pub fn parse(data: &[u8]) -> Result<Self, AacError> {
        let mut b = Bits { data, pos: 0 };
        let mut object_type = b.read(5)? as u8;
        if object_type == 31 {
            object_type = 32 + b.read(6)? as u8;
        }
        let idx = b.read(4)? as u8;
        let sample_rate = if idx == 15 {
            b.read(24)?
        } else {
            *RATES.get(idx as usize).ok_or(AacError::BadRateIndex(idx))?
        };
        let channels = b.read(4)? as u8;
        Ok(AudioSpecificConfig {
            object_type,
            sample_rate,
            channels,
        })
    }
}

/// Decodes the hex `config=` parameter of an RFC 3640 fmtp line.
pub fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

pub fn encode_hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lc_44100_stereo() {
        let asc = AudioSpecificConfig::parse(&[0x12, 0x10]).unwrap();
        assert_eq!(
            asc,
            AudioSpecificConfig {
                object_type: 2,
                sample_rate: 44100,
                channels: 2
            }
        );
        assert_eq!(AudioSpecificConfig::parse(&[0x12]), Err(AacError::TooShort));
        assert_eq!(
            AudioSpecificConfig::parse(&[0x16, 0x90]),
            Err(AacError::BadRateIndex(13))
        );
    }

    #[test]
    fn configs_round_trip() {
        for (rate, ch) in [(44100, 2), (48000, 1), (8000, 6)] {
            let asc = AudioSpecificConfig {
                object_type: 2,
                sample_rate: rate,
                channels: ch,
            };
            let b = asc.to_bytes().unwrap();
            assert_eq!(AudioSpecificConfig::parse(&b).unwrap(), asc);
        }
        assert_eq!(
            AudioSpecificConfig {
                object_type: 2,
                sample_rate: 44100,
                channels: 2
            }
            .to_bytes(),
            Some([0x12, 0x10])
        );
        let odd = AudioSpecificConfig {
            object_type: 2,
            sample_rate: 12345,
            channels: 2,
        };
        assert_eq!(odd.to_bytes(), None);
    }

    #[test]
    fn hex() {
        assert_eq!(decode_hex("1210").unwrap(), vec![0x12, 0x10]);
        assert_eq!(encode_hex(&[0x12, 0x10]), "1210");
        assert!(decode_hex("121").is_none());
        assert!(decode_hex("zz").is_none());
    }
}
