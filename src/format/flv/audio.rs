//! FLV audio tag bodies: AAC (SoundFormat 10) sequence headers and raw frames.

use super::FlvError;
use bytes::Bytes;

/// SoundFormat 10 (AAC), 44 kHz, 16-bit, stereo: the flags AAC tags always carry.
const AAC_FLAGS: u8 = 0xaf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioPacket {
    /// AudioSpecificConfig.
    AacSequenceHeader(Bytes),
    AacFrame(Bytes),
    /// Another SoundFormat (MP3, G.711, …), not converted.
    Other {
        sound_format: u8,
    },
}

pub fn aac_sequence_header(asc: &[u8]) -> Vec<u8> {
    [&[AAC_FLAGS, 0][..], asc].concat()
}

pub fn aac_frame(au: &[u8]) -> Vec<u8> {
    [&[AAC_FLAGS, 1][..], au].concat()
}

pub fn parse_audio(body: &Bytes) -> Result<AudioPacket, FlvError> {
    let first = *body.first().ok_or(FlvError::Truncated("audio tag"))?;
    let sound_format = first >> 4;
    if sound_format != 10 {
        return Ok(AudioPacket::Other { sound_format });
    }
    match body.get(1) {
        Some(0) => Ok(AudioPacket::AacSequenceHeader(body.slice(2..))),
        Some(1) => Ok(AudioPacket::AacFrame(body.slice(2..))),
        Some(_) => Err(FlvError::Malformed("AACPacketType")),
        None => Err(FlvError::Truncated("AAC tag")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aac_roundtrip() {
        let h = Bytes::from(aac_sequence_header(&[0x12, 0x10]));
        assert_eq!(&h[..], &[0xaf, 0, 0x12, 0x10]);
        assert_eq!(
            parse_audio(&h).unwrap(),
            AudioPacket::AacSequenceHeader(Bytes::from_static(&[0x12, 0x10]))
        );
        let f = Bytes::from(aac_frame(&[9, 9]));
        assert_eq!(
            parse_audio(&f).unwrap(),
            AudioPacket::AacFrame(Bytes::from_static(&[9, 9]))
        );
        assert_eq!(
            parse_audio(&Bytes::from_static(&[0x2f, 1])).unwrap(),
            AudioPacket::Other { sound_format: 2 }
        );
        assert!(parse_audio(&Bytes::new()).is_err());
        assert!(parse_audio(&Bytes::from_static(&[0xaf])).is_err());
        assert!(parse_audio(&Bytes::from_static(&[0xaf, 7])).is_err());
    }
}
