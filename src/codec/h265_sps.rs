//! H.265 sequence parameter set (ITU-T H.265 §7.3.2.2): the general profile/tier/level
//! block that hvcC copies, chroma format, bit depths and picture size.

use super::bits::{rbsp, BitReader, EndOfData};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sps {
    pub max_sub_layers: u8,
    pub temporal_id_nesting: bool,
    pub profile_space: u8,
    pub tier: bool,
    pub profile_idc: u8,
    pub profile_compatibility: u32,
    /// The 48 constraint indicator bits.
    pub constraint_indicator: u64,
    pub level_idc: u8,
    pub chroma_format_idc: u32,
    pub bit_depth_luma: u32,
    pub bit_depth_chroma: u32,
    pub width: u32,
    pub height: u32,
    /// `sps_max_num_reorder_pics` of the highest sub-layer: how many frames may come
    /// before another in decode order yet after it on screen. `None` if cut short.
    pub max_num_reorder: Option<u32>,
}

/// Parses an SPS NAL unit (the 2-byte header included).
pub fn parse(nal: &[u8]) -> Result<Sps, EndOfData> {
    let data = rbsp(nal.get(2..).ok_or(EndOfData)?);
    let mut r = BitReader::new(&data);
    r.bits(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.bits(3)? as usize;
    let temporal_id_nesting = r.bit()?;
    let profile_space = r.bits(2)? as u8;
    let tier = r.bit()?;
    let profile_idc = r.bits(5)? as u8;
    let profile_compatibility = r.bits(32)? as u32;
    let constraint_indicator = r.bits(48)?;
    let level_idc = r.bits(8)? as u8;
    let mut present = Vec::with_capacity(max_sub_layers_minus1);
    for _ in 0..max_sub_layers_minus1 {
        present.push((r.bit()?, r.bit()?));
    }
    if max_sub_layers_minus1 > 0 {
        r.skip(2 * (8 - max_sub_layers_minus1))?; // reserved_zero_2bits
    }
    for (profile, level) in present {
        if profile {
            r.skip(88)?;
        }
        if level {
            r.skip(8)?;
        }
    }
    r.ue()?; // sps_seq_parameter_set_id
    let chroma_format_idc = r.ue()?;
    if chroma_format_idc == 3 {
        r.bit()?; // separate_colour_plane_flag
    }
    let mut width = r.ue()?;
    let mut height = r.ue()?;
    if r.bit()? {
        let (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        let (sub_w, sub_h) = match chroma_format_idc {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        width = width.saturating_sub(left.saturating_add(right).saturating_mul(sub_w));
        height = height.saturating_sub(top.saturating_add(bottom).saturating_mul(sub_h));
    }
    let bit_depth_luma = r.ue()? + 8;
    let bit_depth_chroma = r.ue()? + 8;
    let max_num_reorder = (|| {
        r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        let all_layers = r.bit()?; // sps_sub_layer_ordering_info_present_flag
        let mut reorder = 0;
        for _ in 0..if all_layers {
            max_sub_layers_minus1 + 1
        } else {
            1
        } {
            r.ue()?; // sps_max_dec_pic_buffering_minus1
            reorder = r.ue()?;
            r.ue()?; // sps_max_latency_increase_plus1
        }
        Ok::<_, EndOfData>(reorder)
    })()
    .ok();
    Ok(Sps {
        max_sub_layers: max_sub_layers_minus1 as u8 + 1,
        temporal_id_nesting,
        profile_space,
        tier,
        profile_idc,
        profile_compatibility,
        constraint_indicator,
        level_idc,
        chroma_format_idc,
        bit_depth_luma,
        bit_depth_chroma,
        width,
        height,
        max_num_reorder,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// libx265 Main profile 320x240 (VPS, SPS, PPS).
    pub(crate) const VPS: &[u8] = &[
        0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00,
        0x03, 0x00, 0x00, 0x03, 0x00, 0x3c, 0xba, 0x02, 0x40,
    ];
    pub(crate) const SPS: &[u8] = &[
        0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00,
        0x03, 0x00, 0x3c, 0xa0, 0x0a, 0x08, 0x0f, 0x16, 0x5b, 0xa4, 0xa4, 0xc2, 0xf0, 0x16, 0x80,
        0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x0f, 0x04,
    ];
    pub(crate) const PPS: &[u8] = &[0x44, 0x01, 0xc0, 0x73, 0xc1, 0x89];

    #[test]
    fn main_profile_320x240() {
        let s = parse(SPS).unwrap();
        assert_eq!(
            (s.profile_idc, s.level_idc, s.width, s.height),
            (1, 60, 320, 240)
        );
        assert_eq!(
            (s.profile_compatibility, s.constraint_indicator),
            (0x6000_0000, 0x9000_0000_0000)
        );
        assert_eq!(
            (s.chroma_format_idc, s.bit_depth_luma, s.bit_depth_chroma),
            (1, 8, 8)
        );
        assert_eq!((s.max_sub_layers, s.temporal_id_nesting), (1, true));
        // libx265 ultrafast without B-frames.
        assert_eq!(s.max_num_reorder, Some(0));
        assert!(parse(&SPS[..10]).is_err());
    }
}
