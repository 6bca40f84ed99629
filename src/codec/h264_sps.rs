//! H.264 sequence parameter set (ITU-T H.264 §7.3.2.1.1): the fields readers and
//! container headers need — profile, level, chroma format, bit depth, picture size.

use super::bits::{rbsp, BitReader, EndOfData};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sps {
    pub profile_idc: u8,
    pub constraint_flags: u8,
    pub level_idc: u8,
    pub chroma_format_idc: u32,
    pub bit_depth_luma: u32,
    pub bit_depth_chroma: u32,
    pub width: u32,
    pub height: u32,
    /// Slice header layout and picture order count (for decode timestamps).
    pub separate_colour_plane: bool,
    pub log2_max_frame_num: u32,
    pub pic_order_cnt_type: u32,
    pub log2_max_poc_lsb: u32,
    pub frame_mbs_only: bool,
    pub max_num_ref_frames: u32,
    /// From the VUI bitstream restriction, when present.
    pub max_num_reorder_frames: Option<u32>,
}

fn skip_hrd(r: &mut BitReader) -> Result<(), EndOfData> {
    let cpb_cnt = r.ue()? + 1;
    if cpb_cnt > 32 {
        return Err(EndOfData);
    }
    r.skip(8)?; // bit_rate_scale, cpb_size_scale
    for _ in 0..cpb_cnt {
        r.ue()?;
        r.ue()?;
        r.bit()?;
    }
    r.skip(20)
}

/// VUI up to the bitstream restriction; returns max_num_reorder_frames if signalled.
fn vui_reorder(r: &mut BitReader) -> Result<Option<u32>, EndOfData> {
    if r.bit()? && r.bits(8)? == 255 {
        r.skip(32)?; // sar_width, sar_height
    }
    if r.bit()? {
        r.bit()?; // overscan_appropriate_flag
    }
    if r.bit()? {
        r.skip(4)?; // video_format, video_full_range_flag
        if r.bit()? {
            r.skip(24)?; // colour primaries, transfer, matrix
        }
    }
    if r.bit()? {
        r.ue()?;
        r.ue()?;
    }
    if r.bit()? {
        r.skip(65)?; // num_units_in_tick, time_scale, fixed_frame_rate_flag
    }
    let nal_hrd = r.bit()?;
    if nal_hrd {
        skip_hrd(r)?;
    }
    let vcl_hrd = r.bit()?;
    if vcl_hrd {
        skip_hrd(r)?;
    }
    if nal_hrd || vcl_hrd {
        r.bit()?; // low_delay_hrd_flag
    }
    r.bit()?; // pic_struct_present_flag
    if !r.bit()? {
        return Ok(None);
    }
    r.bit()?; // motion_vectors_over_pic_boundaries_flag
    for _ in 0..4 {
        r.ue()?;
    }
    Ok(Some(r.ue()?))
}

/// Profiles whose SPS carries chroma format, bit depths and scaling matrices.
fn has_chroma_info(profile: u8) -> bool {
    matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    )
}

