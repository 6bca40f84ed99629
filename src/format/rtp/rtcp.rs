//! RTCP sender reports (RFC 3550 §6.4.1) for readers, built with `rtcp-types`.

use bytes::Bytes;
use rtcp_types::{
    Compound, RtcpPacketWriter, RtcpPacketWriterExt, Sdes, SdesChunk, SdesItem, SenderReport,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
