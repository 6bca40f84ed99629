//! The RTMP chunk stream (sans-io): reassembles messages from chunks with per-stream
//! header compression, and splits outgoing messages into chunks. Written here because
//! rml_rtmp's session accepts a chunk size of 0, panics on some malformed AMF and
//! silently drops messages on stream ids it does not know.

use bytes::{Buf, Bytes, BytesMut};
use std::collections::HashMap;

/// Distinct chunk stream ids one peer may use.
const MAX_CHUNK_STREAMS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub timestamp: u32,
    pub type_id: u8,
    pub stream_id: u32,
    pub payload: Bytes,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChunkError {
    #[error("chunk size {0} outside 1..={1} (rtmpMaxChunkSize)")]
    ChunkSize(u32, u32),
    #[error("message of {0} bytes larger than {1} (rtmpMaxMessageSize)")]
    TooLarge(usize, usize),
    #[error("chunk continues chunk stream {0}, which never started")]
    NoPreviousHeader(u32),
    #[error("more than {MAX_CHUNK_STREAMS} chunk streams")]
    TooManyStreams,
    #[error("new message header on chunk stream {0} before its message ended")]
    Interrupted(u32),
}

#[derive(Default, Clone)]
struct ChunkStream {
    timestamp: u32,
    delta: u32,
    length: usize,
    type_id: u8,
    stream_id: u32,
    extended: bool,
    payload: BytesMut,
    started: bool,
}

pub struct ChunkReader {
    buf: BytesMut,
    chunk_size: usize,
    streams: HashMap<u32, ChunkStream>,
    /// The largest chunk size the peer may set (`rtmpMaxChunkSize`).
    max_chunk_size: u32,
    /// The largest message (`rtmpMaxMessageSize`).
    max_message: usize,
}

impl Default for ChunkReader {
    fn default() -> Self {
        let l = crate::format::limits::InputLimits::default();
        ChunkReader::new(l.rtmp_chunk_size, l.rtmp_message)
    }
}

