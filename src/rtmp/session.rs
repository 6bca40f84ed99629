//! The RTMP message layer of a server connection (sans-io): protocol control messages,
//! NetConnection/NetStream commands, and the checks that keep a peer to the streams it
//! created. Produces events for the connection and queues outgoing chunks.

use super::chunk::{write_message, ChunkError, ChunkReader, MessageRef};
use crate::format::amf0::{self, Value};
use bytes::Bytes;

const WINDOW_ACK_SIZE: u32 = 2_500_000;
const OUT_CHUNK_SIZE: usize = 4096;
/// The message stream id `createStream` gives a client's first stream.
const SHARED_STREAM_ID: u32 = 1;
const MAX_STREAMS: u32 = 16;

// Message types.
const SET_CHUNK_SIZE: u8 = 1;
const ACK: u8 = 3;
const USER_CONTROL: u8 = 4;
const WINDOW_ACK: u8 = 5;
const PEER_BANDWIDTH: u8 = 6;
const AUDIO: u8 = 8;
const VIDEO: u8 = 9;
const AMF3_DATA: u8 = 15;
const AMF3_COMMAND: u8 = 17;
const AMF0_DATA: u8 = 18;
const AMF0_COMMAND: u8 = 20;

// Chunk stream ids for what we send.
const CS_CONTROL: u8 = 2;
const CS_COMMAND: u8 = 3;
const CS_AUDIO: u8 = 4;
const CS_STATUS: u8 = 5;
const CS_VIDEO: u8 = 6;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Event {
    Publish {
        stream_id: u32,
        app: String,
        name: String,
    },
    Play {
        stream_id: u32,
        app: String,
        name: String,
    },
    /// `@setDataFrame onMetaData`: which kinds of track will come.
    Metadata { has_video: bool, has_audio: bool },
    Media {
        video: bool,
        timestamp: u32,
        data: Bytes,
    },
    /// deleteStream/closeStream/FCUnpublish of the active stream.
    StreamClosed,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum SessionError {
    #[error("{0}")]
    Chunk(#[from] ChunkError),
    #[error("{0}")]
    Amf(#[from] amf0::Amf0Error),
    #[error("{0}")]
    Protocol(String),
}

fn protocol(msg: impl Into<String>) -> SessionError {
    SessionError::Protocol(msg.into())
}

#[derive(Default)]
pub(crate) struct Session {
    reader: ChunkReader,
    /// The `tcUrl` of the peer's `connect` (its vhost, under `pathVhosts`).
    pub(crate) tc_url: String,
    /// `amfMaxDepth` and `amfMaxElements`, for commands and metadata.
    amf_limits: (usize, usize),
    out: Vec<u8>,
    out_chunk_size: usize,
    app: Option<String>,
    next_stream_id: u32,
    created: Vec<u32>,
    /// The message stream the peer publishes on, from its `publish` command: clients
    /// may send media before our answer arrives; a refusal closes the connection.
    publishing: Option<u32>,
    peer_window: u32,
    received: u64,
    acked: u64,
    /// Enhanced RTMP codecs the peer said it plays in `connect` (`fourCcList`, or the
    /// keys of `videoFourCcInfoMap`); empty for a classic client.
    fourccs: Vec<String>,
}

impl Session {
    pub(crate) fn new() -> Self {
        Session::with_limits(&crate::format::limits::InputLimits::default())
    }

    pub(crate) fn with_limits(l: &crate::format::limits::InputLimits) -> Self {
        Session {
            reader: ChunkReader::new(l.rtmp_chunk_size, l.rtmp_message),
            amf_limits: (l.amf_depth, l.amf_elements),
            out_chunk_size: 128,
            next_stream_id: 1,
            ..Default::default()
        }
    }

    /// Whether the peer announced Enhanced RTMP support for `fourcc` (or `*`, any).
    pub(crate) fn plays_fourcc(&self, fourcc: &str) -> bool {
        self.fourccs.iter().any(|f| f == fourcc || f == "*")
    }

    /// Bytes to send to the peer.
    pub(crate) fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    fn send(&mut self, csid: u8, type_id: u8, stream_id: u32, timestamp: u32, payload: &[u8]) {
        let m = MessageRef {
            timestamp,
            type_id,
            stream_id,
            payload,
        };
        write_message(&mut self.out, csid, &m, self.out_chunk_size);
    }

    fn command(&mut self, stream_id: u32, values: &[Value]) {
        let csid = if stream_id == 0 {
            CS_COMMAND
        } else {
            CS_STATUS
        };
        self.send(csid, AMF0_COMMAND, stream_id, 0, &amf0::encode_all(values));
    }

    fn status(&mut self, stream_id: u32, level: &str, code: &str, description: &str) {
        let info = amf0::object(&[
            ("level", Value::String(level.into())),
            ("code", Value::String(code.into())),
            ("description", Value::String(description.into())),
        ]);
        self.command(
            stream_id,
            &[
                Value::String("onStatus".into()),
                Value::Number(0.0),
                Value::Null,
                info,
            ],
        );
    }

    pub(crate) fn input(&mut self, data: &[u8]) -> Result<Vec<Event>, SessionError> {
        self.reader.push(data);
        self.received += data.len() as u64;
        if self.peer_window > 0 && self.received - self.acked >= u64::from(self.peer_window) {
            self.acked = self.received;
            let n = (self.received as u32).to_be_bytes();
            self.send(CS_CONTROL, ACK, 0, 0, &n);
        }
        let mut events = Vec::new();
        while let Some(m) = self.reader.next_message()? {
            self.message(m.type_id, m.stream_id, m.timestamp, m.payload, &mut events)?;
        }
        Ok(events)
    }

    fn message(
        &mut self,
        type_id: u8,
        stream_id: u32,
        ts: u32,
        payload: Bytes,
        events: &mut Vec<Event>,
    ) -> Result<(), SessionError> {
        let u32_at0 = || {
            payload
                .get(..4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        match type_id {
            SET_CHUNK_SIZE => {
                let size = u32_at0().ok_or_else(|| protocol("short Set Chunk Size"))? & 0x7fff_ffff;
                self.reader.set_chunk_size(size)?;
            }
            WINDOW_ACK => self.peer_window = u32_at0().unwrap_or(0),
            // Ping request (6) → ping response (7) with the same timestamp.
            USER_CONTROL if payload.len() >= 6 && payload[..2] == [0, 6] => {
                let mut pong = vec![0, 7];
                pong.extend_from_slice(&payload[2..6]);
                self.send(CS_CONTROL, USER_CONTROL, 0, 0, &pong);
            }
            AUDIO | VIDEO => {
                if self.publishing != Some(stream_id) {
                    return Err(protocol(format!(
                        "media on message stream id {stream_id}, which is not publishing"
                    )));
                }
                events.push(Event::Media {
                    video: type_id == VIDEO,
                    timestamp: ts,
                    data: payload,
                });
            }
            AMF0_DATA | AMF3_DATA => {
                let body = if type_id == AMF3_DATA {
                    payload.get(1..).unwrap_or_default()
                } else {
                    &payload[..]
                };
                let values = amf0::decode_limited(body, self.amf_limits.0, self.amf_limits.1)?;
                let meta = match values.first().and_then(Value::as_str) {
                    Some("@setDataFrame") => values.get(2),
                    Some("onMetaData") => values.get(1),
                    _ => None,
                };
                if let (Some(meta), true) = (meta, self.publishing == Some(stream_id)) {
                    events.push(Event::Metadata {
                        has_video: meta.get("videocodecid").is_some(),
                        has_audio: meta.get("audiocodecid").is_some(),
                    });
                }
            }
            AMF0_COMMAND | AMF3_COMMAND => {
                let body = if type_id == AMF3_COMMAND {
                    payload.get(1..).unwrap_or_default()
                } else {
                    &payload[..]
                };
                let values = amf0::decode_limited(body, self.amf_limits.0, self.amf_limits.1)?;
                self.command_in(stream_id, &values, events)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn command_in(
        &mut self,
        stream_id: u32,
        v: &[Value],
        events: &mut Vec<Event>,
    ) -> Result<(), SessionError> {
        let name = v
            .first()
            .and_then(Value::as_str)
            .ok_or_else(|| protocol("command without a name"))?;
        let txid = v.get(1).and_then(Value::as_f64).unwrap_or(0.0);
        let arg = |i: usize| {
            v.get(i)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        match name {
            "connect" => {
                if self.app.is_some() {
                    return Err(protocol("connect twice"));
                }
                let app = v
                    .get(2)
                    .and_then(|o| o.get("app"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                self.app = Some(app.to_string());
                self.tc_url = v
                    .get(2)
                    .and_then(|o| o.get("tcUrl"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                self.fourccs = announced_fourccs(v.get(2));
                self.send(CS_CONTROL, WINDOW_ACK, 0, 0, &WINDOW_ACK_SIZE.to_be_bytes());
                let mut bw = WINDOW_ACK_SIZE.to_be_bytes().to_vec();
                bw.push(2); // dynamic
                self.send(CS_CONTROL, PEER_BANDWIDTH, 0, 0, &bw);
                self.send(
                    CS_CONTROL,
                    SET_CHUNK_SIZE,
                    0,
                    0,
                    &(OUT_CHUNK_SIZE as u32).to_be_bytes(),
                );
                self.out_chunk_size = OUT_CHUNK_SIZE;
                let props = amf0::object(&[
                    ("fmsVer", Value::String("FMS/3,0,1,123".into())),
                    ("capabilities", Value::Number(31.0)),
                ]);
                let info = amf0::object(&[
                    ("level", Value::String("status".into())),
                    (
                        "code",
                        Value::String("NetConnection.Connect.Success".into()),
                    ),
                    ("description", Value::String("Connection succeeded.".into())),
                    ("objectEncoding", Value::Number(0.0)),
                ]);
                self.command(
                    0,
                    &[
                        Value::String("_result".into()),
                        Value::Number(txid),
                        props,
                        info,
                    ],
                );
            }
            "createStream" => {
                if self.app.is_none() {
                    return Err(protocol("createStream before connect"));
                }
                if self.next_stream_id > MAX_STREAMS {
                    return Err(protocol("too many streams"));
                }
                let id = self.next_stream_id;
                self.next_stream_id += 1;
                self.created.push(id);
                self.command(
                    0,
                    &[
                        Value::String("_result".into()),
                        Value::Number(txid),
                        Value::Null,
                        Value::Number(f64::from(id)),
                    ],
                );
            }
            "publish" | "play" => {
                if !self.created.contains(&stream_id) {
                    return Err(protocol(format!(
                        "{name} on message stream id {stream_id}, which was never created"
                    )));
                }
                let app = self.app.clone().unwrap_or_default();
                let name_arg = arg(3);
                if name == "publish" {
                    self.publishing = Some(stream_id);
                }
                events.push(if name == "publish" {
                    Event::Publish {
                        stream_id,
                        app,
                        name: name_arg,
                    }
                } else {
                    Event::Play {
                        stream_id,
                        app,
                        name: name_arg,
                    }
                });
            }
            "deleteStream" | "closeStream" | "FCUnpublish" => events.push(Event::StreamClosed),
            // releaseStream, FCPublish, getStreamLength, _checkbw…: nothing to answer.
            _ => {}
        }
        Ok(())
    }

    pub(crate) fn accept_publish(&mut self, stream_id: u32) {
        self.status(
            stream_id,
            "status",
            "NetStream.Publish.Start",
            "Publishing.",
        );
    }

    pub(crate) fn reject(&mut self, stream_id: u32, code: &str, description: &str) {
        self.status(stream_id, "error", code, description);
    }

    pub(crate) fn accept_play(&mut self, stream_id: u32) {
        let mut begin = vec![0, 0];
        begin.extend_from_slice(&stream_id.to_be_bytes());
        self.send(CS_CONTROL, USER_CONTROL, 0, 0, &begin);
        self.status(
            stream_id,
            "status",
            "NetStream.Play.Reset",
            "Playing and resetting.",
        );
        self.status(
            stream_id,
            "status",
            "NetStream.Play.Start",
            "Started playing.",
        );
        let access = amf0::encode_all(&[
            Value::String("|RtmpSampleAccess".into()),
            Value::Bool(true),
            Value::Bool(true),
        ]);
        self.send(CS_STATUS, AMF0_DATA, stream_id, 0, &access);
    }

    /// How this session frames a player's media on `stream_id`, for a `core::Sink`.
    pub(crate) fn media_out(&self, stream_id: u32) -> MediaOut {
        MediaOut {
            stream_id,
            chunk_size: self.out_chunk_size,
        }
    }
}

/// A player's media messages in chunks. Each starts with a full (type 0) header, so
/// they need no chunk-stream state and can go out between the session's own messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MediaOut {
    stream_id: u32,
    chunk_size: usize,
}

impl MediaOut {
    /// The usual set-up: message stream 1, our chunk size.
    pub(crate) fn shared() -> MediaOut {
        MediaOut {
            stream_id: SHARED_STREAM_ID,
            chunk_size: OUT_CHUNK_SIZE,
        }
    }

    /// Whether `media` equals what every other player of the usual set-up (stream 1,
    /// our chunk size) gets, so one copy can serve them all.
    pub(crate) fn shareable(&self) -> bool {
        self.stream_id == SHARED_STREAM_ID && self.chunk_size == OUT_CHUNK_SIZE
    }

    pub(crate) fn metadata(&self, out: &mut Vec<u8>, props: &[(&str, f64)]) {
        let arr = Value::EcmaArray(
            props
                .iter()
                .map(|(k, v)| (k.to_string(), Value::Number(*v)))
                .collect(),
        );
        let body = amf0::encode_all(&[Value::String("onMetaData".into()), arr]);
        self.message(out, CS_STATUS, AMF0_DATA, 0, &body);
    }

    pub(crate) fn media(&self, out: &mut Vec<u8>, video: bool, timestamp: u32, body: &[u8]) {
        let (csid, type_id) = if video {
            (CS_VIDEO, VIDEO)
        } else {
            (CS_AUDIO, AUDIO)
        };
        out.reserve(body.len() + 12 + body.len() / self.chunk_size.max(1) + 1);
        self.message(out, csid, type_id, timestamp, body);
    }

    fn message(&self, out: &mut Vec<u8>, csid: u8, type_id: u8, timestamp: u32, payload: &[u8]) {
        let m = MessageRef {
            timestamp,
            type_id,
            stream_id: self.stream_id,
            payload,
        };
        write_message(out, csid, &m, self.chunk_size);
    }
}

/// The Enhanced RTMP FourCCs a `connect` command object lists: `fourCcList` (v1) and
/// the keys of `videoFourCcInfoMap` (v2).
fn announced_fourccs(obj: Option<&Value>) -> Vec<String> {
    let Some(obj) = obj else {
        return Vec::new();
    };
    let mut out: Vec<String> = match obj.get("fourCcList") {
        Some(Value::StrictArray(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    if let Some(Value::Object(map) | Value::EcmaArray(map)) = obj.get("videoFourCcInfoMap") {
        out.extend(map.iter().map(|(k, _)| k.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(type_id: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_message(
            &mut out,
            3,
            &MessageRef {
                timestamp: 0,
                type_id,
                stream_id,
                payload,
            },
            128,
        );
        out
    }

    fn cmd(stream_id: u32, values: &[Value]) -> Vec<u8> {
        msg(AMF0_COMMAND, stream_id, &amf0::encode_all(values))
    }

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    #[test]
    fn publish_flow() {
        let mut sess = Session::new();
        let app = amf0::object(&[("app", s("live"))]);
        assert!(sess
            .input(&cmd(0, &[s("connect"), Value::Number(1.0), app]))
            .unwrap()
            .is_empty());
        let reply = sess.take_output();
        assert!(reply
            .windows(29)
            .any(|w| w == b"NetConnection.Connect.Success"));
        sess.input(&cmd(
            0,
            &[s("createStream"), Value::Number(2.0), Value::Null],
        ))
        .unwrap();
        let ev = sess
            .input(&cmd(
                1,
                &[
                    s("publish"),
                    Value::Number(3.0),
                    Value::Null,
                    s("room"),
                    s("live"),
                ],
            ))
            .unwrap();
        assert_eq!(
            ev,
            vec![Event::Publish {
                stream_id: 1,
                app: "live".into(),
                name: "room".into()
            }]
        );
        // Media on a stream that did not ask to publish is refused.
        assert!(Session::new().input(&msg(VIDEO, 1, &[0x17, 1])).is_err());
        sess.accept_publish(1);
        let ev = sess.input(&msg(VIDEO, 1, &[0x17, 1, 0, 0, 0])).unwrap();
        assert!(matches!(&ev[0], Event::Media { video: true, .. }));
        let meta = Value::EcmaArray(vec![("videocodecid".into(), Value::Number(7.0))]);
        let ev = sess
            .input(&msg(
                AMF0_DATA,
                1,
                &amf0::encode_all(&[s("@setDataFrame"), s("onMetaData"), meta]),
            ))
            .unwrap();
        assert_eq!(
            ev,
            vec![Event::Metadata {
                has_video: true,
                has_audio: false
            }]
        );
    }

    #[test]
    fn connect_records_the_enhanced_rtmp_codecs_a_player_lists() {
        let connect = |props: &[(&str, Value)]| {
            let mut sess = Session::new();
            sess.input(&cmd(
                0,
                &[s("connect"), Value::Number(1.0), amf0::object(props)],
            ))
            .unwrap();
            sess
        };
        let classic = connect(&[("app", s("live"))]);
        assert!(!classic.plays_fourcc("hvc1"));
        let v1 = connect(&[
            ("app", s("live")),
            ("fourCcList", Value::StrictArray(vec![s("av01"), s("hvc1")])),
        ]);
        assert!(v1.plays_fourcc("hvc1") && !v1.plays_fourcc("vp09"));
        let any = connect(&[("fourCcList", Value::StrictArray(vec![s("*")]))]);
        assert!(any.plays_fourcc("hvc1"));
        let v2 = connect(&[(
            "videoFourCcInfoMap",
            amf0::object(&[("hvc1", Value::Number(1.0))]),
        )]);
        assert!(v2.plays_fourcc("hvc1"));
        // A list of the wrong type is no announcement.
        let bad = connect(&[("fourCcList", s("hvc1"))]);
        assert!(!bad.plays_fourcc("hvc1"));
    }

    #[test]
    fn media_pipelined_behind_publish_is_accepted() {
        let mut sess = Session::new();
        sess.input(&cmd(
            0,
            &[
                s("connect"),
                Value::Number(1.0),
                amf0::object(&[("app", s("live"))]),
            ],
        ))
        .unwrap();
        sess.input(&cmd(
            0,
            &[s("createStream"), Value::Number(2.0), Value::Null],
        ))
        .unwrap();
        let mut wire = cmd(
            1,
            &[s("publish"), Value::Number(3.0), Value::Null, s("room")],
        );
        wire.extend(msg(VIDEO, 1, &[0x17, 0, 0, 0, 0]));
        let ev = sess.input(&wire).unwrap();
        assert!(
            matches!(ev.as_slice(), [Event::Publish { .. }, Event::Media { .. }]),
            "{ev:?}"
        );
    }

    #[test]
    fn violations_are_errors() {
        let mut sess = Session::new();
        assert!(sess
            .input(&msg(SET_CHUNK_SIZE, 0, &0u32.to_be_bytes()))
            .is_err());
        let mut sess = Session::new();
        assert!(
            sess.input(&cmd(0, &[s("createStream"), Value::Number(1.0)]))
                .is_err(),
            "before connect"
        );
        let mut sess = Session::new();
        sess.input(&cmd(
            0,
            &[s("connect"), Value::Number(1.0), amf0::object(&[])],
        ))
        .unwrap();
        assert!(
            sess.input(&cmd(
                5,
                &[s("play"), Value::Number(2.0), Value::Null, s("x")]
            ))
            .is_err(),
            "never created"
        );
        let mut sess = Session::new();
        assert!(
            sess.input(&msg(AMF0_COMMAND, 0, &[2, 0xff, 0xff, b'c']))
                .is_err(),
            "absurd AMF length"
        );
        let mut sess = Session::new();
        assert!(
            sess.input(&msg(VIDEO, 3, &[0x17])).is_err(),
            "media on a stream never created"
        );
    }

    #[test]
    fn ping_is_answered() {
        let mut sess = Session::new();
        sess.input(&msg(USER_CONTROL, 0, &[0, 6, 0, 0, 1, 2]))
            .unwrap();
        let out = sess.take_output();
        assert!(out.ends_with(&[0, 7, 0, 0, 1, 2]));
    }
}
