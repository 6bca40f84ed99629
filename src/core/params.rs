//! Keeps a video track's parameter sets current from in-band NAL units and puts
//! them in front of keyframes that lack them, so any reader can start decoding there.

use super::{Codec, Payload, Unit};
use crate::codec::{h264, h265};
use bytes::Bytes;

/// Updates `codec` from parameter sets inside `unit`, then prepends missing ones to a keyframe.
pub fn track_and_inject(codec: &mut Codec, unit: &mut Unit) {
    let Payload::Nalus(nalus) = &mut unit.payload else {
        return;
    };
    match codec {
        Codec::H264 { sps, pps } => {
            let (mut has_sps, mut has_pps) = (false, false);
            for n in nalus.iter() {
                match h264::nal_type(n) {
                    h264::NAL_SPS => (*sps, has_sps) = (Some(n.clone()), true),
                    h264::NAL_PPS => (*pps, has_pps) = (Some(n.clone()), true),
                    _ => {}
                }
            }
            if unit.keyframe {
                prepend(
                    nalus,
                    [
                        (!has_sps).then(|| sps.clone()).flatten(),
                        (!has_pps).then(|| pps.clone()).flatten(),
                    ],
                );
            }
        }
        Codec::H265 { vps, sps, pps } => {
            let (mut hv, mut hs, mut hp) = (false, false, false);
            for n in nalus.iter() {
                match h265::nal_type(n) {
                    h265::NAL_VPS => (*vps, hv) = (Some(n.clone()), true),
                    h265::NAL_SPS => (*sps, hs) = (Some(n.clone()), true),
                    h265::NAL_PPS => (*pps, hp) = (Some(n.clone()), true),
                    _ => {}
                }
            }
            if unit.keyframe {
                prepend(
                    nalus,
                    [
                        (!hv).then(|| vps.clone()).flatten(),
                        (!hs).then(|| sps.clone()).flatten(),
                        (!hp).then(|| pps.clone()).flatten(),
                    ],
                );
            }
        }
        _ => {}
    }
}

fn prepend<const N: usize>(nalus: &mut Vec<Bytes>, sets: [Option<Bytes>; N]) {
    let sets: Vec<Bytes> = sets.into_iter().flatten().collect();
    if !sets.is_empty() {
        // Parameter sets go after an access unit delimiter, if there is one.
        let at = usize::from(nalus.first().is_some_and(|n| {
            h264::nal_type(n) == h264::NAL_AUD || h265::nal_type(n) == h265::NAL_AUD
        }));
        nalus.splice(at..at, sets);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(nalus: Vec<&'static [u8]>, keyframe: bool) -> Unit {
        Unit {
            track: 0,
            pts: 0,
            dts: 0,
            keyframe,
            payload: Payload::Nalus(nalus.into_iter().map(Bytes::from_static).collect()),
        }
    }

    #[test]
    fn learns_and_injects_h264() {
        let mut codec = Codec::H264 {
            sps: None,
            pps: None,
        };
        let mut u = unit(vec![&[0x67, 1], &[0x68, 2], &[0x65, 3]], true);
        track_and_inject(&mut codec, &mut u);
        assert_eq!(u.payload.len(), 6);
        let mut u = unit(vec![&[0x09, 0x10], &[0x65, 4]], true);
        track_and_inject(&mut codec, &mut u);
        let Payload::Nalus(n) = &u.payload else {
            unreachable!()
        };
        assert_eq!(
            n.iter().map(|n| n[0]).collect::<Vec<_>>(),
            vec![0x09, 0x67, 0x68, 0x65]
        );
        let mut u = unit(vec![&[0x41, 5]], false);
        track_and_inject(&mut codec, &mut u);
        assert_eq!(u.payload.len(), 2);
    }
}
