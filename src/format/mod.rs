//! Sans-io wire formats: RTP payload formats, SDP and FLV. No sockets here.

pub mod amf0;
pub mod flv;
pub mod rtp;
pub mod sdp;