impl ChunkReader {
    pub fn new(max_chunk_size: u32, max_message: usize) -> Self {
        ChunkReader {
            buf: BytesMut::new(),
            chunk_size: 128,
            streams: HashMap::new(),
            max_chunk_size,
            max_message,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Applies the peer's Set Chunk Size.
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), ChunkError> {
        if size == 0 || size > self.max_chunk_size {
            return Err(ChunkError::ChunkSize(size, self.max_chunk_size));
        }
        self.chunk_size = size as usize;
        Ok(())
    }

    /// The next complete message, if the buffered bytes hold one.
    pub fn next_message(&mut self) -> Result<Option<Message>, ChunkError> {
        loop {
            match self.chunk()? {
                Chunk::NeedMore => return Ok(None),
                Chunk::Partial => continue,
                Chunk::Message(m) => return Ok(Some(m)),
            }
        }
    }

    /// Parses one chunk without consuming input until all of it is there.
    fn chunk(&mut self) -> Result<Chunk, ChunkError> {
        let b = &self.buf[..];
        let Some(&first) = b.first() else {
            return Ok(Chunk::NeedMore);
        };
        let fmt = first >> 6;
        let (csid, mut pos) = match first & 0x3f {
            0 if b.len() >= 2 => (64 + u32::from(b[1]), 2),
            1 if b.len() >= 3 => (64 + u32::from(b[1]) + 256 * u32::from(b[2]), 3),
            0 | 1 => return Ok(Chunk::NeedMore),
            id => (u32::from(id), 1),
        };
        let header_len = [11, 7, 3, 0][usize::from(fmt)];
        if b.len() < pos + header_len {
            return Ok(Chunk::NeedMore);
        }
        if !self.streams.contains_key(&csid) && self.streams.len() >= MAX_CHUNK_STREAMS {
            return Err(ChunkError::TooManyStreams);
        }
        let mut cs = self.streams.get(&csid).cloned().unwrap_or_default();
        if fmt != 0 && !cs.started {
            return Err(ChunkError::NoPreviousHeader(csid));
        }
        let u24 = |p: usize| u32::from_be_bytes([0, b[p], b[p + 1], b[p + 2]]);
        let new_message = cs.payload.is_empty();
        if fmt != 3 && !new_message {
            return Err(ChunkError::Interrupted(csid));
        }
        let mut ts_field = None;
        if fmt <= 2 {
            ts_field = Some(u24(pos));
        }
        if fmt <= 1 {
            cs.length = u24(pos + 3) as usize;
            cs.type_id = b[pos + 6];
        }
        if fmt == 0 {
            cs.stream_id = u32::from_le_bytes([b[pos + 7], b[pos + 8], b[pos + 9], b[pos + 10]]);
        }
        pos += header_len;
        let extended = match ts_field {
            Some(t) => t == 0xff_ffff,
            None => cs.extended,
        };
        let mut ts_value = ts_field.unwrap_or(cs.delta);
        if extended {
            if b.len() < pos + 4 {
                return Ok(Chunk::NeedMore);
            }
            ts_value = u32::from_be_bytes([b[pos], b[pos + 1], b[pos + 2], b[pos + 3]]);
            pos += 4;
        }
        if cs.length > self.max_message {
            return Err(ChunkError::TooLarge(cs.length, self.max_message));
        }
        let take = (cs.length - cs.payload.len()).min(self.chunk_size);
        if b.len() < pos + take {
            return Ok(Chunk::NeedMore);
        }
        // The whole chunk is here: commit.
        cs.extended = extended;
        if new_message {
            match fmt {
                0 => cs.timestamp = ts_value,
                1 | 2 => {
                    cs.delta = ts_value;
                    cs.timestamp = cs.timestamp.wrapping_add(ts_value);
                }
                _ => cs.timestamp = cs.timestamp.wrapping_add(cs.delta),
            }
        }
        cs.started = true;
        cs.payload.extend_from_slice(&b[pos..pos + take]);
        self.buf.advance(pos + take);
        let done = cs.payload.len() == cs.length;
        let msg = done.then(|| Message {
            timestamp: cs.timestamp,
            type_id: cs.type_id,
            stream_id: cs.stream_id,
            payload: std::mem::take(&mut cs.payload).freeze(),
        });
        self.streams.insert(csid, cs);
        Ok(match msg {
            Some(m) => Chunk::Message(m),
            None => Chunk::Partial,
        })
    }
}

enum Chunk {
    NeedMore,
    Partial,
    Message(Message),
}

/// Appends `payload` as one message on chunk stream `csid` (2..=63): a type-0 chunk,
/// then type-3 continuations of at most `chunk_size` bytes.
pub fn write_message(out: &mut Vec<u8>, csid: u8, m: &MessageRef, chunk_size: usize) {
    let extended = m.timestamp >= 0xff_ffff;
    let ts24 = if extended { 0xff_ffff } else { m.timestamp };
    out.push(csid & 0x3f);
    out.extend_from_slice(&ts24.to_be_bytes()[1..]);
    out.extend_from_slice(&(m.payload.len() as u32).to_be_bytes()[1..]);
    out.push(m.type_id);
    out.extend_from_slice(&m.stream_id.to_le_bytes());
    for (i, part) in m.payload.chunks(chunk_size.max(1)).enumerate() {
        if i > 0 {
            out.push(0xc0 | (csid & 0x3f));
        }
        if extended {
            out.extend_from_slice(&m.timestamp.to_be_bytes());
        }
        out.extend_from_slice(part);
    }
}

/// An outgoing message (borrowed payload).
pub struct MessageRef<'a> {
    pub timestamp: u32,
    pub type_id: u8,
    pub stream_id: u32,
    pub payload: &'a [u8],
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(payload_len: usize, ts: u32, chunk_size: usize) {
        let payload: Vec<u8> = (0..payload_len).map(|i| i as u8).collect();
        let mut wire = Vec::new();
        write_message(
            &mut wire,
            6,
            &MessageRef {
                timestamp: ts,
                type_id: 9,
                stream_id: 1,
                payload: &payload,
            },
            chunk_size,
        );
        let mut r = ChunkReader::default();
        r.set_chunk_size(chunk_size as u32).unwrap();
        // Byte by byte: partial input must never be consumed early.
        let mut got = None;
        for b in &wire {
            r.push(&[*b]);
            if let Some(m) = r.next_message().unwrap() {
                got = Some(m);
            }
        }
        let m = got.unwrap();
        assert_eq!(
            (m.timestamp, m.type_id, m.stream_id, &m.payload[..]),
            (ts, 9, 1, &payload[..])
        );
    }

