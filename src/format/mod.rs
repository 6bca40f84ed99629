//! Sans-io wire formats: RTP payload formats and SDP. No sockets here.

pub mod rtp;
pub mod sdp;
