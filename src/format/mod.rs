//! Sans-io wire formats: RTP payload formats, SDP, FLV and MPEG-TS. No sockets here.

pub mod amf0;
pub mod flv;
pub mod mpegts;
pub mod rtp;
pub mod sdp;
