//! Decode timestamps for H.264 that arrives with presentation times only (RTP).
//! The picture order count of each slice gives its display position inside the GOP;
//! with the SPS's reorder depth R, frame j (decode order) after an IDR decodes at
//! `pts(IDR) + (j - R) * frame_duration`, which is monotonic and never after its pts.

use super::bits::{rbsp, BitReader, EndOfData};
use super::{h264, h264_sps};
use bytes::Bytes;

#[derive(Debug)]
pub struct DtsExtractor {
    clock_rate: i64,
    sps: Option<h264_sps::Sps>,
    prev_poc_msb: i64,
    prev_poc_lsb: i64,
    idr_pts: Option<i64>,
    /// Frames decoded since the last IDR.
    index: i64,
    /// POC units per frame: 2 for frame coding, 1 if odd POC steps are seen.
    poc_step: i64,
    frame_duration: Option<i64>,
    last_dts: Option<i64>,
}

struct Slice {
    idr: bool,
    ref_idc: u8,
    poc_lsb: i64,
}

impl DtsExtractor {
    pub fn new(clock_rate: u32, sps: Option<&[u8]>) -> Self {
        DtsExtractor {
            clock_rate: i64::from(clock_rate.max(1)),
            sps: sps.and_then(|s| h264_sps::parse(s).ok()),
            prev_poc_msb: 0,
            prev_poc_lsb: 0,
            idr_pts: None,
            index: 0,
            poc_step: 2,
            frame_duration: None,
            last_dts: None,
        }
    }

    fn reorder(&self, sps: &h264_sps::Sps) -> i64 {
        match (sps.max_num_reorder_frames, sps.profile_idc) {
            (Some(r), _) => i64::from(r.min(16)),
            // Baseline has no B-frames.
            (None, 66) => 0,
            (None, _) => i64::from(sps.max_num_ref_frames.min(16)),
        }
    }

    /// The dts of one access unit (NAL units in decode order) whose pts is `pts`.
    pub fn extract(&mut self, nalus: &[Bytes], pts: i64) -> i64 {
        for n in nalus {
            if h264::nal_type(n) == h264::NAL_SPS {
                if let Ok(s) = h264_sps::parse(n) {
                    self.sps = Some(s);
                }
            }
        }
        let dts = self.compute(nalus, pts).unwrap_or(pts);
        // Decode times never go backwards, whatever the stream claims.
        let dts = match self.last_dts {
            Some(last) if dts <= last => last + 1,
            _ => dts,
        };
        self.last_dts = Some(dts);
        dts
    }

    fn compute(&mut self, nalus: &[Bytes], pts: i64) -> Option<i64> {
        let sps = self.sps.clone()?;
        if sps.pic_order_cnt_type == 2 {
            return Some(pts); // output order is decode order
        }
        if sps.pic_order_cnt_type != 0 {
            return None;
        }
        let vcl = nalus.iter().find(|n| matches!(h264::nal_type(n), 1 | 5))?;
        let slice = parse_slice(vcl, &sps).ok()?;
        let max_lsb = 1i64 << sps.log2_max_poc_lsb;
        if slice.idr {
            self.prev_poc_msb = 0;
            self.prev_poc_lsb = 0;
        }
        let (lsb, prev_lsb, prev_msb) = (slice.poc_lsb, self.prev_poc_lsb, self.prev_poc_msb);
        let msb = if lsb < prev_lsb && prev_lsb - lsb >= max_lsb / 2 {
            prev_msb + max_lsb
        } else if lsb > prev_lsb && lsb - prev_lsb > max_lsb / 2 {
            prev_msb - max_lsb
        } else {
            prev_msb
        };
        let poc = msb + lsb;
        if slice.ref_idc != 0 {
            self.prev_poc_msb = msb;
            self.prev_poc_lsb = lsb;
        }
        let reorder = self.reorder(&sps);
        if slice.idr {
            self.idr_pts = Some(pts);
            self.index = 0;
        } else {
            self.index += 1;
        }
        if poc % 2 != 0 {
            self.poc_step = 1;
        }
        let idr_pts = self.idr_pts?;
        let display = poc / self.poc_step;
        if display > 0 && pts > idr_pts {
            self.frame_duration = Some((pts - idr_pts) / display);
        }
        // Before the first estimate, assume 30 frames per second.
        let duration = self.frame_duration.unwrap_or(self.clock_rate / 30);
        Some((idr_pts + (self.index - reorder) * duration).min(pts))
    }
}

