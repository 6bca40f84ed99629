//! What an RTMP player is sent for the stream: metadata and sequence headers before
//! the first unit, then each unit's FLV tag body as a chunked message, shared by every
//! player of the usual set-up (`Chunks`).

use super::session::MediaOut;
use crate::core::{Encoder, Form, FormKey, StreamItem, UnitEntry};
use crate::format::flv::{mux, mux::FlvTag, TagType, TAG_HEADER_LEN};
use bytes::Bytes;
use std::collections::VecDeque;

pub(crate) struct PlayEncoder {
    out: MediaOut,
    started: bool,
}

impl PlayEncoder {
    pub(crate) fn new(out: MediaOut) -> PlayEncoder {
        PlayEncoder {
            out,
            started: false,
        }
    }

    fn start(&mut self, entry: &UnitEntry, out: &mut VecDeque<Bytes>) {
        self.started = true;
        let tracks = &entry.tracks;
        let ts = mux::to_ms(entry.unit.dts, entry.track().clock_rate);
        let mut head = Vec::new();
        self.out.metadata(&mut head, &mux::metadata(tracks));
        for (typ, body) in mux::sequence_bodies(tracks) {
            self.out.media(&mut head, typ == TagType::Video, ts, &body);
        }
        out.push_back(Bytes::from(head));
    }
}

/// The unit as one RTMP message in the chunks of the usual set-up (`MediaOut::shared`),
/// which every player gets in practice: the server picks the chunk size and stream id.
struct Chunks;

impl Form for Chunks {
    type Out = Option<Bytes>;
    fn key() -> &'static FormKey {
        static KEY: FormKey = FormKey::new();
        &KEY
    }
    fn build(e: &UnitEntry) -> Option<Bytes> {
        e.form::<FlvTag>()
            .as_ref()
            .map(|tag| chunks(&MediaOut::shared(), tag))
    }
}

/// The message for an FLV tag: its body without the tag header and trailing size.
fn chunks(out: &MediaOut, tag: &Bytes) -> Bytes {
    let body = &tag[TAG_HEADER_LEN..tag.len() - 4];
    let ts = u32::from_be_bytes([tag[7], tag[4], tag[5], tag[6]]);
    let video = tag[0] == TagType::Video as u8;
    let mut v = Vec::new();
    out.media(&mut v, video, ts, body);
    Bytes::from(v)
}

impl Encoder for PlayEncoder {
    fn encode(&mut self, item: &StreamItem, out: &mut VecDeque<Bytes>) {
        let StreamItem::Unit(entry) = item else {
            return;
        };
        if !self.started {
            self.start(entry, out);
        }
        let m = self.out;
        if m.shareable() {
            if let Some(b) = entry.form::<Chunks>() {
                out.push_back(b.clone());
            }
        } else if let Some(tag) = entry.form::<FlvTag>() {
            out.push_back(chunks(&m, tag));
        }
    }
}
