//! The decoding side of a stage: FFmpeg's H.264/H.265 decoder on NVDEC through a CUDA
//! device when `hwaccel` allows and one opens (frames then stay in GPU memory), in
//! software otherwise; and the input's units as the Annex B packets it takes.

use super::hw::CudaDevice;
use crate::core::{Codec, Payload, Unit};
use ffmpeg_next as ff;

/// Frames the decoder keeps beyond its reference frames, for the scaler to hold.
const EXTRA_HW_FRAMES: i32 = 4;

/// An open decoder.
pub struct Decoder {
    dec: ff::decoder::Video,
    /// Kept for the decoder's lifetime (it holds its own reference too).
    _device: Option<CudaDevice>,
    packet: ff::Packet,
}

impl Decoder {
    /// The decoder for `codec`, with a CUDA device attached when `cuda` and one opens;
    /// the note says what happened, for the decision line. FFmpeg falls back to
    /// software by itself when NVDEC can't take a stream (profile, size).
    pub fn open(codec: &Codec, cuda: bool) -> Result<(Decoder, String), String> {
        let id = match codec {
            Codec::H265 { .. } => ff::codec::Id::HEVC,
            _ => ff::codec::Id::H264,
        };
        let c =
            ff::decoder::find(id).ok_or_else(|| format!("{id:?}: no decoder in this FFmpeg"))?;
        let (device, note) = match cuda {
            false => (None, "cuda decode off (hwaccel: none)".to_string()),
            true => match CudaDevice::open() {
                Ok(d) => (Some(d), "cuda decode yes (nvdec)".to_string()),
                Err(e) => (None, format!("cuda decode no (no CUDA device: {e})")),
            },
        };
        let mut ctx = ff::codec::context::Context::new_with_codec(c);
        if let Some(d) = &device {
            // SAFETY: set before the codec opens; the context owns the new reference.
            unsafe {
                let p = ctx.as_mut_ptr();
                (*p).hw_device_ctx = d.new_ref();
                (*p).extra_hw_frames = EXTRA_HW_FRAMES;
            }
        }
        let dec = ctx.decoder().video().map_err(|e| e.to_string())?;
        Ok((
            Decoder {
                dec,
                _device: device,
                packet: ff::Packet::empty(),
            },
            note,
        ))
    }

    /// Feeds one access unit (keyframes carrying their parameter sets).
    pub fn send(&mut self, unit: &Unit) -> Result<(), String> {
        self.packet = annexb(unit);
        self.packet.set_pts(Some(unit.pts));
        self.packet.set_dts(Some(unit.dts));
        if unit.keyframe {
            self.packet.set_flags(ff::packet::Flags::KEY);
        }
        self.dec
            .send_packet(&self.packet)
            .map_err(|e| format!("decoding: {e}"))
    }

    /// The next decoded frame, if one is ready.
    pub fn receive(&mut self, frame: &mut ff::frame::Video) -> bool {
        self.dec.receive_frame(frame).is_ok()
    }

    /// The input ended: what the decoder holds comes out through `receive`.
    pub fn finish(&mut self) {
        let _ = self.dec.send_eof();
    }
}

/// The unit's NAL units as one Annex B access unit, written straight into a packet.
pub fn annexb(unit: &Unit) -> ff::Packet {
    let Payload::Nalus(nalus) = &unit.payload else {
        return ff::Packet::empty();
    };
    let len = nalus.iter().map(|n| n.len() + 4).sum();
    let mut packet = ff::Packet::new(len);
    if let Some(data) = packet.data_mut() {
        let mut at = 0;
        for n in nalus {
            data[at..at + 4].copy_from_slice(&[0, 0, 0, 1]);
            data[at + 4..at + 4 + n.len()].copy_from_slice(n);
            at += 4 + n.len();
        }
    }
    packet
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn units_become_annexb_access_units() {
        let unit = Unit {
            track: 0,
            pts: 0,
            dts: 0,
            keyframe: true,
            payload: Payload::Nalus(vec![
                Bytes::from_static(&[0x67, 1]),
                Bytes::from_static(&[0x65, 3]),
            ]),
        };
        let packet = annexb(&unit);
        assert_eq!(
            packet.data(),
            Some(&[0, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x65, 3][..])
        );
    }
}
