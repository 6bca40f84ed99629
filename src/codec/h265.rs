//! H.265 NAL unit helpers: types, keyframe (IRAP) detection.

pub const NAL_VPS: u8 = 32;
pub const NAL_SPS: u8 = 33;
pub const NAL_PPS: u8 = 34;
pub const NAL_AUD: u8 = 35;

pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| (b >> 1) & 0x3f)
}

/// IRAP pictures (BLA, IDR, CRA) are random access points.
pub fn is_keyframe<B: AsRef<[u8]>>(nalus: &[B]) -> bool {
    nalus
        .iter()
        .any(|n| (16..=21).contains(&nal_type(n.as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types() {
        assert_eq!(nal_type(&[0x40, 0x01]), NAL_VPS);
        assert_eq!(nal_type(&[0x42, 0x01]), NAL_SPS);
        assert!(is_keyframe(&[&[0x26u8, 0x01][..]])); // IDR_W_RADL
        assert!(!is_keyframe(&[&[0x02u8, 0x01][..]])); // TRAIL_R
    }
}