    #[test]
    fn messages_roundtrip() {
        roundtrip(10, 0, 128);
        roundtrip(1000, 40, 128);
        roundtrip(5000, 0x0100_0000, 4096); // extended timestamp on every chunk
        roundtrip(0, 7, 128);
    }

    #[test]
    fn header_compression() {
        // Type 0, then type 2 (delta 33) and type 3 (same delta) on chunk stream 4.
        let mut wire = vec![0x04, 0, 0, 10, 0, 0, 1, 8, 1, 0, 0, 0, 0xaa];
        wire.extend([0x84, 0, 0, 33, 0xbb]);
        wire.extend([0xc4, 0xcc]);
        let mut r = ChunkReader::default();
        r.push(&wire);
        let ts: Vec<(u32, u8)> = std::iter::from_fn(|| r.next_message().unwrap())
            .map(|m| (m.timestamp, m.payload[0]))
            .collect();
        assert_eq!(ts, vec![(10, 0xaa), (43, 0xbb), (76, 0xcc)]);
    }

    #[test]
    fn hostile_input() {
        let mut r = ChunkReader::default();
        assert_eq!(r.set_chunk_size(0), Err(ChunkError::ChunkSize(0, 16 << 20)));
        assert_eq!(
            r.set_chunk_size(32 << 20),
            Err(ChunkError::ChunkSize(32 << 20, 16 << 20))
        );
        r.push(&[0xc5, 1, 2]);
        assert_eq!(r.next_message(), Err(ChunkError::NoPreviousHeader(5)));
        // A type-0 header in the middle of a 200-byte message on the same chunk stream.
        let mut r = ChunkReader::default();
        r.push(&[0x03, 0, 0, 0, 0, 0, 200, 9, 1, 0, 0, 0]);
        r.push(&[0u8; 128]);
        r.push(&[0x03, 0, 0, 0, 0, 0, 10, 9, 1, 0, 0, 0]);
        assert_eq!(r.next_message(), Err(ChunkError::Interrupted(3)));
        let mut r = ChunkReader::default();
        r.push(&[0x03, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0]);
        assert_eq!(
            r.next_message(),
            Err(ChunkError::TooLarge(0xff_ffff, 8 << 20))
        );
        let mut r = ChunkReader::default();
        for csid in 2..=63u8 {
            r.push(&[csid, 0, 0, 0, 0, 0, 1, 8, 1, 0, 0, 0, 0]);
        }
        for _ in 0..62 {
            assert!(r.next_message().unwrap().is_some());
        }
        r.push(&[0x00, 10, 0, 0, 0, 0, 0, 1, 8, 1, 0, 0, 0, 0]);
        r.push(&[0x00, 11, 0, 0, 0, 0, 0, 1, 8, 1, 0, 0, 0, 0]);
        r.push(&[0x00, 12, 0, 0, 0, 0, 0, 1, 8, 1, 0, 0, 0, 0]);
        assert!(r.next_message().unwrap().is_some());
        assert!(r.next_message().unwrap().is_some());
        assert_eq!(r.next_message(), Err(ChunkError::TooManyStreams));
    }
}
