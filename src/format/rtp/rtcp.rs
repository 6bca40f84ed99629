//! RTCP sender reports (RFC 3550 §6.4.1) for readers, and keyframe requests (PLI,
//! RFC 4585 §6.3.1) for publishers, built with `rtcp-types`.

use bytes::Bytes;
use rtcp_types::{
    Compound, PayloadFeedback, Pli, ReceiverReport, RtcpPacketWriter, RtcpPacketWriterExt, Sdes,
    SdesChunk, SdesItem, SenderReport,
};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds between 1900 (NTP epoch) and 1970 (Unix epoch).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// 64-bit NTP timestamp (32.32 fixed point) of a wall-clock time.
pub fn ntp_timestamp(t: SystemTime) -> u64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() + NTP_UNIX_OFFSET;
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// A compound RTCP packet: SR + SDES CNAME.
pub fn sender_report(ssrc: u32, ntp: u64, rtp_ts: u32, packets: u32, octets: u32) -> Bytes {
    let compound = Compound::builder()
        .add_packet(
            SenderReport::builder(ssrc)
                .ntp_timestamp(ntp)
                .rtp_timestamp(rtp_ts)
                .packet_count(packets)
                .octet_count(octets),
        )
        .add_packet(Sdes::builder().add_chunk(
            SdesChunk::builder(ssrc).add_item(SdesItem::builder(SdesItem::CNAME, "mediarouter")),
        ));
    write(compound)
}

/// The compound's bytes; empty if it can't be written (it always can: fixed sizes).
fn write(compound: rtcp_types::CompoundBuilder<'_>) -> Bytes {
    let size = compound.calculate_size().unwrap_or(0);
    let mut buf = vec![0u8; size];
    match compound.write_into(&mut buf) {
        Ok(n) => {
            buf.truncate(n);
            Bytes::from(buf)
        }
        Err(_) => Bytes::new(),
    }
}

/// A compound RTCP packet asking the sender of `media_ssrc` for a keyframe: an empty
/// receiver report (RFC 3550 compounds start with one) then a Picture Loss Indication.
pub fn keyframe_request(sender_ssrc: u32, media_ssrc: u32) -> Bytes {
    let compound = Compound::builder()
        .add_packet(ReceiverReport::builder(sender_ssrc))
        .add_packet(
            PayloadFeedback::builder_owned(Pli::builder())
                .sender_ssrc(sender_ssrc)
                .media_ssrc(media_ssrc),
        );
    write(compound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_keyframe_request_is_an_rr_then_a_pli_for_the_media() {
        let b = keyframe_request(7, 0x1234_5678);
        assert_eq!(b.len(), 20);
        let mut packets = Compound::parse(&b).unwrap().map(Result::unwrap);
        assert!(matches!(packets.next(), Some(rtcp_types::Packet::Rr(rr)) if rr.ssrc() == 7));
        match packets.next() {
            Some(rtcp_types::Packet::PayloadFeedback(fb)) => {
                assert_eq!((fb.sender_ssrc(), fb.media_ssrc()), (7, 0x1234_5678));
                assert!(fb.parse_fci::<Pli>().is_ok());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sr_parses_back() {
        let ntp = ntp_timestamp(UNIX_EPOCH + Duration::from_millis(1500));
        assert_eq!(ntp >> 32, NTP_UNIX_OFFSET + 1);
        assert_eq!(ntp & 0xffff_ffff, 1 << 31);
        let b = sender_report(42, ntp, 9000, 10, 1000);
        let c = Compound::parse(&b).unwrap();
        let first = c.into_iter().next().unwrap().unwrap();
        match first {
            rtcp_types::Packet::Sr(sr) => {
                assert_eq!(
                    (
                        sr.ssrc(),
                        sr.rtp_timestamp(),
                        sr.packet_count(),
                        sr.octet_count()
                    ),
                    (42, 9000, 10, 1000)
                );
                assert_eq!(sr.ntp_timestamp(), ntp);
            }
            p => panic!("{p:?}"),
        }
    }
}
