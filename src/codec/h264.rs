//! H.264 NAL unit helpers: types, keyframe detection, parameter sets.

pub const NAL_IDR: u8 = 5;
pub const NAL_SEI: u8 = 6;
pub const NAL_SPS: u8 = 7;
pub const NAL_PPS: u8 = 8;
pub const NAL_AUD: u8 = 9;

pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1f)
}

pub fn is_keyframe<B: AsRef<[u8]>>(nalus: &[B]) -> bool {
    nalus.iter().any(|n| nal_type(n.as_ref()) == NAL_IDR)
}

/// `profile-level-id` for SDP: the three bytes after the SPS NAL header, in hex.
pub fn profile_level_id(sps: &[u8]) -> Option<String> {
    (sps.len() >= 4).then(|| format!("{:02X}{:02X}{:02X}", sps[1], sps[2], sps[3]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types() {
        assert_eq!(nal_type(&[0x67, 0x42]), NAL_SPS);
        assert!(is_keyframe(&[&[0x67u8][..], &[0x65, 0x88][..]]));
        assert!(!is_keyframe(&[&[0x41u8, 0x9a][..]]));
        assert_eq!(
            profile_level_id(&[0x67, 0x64, 0x00, 0x1f, 0xac]).unwrap(),
            "64001F"
        );
        assert_eq!(profile_level_id(&[0x67]), None);
    }
}
