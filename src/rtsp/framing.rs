//! Splits the bytes of an RTSP connection into requests and interleaved frames
//! (sans-io). Bounded: unparsed input beyond `MAX_MESSAGE` is an error.

use bytes::{Buf, Bytes, BytesMut};
use rtsp_types::{Message, ParseError, Request};

/// Unparsed input beyond this (a request, or a header section that never ends) is refused.
pub const MAX_MESSAGE: usize = 128 * 1024;

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
    #[error("request larger than {MAX_MESSAGE} bytes")]
    TooLarge,
    #[error("malformed RTSP message starting with \"{0}\"")]
    Malformed(String),
}

/// Takes the next complete message off the front of `buf`; `Ok(None)` needs more input.
pub fn next_message(buf: &mut BytesMut) -> Result<Option<Incoming>, FramingError> {
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
    match Message::<Vec<u8>>::parse(&buf[..]) {
        Ok((msg, consumed)) => {
            buf.advance(consumed);
            Ok(Some(match msg {
                Message::Request(r) => Incoming::Request(Box::new(r)),
                _ => Incoming::Other,
            }))
        }
        Err(ParseError::Incomplete(_))
            if buf.len() > MAX_MESSAGE || declared_body(buf).is_some_and(|n| n > MAX_MESSAGE) =>
        {
            Err(FramingError::TooLarge)
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

/// The `Content-Length` of a message whose header section is complete in `buf`: a body
/// that could never fit is refused at once, not after waiting for it to arrive.
fn declared_body(buf: &[u8]) -> Option<usize> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
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

    #[test]
    fn splits_requests_and_frames() {
        let mut b =
            BytesMut::from(&b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n$\x01\x00\x02ab$\x00\x00"[..]);
        assert!(
            matches!(next_message(&mut b), Ok(Some(Incoming::Request(r))) if r.method() == rtsp_types::Method::Options)
        );
        match next_message(&mut b) {
            Ok(Some(Incoming::Interleaved(1, d))) => assert_eq!(&d[..], b"ab"),
            other => panic!("{other:?}"),
        }
        // Incomplete frame header: wait for more.
        assert!(matches!(next_message(&mut b), Ok(None)));
        assert_eq!(b.len(), 3);
    }

    #[test]
    fn errors() {
        let mut b = BytesMut::from(&b"\x17\x00garbage\r\n\r\n"[..]);
        assert!(matches!(
            next_message(&mut b),
            Err(FramingError::Malformed(_))
        ));
        let mut big = BytesMut::from(&b"DESCRIBE rtsp://x/"[..]);
        big.extend(std::iter::repeat_n(b'a', MAX_MESSAGE));
        assert_eq!(next_message(&mut big).unwrap_err(), FramingError::TooLarge);
        let mut partial = BytesMut::from(&b"DESCRIBE rtsp://x/ RTSP/1.0\r\nCSeq: 1\r\n"[..]);
        assert!(matches!(next_message(&mut partial), Ok(None)));
        // A body that could never fit is refused as soon as its headers are in.
        let mut huge = BytesMut::from(
            &b"ANNOUNCE rtsp://x/ RTSP/1.0\r\nCSeq: 1\r\ncontent-length: 2000000000\r\n\r\nv=0"[..],
        );
        assert_eq!(next_message(&mut huge).unwrap_err(), FramingError::TooLarge);
        let mut fits = BytesMut::from(
            &b"ANNOUNCE rtsp://x/ RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 100\r\n\r\nv=0"[..],
        );
        assert!(matches!(next_message(&mut fits), Ok(None)));
    }
}
