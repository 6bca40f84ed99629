//! Decoder configuration records (ISO/IEC 14496-15): `avcC` for H.264 and `hvcC` for
//! H.265, as FLV sequence headers and MP4 sample entries carry them. Built from
//! parameter sets, and parsed back into them.

use super::bits::EndOfData;
use super::{h264_sps, h265_sps};
use bytes::Bytes;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigRecordError {
    #[error("parameter set does not parse")]
    BadParameterSet,
    #[error("parameter set longer than 65535 bytes")]
    TooLong,
    #[error("decoder configuration record is truncated or malformed")]
    Malformed,
}

impl From<EndOfData> for ConfigRecordError {
    fn from(_: EndOfData) -> Self {
        ConfigRecordError::BadParameterSet
    }
}

/// Parameter sets out of a record, NAL units without length prefixes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParameterSets {
    /// Size of the NAL length prefix in samples: 1, 2 or 4.
    pub length_size: u8,
    pub vps: Vec<Bytes>,
    pub sps: Vec<Bytes>,
    pub pps: Vec<Bytes>,
}

fn push_nal(out: &mut Vec<u8>, nal: &[u8]) -> Result<(), ConfigRecordError> {
    let len = u16::try_from(nal.len()).map_err(|_| ConfigRecordError::TooLong)?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(nal);
    Ok(())
}

/// `avcC` for one SPS and one PPS, 4-byte NAL lengths.
pub fn avcc(sps: &[u8], pps: &[u8]) -> Result<Vec<u8>, ConfigRecordError> {
    let info = h264_sps::parse(sps)?;
    let mut out = vec![
        1,
        info.profile_idc,
        info.constraint_flags,
        info.level_idc,
        0xff,
        0xe1,
    ];
    push_nal(&mut out, sps)?;
    out.push(1);
    push_nal(&mut out, pps)?;
    if matches!(info.profile_idc, 100 | 110 | 122 | 144) {
        out.push(0xfc | (info.chroma_format_idc & 3) as u8);
        out.push(0xf8 | (info.bit_depth_luma.saturating_sub(8) & 7) as u8);
        out.push(0xf8 | (info.bit_depth_chroma.saturating_sub(8) & 7) as u8);
        out.push(0); // numOfSequenceParameterSetExt
    }
    Ok(out)
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ConfigRecordError> {
        if self.0.len() < n {
            return Err(ConfigRecordError::Malformed);
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, ConfigRecordError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, ConfigRecordError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn nal(&mut self, record: &Bytes) -> Result<Bytes, ConfigRecordError> {
        let len = usize::from(self.u16()?);
        let start = record.len() - self.0.len();
        self.take(len)?;
        Ok(record.slice(start..start + len))
    }
}

pub fn parse_avcc(record: &Bytes) -> Result<ParameterSets, ConfigRecordError> {
    let mut c = Cursor(record);
    if c.u8()? != 1 {
        return Err(ConfigRecordError::Malformed);
    }
    c.take(3)?;
    let length_size = (c.u8()? & 3) + 1;
    let mut sets = ParameterSets {
        length_size,
        ..Default::default()
    };
    for _ in 0..(c.u8()? & 0x1f) {
        sets.sps.push(c.nal(record)?);
    }
    for _ in 0..c.u8()? {
        sets.pps.push(c.nal(record)?);
    }
    Ok(sets)
}

/// `hvcC` for one VPS, SPS and PPS, 4-byte NAL lengths.
pub fn hvcc(vps: &[u8], sps: &[u8], pps: &[u8]) -> Result<Vec<u8>, ConfigRecordError> {
    let s = h265_sps::parse(sps)?;
    let mut out = vec![
        1,
        (s.profile_space << 6) | (u8::from(s.tier) << 5) | (s.profile_idc & 0x1f),
    ];
    out.extend_from_slice(&s.profile_compatibility.to_be_bytes());
    out.extend_from_slice(&s.constraint_indicator.to_be_bytes()[2..]);
    out.push(s.level_idc);
    out.extend_from_slice(&[0xf0, 0x00]); // min_spatial_segmentation_idc: unknown
    out.push(0xfc); // parallelismType: unknown
    out.push(0xfc | (s.chroma_format_idc & 3) as u8);
    out.push(0xf8 | (s.bit_depth_luma.saturating_sub(8) & 7) as u8);
    out.push(0xf8 | (s.bit_depth_chroma.saturating_sub(8) & 7) as u8);
    out.extend_from_slice(&[0, 0]); // avgFrameRate: unknown
    out.push(((s.max_sub_layers & 7) << 3) | (u8::from(s.temporal_id_nesting) << 2) | 3);
    out.push(3);
    for (typ, nal) in [(32u8, vps), (33, sps), (34, pps)] {
        out.push(0x80 | typ); // array_completeness = 1
        out.extend_from_slice(&1u16.to_be_bytes());
        push_nal(&mut out, nal)?;
    }
    Ok(out)
}

pub fn parse_hvcc(record: &Bytes) -> Result<ParameterSets, ConfigRecordError> {
    let mut c = Cursor(record);
    if c.u8()? != 1 {
        return Err(ConfigRecordError::Malformed);
    }
    c.take(20)?;
    let length_size = (c.u8()? & 3) + 1;
    let mut sets = ParameterSets {
        length_size,
        ..Default::default()
    };
    for _ in 0..c.u8()? {
        let typ = c.u8()? & 0x3f;
        for _ in 0..c.u16()? {
            let nal = c.nal(record)?;
            match typ {
                32 => sets.vps.push(nal),
                33 => sets.sps.push(nal),
                34 => sets.pps.push(nal),
                _ => {}
            }
        }
    }
    Ok(sets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::h265_sps::tests::{PPS, SPS, VPS};

    fn hex(s: &str) -> Bytes {
        Bytes::from(crate::codec::aac::decode_hex(s).unwrap())
    }

    #[test]
    fn avcc_matches_ffmpeg_and_parses_back() {
        // The avcC ffmpeg writes into an MP4 for this SPS/PPS.
        let ffmpeg =
            hex("0142c01effe100196742c01eda0280bfe5c044000003000400000300f03c58ba8001000468ce0fc8");
        let sets = parse_avcc(&ffmpeg).unwrap();
        assert_eq!(sets.length_size, 4);
        assert_eq!((sets.sps.len(), sets.pps.len()), (1, 1));
        assert_eq!(avcc(&sets.sps[0], &sets.pps[0]).unwrap(), ffmpeg.to_vec());
        assert!(parse_avcc(&ffmpeg.slice(..20)).is_err());
        assert!(parse_avcc(&Bytes::new()).is_err());
    }

    #[test]
    fn hvcc_matches_ffmpeg_header_and_parses_back() {
        let ours = Bytes::from(hvcc(VPS, SPS, PPS).unwrap());
        // ffmpeg's hvcC for the same stream starts with these 22 bytes.
        assert_eq!(
            ours.slice(..22),
            hex("0101600000009000000000003cf000fcfdf8f800000f")
        );
        let sets = parse_hvcc(&ours).unwrap();
        assert_eq!(
            (
                sets.vps[0].as_ref(),
                sets.sps[0].as_ref(),
                sets.pps[0].as_ref()
            ),
            (VPS, SPS, PPS)
        );
        assert_eq!(sets.length_size, 4);
        assert!(parse_hvcc(&ours.slice(..30)).is_err());
        assert!(hvcc(VPS, &SPS[..8], PPS).is_err());
    }
}
