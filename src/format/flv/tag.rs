//! FLV file header and tag framing (11-byte tag header, body, 4-byte PreviousTagSize).

use super::FlvError;

pub const TAG_HEADER_LEN: usize = 11;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagType {
    Audio = 8,
    Video = 9,
    Script = 18,
}

/// `FLV`, version 1, the audio/video flags, header size 9, then PreviousTagSize0.
pub fn file_header(audio: bool, video: bool) -> [u8; 13] {
    let flags = (u8::from(audio) << 2) | u8::from(video);
    [b'F', b'L', b'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0]
}

/// One complete tag: header, body and the trailing PreviousTagSize.
pub fn tag(typ: TagType, timestamp_ms: u32, body: &[u8]) -> Vec<u8> {
    let len = body.len().min(0xff_ffff) as u32;
    let mut out = Vec::with_capacity(TAG_HEADER_LEN + body.len() + 4);
    out.push(typ as u8);
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.extend_from_slice(&(timestamp_ms & 0xff_ffff).to_be_bytes()[1..]);
    out.push((timestamp_ms >> 24) as u8);
    out.extend_from_slice(&[0, 0, 0]); // StreamID
    out.extend_from_slice(&body[..len as usize]);
    out.extend_from_slice(&(TAG_HEADER_LEN as u32 + len).to_be_bytes());
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag<'a> {
    pub typ: u8,
    pub timestamp_ms: u32,
    pub body: &'a [u8],
}

/// Parses the tag at the front of `buf` (after the file header). `Ok(None)` needs more data;
/// on success returns the tag and the bytes it used, PreviousTagSize included.
pub fn parse_tag(buf: &[u8]) -> Result<Option<(Tag<'_>, usize)>, FlvError> {
    if buf.len() < TAG_HEADER_LEN {
        return Ok(None);
    }
    if buf[0] & 0x20 != 0 {
        return Err(FlvError::Unsupported("encrypted tag".into()));
    }
    let len = u32::from_be_bytes([0, buf[1], buf[2], buf[3]]) as usize;
    let total = TAG_HEADER_LEN + len + 4;
    if buf.len() < total {
        return Ok(None);
    }
    let timestamp_ms = u32::from_be_bytes([buf[7], buf[4], buf[5], buf[6]]);
    let prev = u32::from_be_bytes([
        buf[total - 4],
        buf[total - 3],
        buf[total - 2],
        buf[total - 1],
    ]);
    if prev as usize != TAG_HEADER_LEN + len {
        return Err(FlvError::Malformed("PreviousTagSize"));
    }
    Ok(Some((
        Tag {
            typ: buf[0] & 0x1f,
            timestamp_ms,
            body: &buf[TAG_HEADER_LEN..TAG_HEADER_LEN + len],
        },
        total,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_tag_roundtrip() {
        assert_eq!(&file_header(true, true)[..5], b"FLV\x01\x05");
        let t = tag(TagType::Video, 0x0123_4567, &[1, 2, 3]);
        assert_eq!(&t[..11], &[9, 0, 0, 3, 0x23, 0x45, 0x67, 0x01, 0, 0, 0]);
        assert_eq!(&t[14..], &14u32.to_be_bytes());
        let (parsed, used) = parse_tag(&t).unwrap().unwrap();
        assert_eq!(
            (parsed.typ, parsed.timestamp_ms, parsed.body, used),
            (9, 0x0123_4567, &[1u8, 2, 3][..], t.len())
        );
        assert_eq!(parse_tag(&t[..t.len() - 1]).unwrap(), None);
        let mut bad = t.clone();
        *bad.last_mut().unwrap() = 99;
        assert!(parse_tag(&bad).is_err());
    }
}
