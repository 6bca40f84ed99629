//! Sans-io wire formats: RTP payload formats, SDP, FLV, MPEG-TS and HLS playlists.
//! No sockets here.

pub mod amf0;
pub mod flv;
pub mod fmp4;
pub mod limits;
pub mod m3u8;
pub mod mpegts;
pub mod rtp;
pub mod sdp;
pub mod segment;