fn skip_scaling_list(r: &mut BitReader, size: usize) -> Result<(), EndOfData> {
    let (mut last, mut next) = (8i32, 8i32);
    for _ in 0..size {
        if next != 0 {
            next = (last + r.se()? + 256).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

/// Parses an SPS NAL unit (header byte included).
pub fn parse(nal: &[u8]) -> Result<Sps, EndOfData> {
    let data = rbsp(nal.get(1..).ok_or(EndOfData)?);
    let mut r = BitReader::new(&data);
    let profile_idc = r.bits(8)? as u8;
    let constraint_flags = r.bits(8)? as u8;
    let level_idc = r.bits(8)? as u8;
    r.ue()?; // seq_parameter_set_id
    let (mut chroma_format_idc, mut bit_depth_luma, mut bit_depth_chroma) = (1, 8, 8);
    let mut separate_colour_plane = false;
    if has_chroma_info(profile_idc) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.bit()?;
        }
        bit_depth_luma = r.ue()? + 8;
        bit_depth_chroma = r.ue()? + 8;
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    let log2_max_frame_num = r.ue()? + 4;
    let pic_order_cnt_type = r.ue()?;
    let mut log2_max_poc_lsb = 0;
    match pic_order_cnt_type {
        0 => {
            log2_max_poc_lsb = r.ue()? + 4;
        }
        1 => {
            r.bit()?;
            r.se()?;
            r.se()?;
            let cycle = r.ue()?;
            if cycle > 255 {
                return Err(EndOfData);
            }
            for _ in 0..cycle {
                r.se()?;
            }
        }
        _ => {}
    }
    let max_num_ref_frames = r.ue()?;
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = u64::from(r.ue()?) + 1;
    let height_units = u64::from(r.ue()?) + 1;
    let frame_mbs_only = r.bit()?;
    if !frame_mbs_only {
        r.bit()?; // mb_adaptive_frame_field_flag
    }
    r.bit()?; // direct_8x8_inference_flag
    let field_factor = if frame_mbs_only { 1 } else { 2 };
    let mut width = width_mbs * 16;
    let mut height = height_units * 16 * field_factor;
    if r.bit()? {
        let (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        let (sub_w, sub_h) = match chroma_format_idc {
            0 => (1, 1),
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        width = width.saturating_sub(u64::from(left.saturating_add(right)) * sub_w);
        height =
            height.saturating_sub(u64::from(top.saturating_add(bottom)) * sub_h * field_factor);
    }
    // A VUI that does not parse only costs the reorder hint.
    let max_num_reorder_frames = if r.bit().unwrap_or(false) {
        vui_reorder(&mut r).ok().flatten()
    } else {
        None
    };
    if log2_max_frame_num > 16 || log2_max_poc_lsb > 16 {
        return Err(EndOfData);
    }
    Ok(Sps {
        separate_colour_plane,
        log2_max_frame_num,
        pic_order_cnt_type,
        log2_max_poc_lsb,
        frame_mbs_only,
        max_num_ref_frames,
        max_num_reorder_frames,
        profile_idc,
        constraint_flags,
        level_idc,
        chroma_format_idc,
        bit_depth_luma,
        bit_depth_chroma,
        width: width.min(u64::from(u32::MAX)) as u32,
        height: height.min(u64::from(u32::MAX)) as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baseline_640x360() {
        // libx264 baseline, 640x360 (cropped from 368 lines).
        let sps = [
            0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02, 0x80, 0xbf, 0xe5, 0xc0, 0x44, 0x00, 0x00, 0x03,
            0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x58, 0xba, 0x80,
        ];
        let s = parse(&sps).unwrap();
        assert_eq!(
            (s.profile_idc, s.level_idc, s.width, s.height),
            (66, 30, 640, 360)
        );
        assert_eq!((s.chroma_format_idc, s.bit_depth_luma), (1, 8));
    }

    #[test]
    fn high_profile_1280x720() {
        // libx264 high profile 1280x720 (the sprop-parameter-sets of an ffmpeg ANNOUNCE).
        let sps = crate::codec::bits::tests_b64("Z2QAH6zZQFAFuwEQAAADABAAAAMDwPGDGWA=");
        let s = parse(&sps).unwrap();
        assert_eq!(
            (s.profile_idc, s.level_idc, s.width, s.height),
            (100, 31, 1280, 720)
        );
    }

    #[test]
    fn truncated_is_an_error() {
        assert!(parse(&[0x67, 0x64, 0x00]).is_err());
        assert!(parse(&[]).is_err());
    }

    #[test]
    fn x264_with_b_frames_signals_reordering() {
        let sps =
            crate::codec::aac::decode_hex("6764001eacd940a02ff970110000030001000003003c0f162d96")
                .unwrap();
        let s = parse(&sps).unwrap();
        assert_eq!(
            (s.width, s.height, s.pic_order_cnt_type, s.frame_mbs_only),
            (640, 360, 0, true)
        );
        assert_eq!(s.max_num_reorder_frames, Some(2));
    }
}
