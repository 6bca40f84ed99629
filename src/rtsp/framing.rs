//! Splits the bytes of an RTSP connection into requests and interleaved frames
//! (sans-io). Bounded by `InputLimits`: a request head, its header count or its body
//! beyond them is an error, found as soon as the bytes that show it arrive.

use crate::format::limits::InputLimits;
use bytes::{Buf, Bytes, BytesMut};
use rtsp_types::{Message, ParseError, Request};

#[derive(Debug)]
pub enum Incoming {
    Request(Box<Request<Vec<u8>>>),
    /// `$`-framed data: channel and payload.
    Interleaved(u8, Bytes),
    /// A response from the client (to nothing we sent); ignored.
    Other,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FramingError {
    #[error("request larger than {0} bytes before its body (maxRequestHeaderSize)")]
    HeadTooLarge(usize),
    #[error("request with more than {0} header lines (maxRequestHeaders)")]
    TooManyHeaders(usize),
    #[error("request body larger than {0} bytes (rtspMaxBodySize)")]
    BodyTooLarge(usize),
    #[error("malformed RTSP message starting with \"{0}\"")]
    Malformed(String),
}

/// Takes the next complete message off the front of `buf`; `Ok(None)` needs more input.
pub fn next_message(
    buf: &mut BytesMut,
    limits: &InputLimits,
) -> Result<Option<Incoming>, FramingError> {
    if buf.is_empty() {
        return Ok(None);
    }
    if buf[0] == b'$' {
        if buf.len() < 4 {
            return Ok(None);
        }
        let (channel, len) = (buf[1], usize::from(u16::from_be_bytes([buf[2], buf[3]])));
        if buf.len() < 4 + len {
            return Ok(None);
        }
        let frame = buf.split_to(4 + len).freeze().slice(4..);
        return Ok(Some(Incoming::Interleaved(channel, frame)));
    }
    check_head(buf, limits)?;
    match Message::<Vec<u8>>::parse(&buf[..]) {
        Ok((msg, consumed)) => {
            buf.advance(consumed);
            Ok(Some(match msg {
                Message::Request(r) => Incoming::Request(Box::new(r)),
                _ => Incoming::Other,
            }))
        }
        Err(ParseError::Incomplete(_)) => Ok(None),
        Err(ParseError::Error) => {
            let preview = String::from_utf8_lossy(&buf[..buf.len().min(32)])
                .escape_debug()
                .to_string();
            Err(FramingError::Malformed(preview))
        }
    }
}

/// Checks the message at the front of `buf` against the limits with what has arrived:
/// a head that outgrew its size or line count, or a declared body that could never fit
/// (refused at once, not after waiting for it to arrive).
fn check_head(buf: &[u8], limits: &InputLimits) -> Result<(), FramingError> {
    let window = &buf[..buf.len().min(limits.request_head + 4)];
    let end = window.windows(4).position(|w| w == b"\r\n\r\n");
    let head = &window[..end.unwrap_or(window.len())];
    // The request line and each header end with a line break.
    let lines = head.iter().filter(|b| **b == b'\n').count() + usize::from(end.is_some());
    if lines > limits.request_headers + 1 {
        return Err(FramingError::TooManyHeaders(limits.request_headers));
    }
    let Some(end) = end else {
        return match buf.len() >= limits.request_head + 4 {
            true => Err(FramingError::HeadTooLarge(limits.request_head)),
            false => Ok(()),
        };
    };
    match declared_body(&buf[..end]) {
        Some(n) if n > limits.rtsp_body => Err(FramingError::BodyTooLarge(limits.rtsp_body)),
        _ => Ok(()),
    }
}

/// The `Content-Length` of a header section.
fn declared_body(head: &[u8]) -> Option<usize> {
    let head = std::str::from_utf8(head).ok()?;
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().unwrap_or(usize::MAX))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: InputLimits = InputLimits {
        request_head: 1024,
        request_headers: 8,
        rtsp_body: 4096,
        sdp_medias: 16,
        rtmp_chunk_size: 1 << 20,
        rtmp_message: 1 << 20,
        amf_depth: 16,
        amf_elements: 1024,
    };

    #[test]
    fn splits_requests_and_frames() {
        let mut b =
            BytesMut::from(&b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n$\x01\x00\x02ab$\x00\x00"[..]);
        assert!(
            matches!(next_message(&mut b, &L), Ok(Some(Incoming::Request(r))) if r.method() == rtsp_types::Method::Options)
        );
        match next_message(&mut b, &L) {
            Ok(Some(Incoming::Interleaved(1, d))) => assert_eq!(&d[..], b"ab"),
            other => panic!("{other:?}"),
        }
        // Incomplete frame header: wait for more.
        assert!(matches!(next_message(&mut b, &L), Ok(None)));
        assert_eq!(b.len(), 3);
    }

    #[test]
    fn errors() {
        let mut b = BytesMut::from(&b"\x17\x00garbage\r\n\r\n"[..]);
        assert!(matches!(
            next_message(&mut b, &L),
            Err(FramingError::Malformed(_))
        ));
        let mut big = BytesMut::from(&b"DESCRIBE rtsp://x/"[..]);
        big.extend(std::iter::repeat_n(b'a', 1000));
        assert!(matches!(next_message(&mut big, &L), Ok(None)));
        big.extend(std::iter::repeat_n(b'a', 28));
        assert_eq!(
            next_message(&mut big, &L).unwrap_err(),
            FramingError::HeadTooLarge(1024)
        );
        let mut partial = BytesMut::from(&b"DESCRIBE rtsp://x/ RTSP/1.0\r\nCSeq: 1\r\n"[..]);
        assert!(matches!(next_message(&mut partial, &L), Ok(None)));
        // A body that could never fit is refused as soon as its headers are in.
        let mut huge = BytesMut::from(
            &b"ANNOUNCE rtsp://x/ RTSP/1.0\r\nCSeq: 1\r\ncontent-length: 2000000000\r\n\r\nv=0"[..],
        );
        assert_eq!(
            next_message(&mut huge, &L).unwrap_err(),
            FramingError::BodyTooLarge(4096)
        );
        let mut fits = BytesMut::from(
            &b"ANNOUNCE rtsp://x/ RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 4096\r\n\r\nv=0"[..],
        );
        assert!(matches!(next_message(&mut fits, &L), Ok(None)));
        // A whole message that arrived at once is held to the limits too.
        let mut whole = BytesMut::from(
            &b"ANNOUNCE rtsp://x/ RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 4097\r\n\r\n"[..],
        );
        whole.extend(std::iter::repeat_n(b'v', 4097));
        assert_eq!(
            next_message(&mut whole, &L).unwrap_err(),
            FramingError::BodyTooLarge(4096)
        );
    }

    #[test]
    fn header_lines() {
        let head = |n: usize, end: &str| {
            let mut b = BytesMut::from(&b"OPTIONS * RTSP/1.0\r\n"[..]);
            for i in 0..n {
                b.extend(format!("X-{i}: y\r\n").as_bytes());
            }
            b.extend(end.as_bytes());
            b
        };
        assert!(matches!(
            next_message(&mut head(8, "\r\n"), &L),
            Ok(Some(_))
        ));
        assert_eq!(
            next_message(&mut head(9, "\r\n"), &L).unwrap_err(),
            FramingError::TooManyHeaders(8)
        );
        // Counted while the head is still arriving.
        assert!(matches!(next_message(&mut head(8, ""), &L), Ok(None)));
        assert_eq!(
            next_message(&mut head(9, ""), &L).unwrap_err(),
            FramingError::TooManyHeaders(8)
        );
    }
}