fn parse_slice(nal: &[u8], sps: &h264_sps::Sps) -> Result<Slice, EndOfData> {
    let header = *nal.first().ok_or(EndOfData)?;
    let data = rbsp(&nal[1..nal.len().min(64)]);
    let mut r = BitReader::new(&data);
    r.ue()?; // first_mb_in_slice
    r.ue()?; // slice_type
    r.ue()?; // pic_parameter_set_id
    if sps.separate_colour_plane {
        r.skip(2)?;
    }
    r.skip(sps.log2_max_frame_num as usize)?; // frame_num
    if !sps.frame_mbs_only && r.bit()? {
        r.bit()?; // bottom_field_flag
    }
    let idr = header & 0x1f == h264::NAL_IDR;
    if idr {
        r.ue()?; // idr_pic_id
    }
    let poc_lsb = r.bits(sps.log2_max_poc_lsb)? as i64;
    Ok(Slice {
        idr,
        ref_idc: (header >> 5) & 3,
        poc_lsb,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS: &str = "6764001eacd940a02ff970110000030001000003003c0f162d96";

    /// Slice NAL headers and POC LSBs of x264 `-bf 2` (b-pyramid), decode order:
    /// I0 P3 B1(ref) b2 P6 B4 b5 ... with POC = 2 × display index.
    fn slice(
        ref_idc: u8,
        typ: u8,
        poc_lsb: u32,
        log2_max_poc_lsb: u32,
        log2_max_frame_num: u32,
    ) -> Bytes {
        // first_mb ue(0)=1, slice_type ue(0)=1, pps ue(0)=1, frame_num, [idr_pic_id ue(0)=1], poc lsb.
        let mut bits: Vec<bool> = vec![true, true, true];
        bits.extend(std::iter::repeat_n(false, log2_max_frame_num as usize));
        if typ == 5 {
            bits.push(true);
        }
        bits.extend((0..log2_max_poc_lsb).rev().map(|i| poc_lsb >> i & 1 == 1));
        bits.push(true);
        let mut out = vec![(ref_idc << 5) | typ];
        for chunk in bits.chunks(8) {
            let mut b = 0u8;
            for (i, bit) in chunk.iter().enumerate() {
                b |= u8::from(*bit) << (7 - i);
            }
            out.push(b);
        }
        Bytes::from(out)
    }

    #[test]
    fn b_pyramid_gets_monotonic_dts_two_frames_back() {
        let sps_bytes = crate::codec::aac::decode_hex(SPS).unwrap();
        let sps = h264_sps::parse(&sps_bytes).unwrap();
        let mut x = DtsExtractor::new(90000, Some(&sps_bytes));
        let d = 3000;
        // (ref_idc, nal type, display index) in decode order.
        let frames = [
            (3, 5, 0),
            (2, 1, 3),
            (2, 1, 1),
            (0, 1, 2),
            (2, 1, 6),
            (2, 1, 4),
            (0, 1, 5),
            (2, 1, 9),
        ];
        let mut dts = Vec::new();
        for (k, (ref_idc, typ, display)) in frames.into_iter().enumerate() {
            let nal = slice(
                ref_idc,
                typ,
                2 * display,
                sps.log2_max_poc_lsb,
                sps.log2_max_frame_num,
            );
            let pts = 90_000 + i64::from(display) * d;
            let got = x.extract(&[nal], pts);
            assert!(got <= pts, "frame {k}: dts {got} after pts {pts}");
            dts.push(got);
        }
        // Frame j decodes at pts(IDR) + (j - 2) d once the duration is known.
        // (The IDR used the 30 fps guess, which is also 3000 ticks here.)
        let expected: Vec<i64> = (0..8).map(|j| 90_000 + (j - 2) * d).collect();
        assert_eq!(dts, expected);
        assert!(dts.windows(2).all(|w| w[0] < w[1]), "{dts:?}");
    }

    #[test]
    fn without_sps_or_for_baseline_dts_is_pts() {
        let mut x = DtsExtractor::new(90000, None);
        assert_eq!(x.extract(&[Bytes::from_static(&[0x65, 0x88])], 500), 500);
        assert_eq!(
            x.extract(&[Bytes::from_static(&[0x41, 0x9a])], 400),
            501,
            "never backwards"
        );
    }
}
