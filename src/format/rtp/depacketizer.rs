//! Picks the payload format for a track and turns its RTP packets into frames.

use super::{aac, h264, h265, RtpError, RtpIn};
use crate::codec;
use crate::core::{Codec, Payload};
use bytes::Bytes;
use std::collections::HashMap;

/// An access unit out of a depacketizer, still on the RTP clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub rtp_ts: u32,
    pub keyframe: bool,
    pub payload: Payload,
}

/// The `a=fmtp` parameters of the incoming format (keys lower-cased).
pub type RtpFormatParams = HashMap<String, String>;

#[derive(Debug)]
pub enum Depacketizer {
    H264(h264::Depacketizer),
    H265(h265::Depacketizer),
    Aac(aac::Depacketizer),
    /// One frame per packet: Opus, and opaque passthrough of other codecs.
    Whole {
        opaque: bool,
    },
}

impl Depacketizer {
    pub fn new(codec: &Codec, fmtp: &RtpFormatParams) -> Self {
        let num = |k: &str, d: u32| fmtp.get(k).and_then(|v| v.parse().ok()).unwrap_or(d);
        match codec {
            Codec::H264 { .. } => Depacketizer::H264(Default::default()),
            Codec::H265 { .. } => Depacketizer::H265(Default::default()),
            Codec::Aac { .. } => Depacketizer::Aac(aac::Depacketizer::new(
                num("sizelength", 13),
                num("indexlength", 3),
                num("indexdeltalength", 3),
            )),
            Codec::Opus { .. } => Depacketizer::Whole { opaque: false },
            Codec::Other(_) => Depacketizer::Whole { opaque: true },
        }
    }

    pub fn push(&mut self, pkt: &RtpIn, out: &mut Vec<Frame>) -> Result<(), RtpError> {
        match self {
            Depacketizer::H264(d) => {
                let mut aus = Vec::new();
                let r = d.push(pkt, &mut aus);
                out.extend(aus.into_iter().map(|(ts, nalus)| Frame {
                    rtp_ts: ts,
                    keyframe: codec::h264::is_keyframe(&nalus),
                    payload: Payload::Nalus(nalus),
                }));
                r
            }
            Depacketizer::H265(d) => {
                let mut aus = Vec::new();
                let r = d.push(pkt, &mut aus);
                out.extend(aus.into_iter().map(|(ts, nalus)| Frame {
                    rtp_ts: ts,
                    keyframe: codec::h265::is_keyframe(&nalus),
                    payload: Payload::Nalus(nalus),
                }));
                r
            }
            Depacketizer::Aac(d) => {
                let mut aus: Vec<(u32, Bytes)> = Vec::new();
                let r = d.push(pkt, &mut aus);
                out.extend(aus.into_iter().map(|(ts, au)| Frame {
                    rtp_ts: ts,
                    keyframe: true,
                    payload: Payload::Frame(au),
                }));
                r
            }
            Depacketizer::Whole { opaque } => {
                let payload = if *opaque {
                    Payload::Rtp {
                        payload: pkt.payload.clone(),
                        marker: pkt.marker,
                    }
                } else {
                    Payload::Frame(pkt.payload.clone())
                };
                out.push(Frame {
                    rtp_ts: pkt.timestamp,
                    keyframe: true,
                    payload,
                });
                Ok(())
            }
        }
    }
}
