use super::*;
use crate::core::fixtures;
use bytes::Bytes;

fn tracks() -> Vec<Track> {
    vec![
        fixtures::h264(),
        fixtures::aac(),
        Track::new(Codec::Opus { channels: 2 }, 48000),
    ]
}

fn packets(out: &[u8]) -> Vec<&[u8]> {
    assert_eq!(out.len() % PACKET, 0);
    let p: Vec<&[u8]> = out.chunks(PACKET).collect();
    assert!(p.iter().all(|p| p[0] == 0x47));
    p
}

fn pid(p: &[u8]) -> u16 {
    (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2])
}

/// The payload of a TS packet (after any adaptation field).
fn payload(p: &[u8]) -> &[u8] {
    let afc = (p[3] >> 4) & 3;
    let start = if afc & 2 != 0 {
        5 + usize::from(p[4])
    } else {
        4
    };
    &p[start..]
}

fn read_ts(b: &[u8]) -> i64 {
    (i64::from(b[0] >> 1 & 7) << 30)
        | (i64::from(b[1]) << 22)
        | (i64::from(b[2] >> 1) << 15)
        | (i64::from(b[3]) << 7)
        | i64::from(b[4] >> 1)
}

#[test]
fn tables_list_the_carried_streams_with_valid_crcs() {
    let mut m = TsMuxer::new(&tracks()).unwrap();
    assert!(m.carries(0) && m.carries(1) && !m.carries(2));
    let mut out = Vec::new();
    m.write_tables(&mut out);
    let p = packets(&out);
    assert_eq!(p.len(), 2);
    assert_eq!((pid(p[0]), pid(p[1])), (PAT_PID, PMT_PID));
    for pkt in &p {
        assert_eq!(pkt[1] & 0x40, 0x40, "PUSI");
        let s = &pkt[5..];
        let len = 3 + (usize::from(s[1] & 0x0f) << 8 | usize::from(s[2]));
        assert!(psi::crc_ok(&s[..len]));
    }
    let pmt = &p[1][5..];
    // PCR on the video PID, then H.264 and AAC (Opus has no TS mapping here).
    assert_eq!(u16::from_be_bytes([pmt[8] & 0x1f, pmt[9]]), FIRST_ES_PID);
    assert_eq!((pmt[12], pmt[17]), (STREAM_H264, STREAM_AAC));
}

#[test]
fn a_video_unit_is_one_pes_with_pcr_counters_and_stuffing() {
    let mut m = TsMuxer::new(&tracks()).unwrap();
    let nal = Bytes::from(vec![0x65; 1000]);
    let unit = Unit {
        track: 0,
        pts: 183_000,
        dts: 180_000,
        keyframe: true,
        payload: Payload::Nalus(vec![nal]),
    };
    let mut out = Vec::new();
    assert!(m.write(&unit, &mut out));
    assert!(m.write(&unit, &mut out));
    let p = packets(&out);
    assert!(p.iter().all(|p| pid(p) == FIRST_ES_PID));
    let cc: Vec<u8> = p.iter().map(|p| p[3] & 0x0f).collect();
    assert!(cc.windows(2).all(|w| w[1] == (w[0] + 1) & 0x0f), "{cc:?}");
    let first = p[0];
    assert_eq!(first[1] & 0x40, 0x40, "PUSI");
    assert_eq!(first[5] & 0x50, 0x50, "PCR and random access");
    let pcr = (u64::from(first[6]) << 25)
        | (u64::from(first[7]) << 17)
        | (u64::from(first[8]) << 9)
        | (u64::from(first[9]) << 1)
        | u64::from(first[10] >> 7);
    assert_eq!(pcr as i64, 180_000 - PCR_DELAY);
    // Reassemble the first PES: header, AUD, then the NAL unit.
    let n = p.len() / 2;
    let pes: Vec<u8> = p[..n].iter().flat_map(|p| payload(p).to_vec()).collect();
    assert_eq!(&pes[..4], &[0, 0, 1, 0xe0]);
    assert_eq!(pes[7], 0xc0, "PTS and DTS");
    assert_eq!(read_ts(&pes[9..14]), 183_000);
    assert_eq!(read_ts(&pes[14..19]), 180_000);
    assert_eq!(&pes[19..25], &[0, 0, 0, 1, 0x09, 0xf0]);
    assert_eq!(&pes[25..29], &[0, 0, 0, 1]);
    assert_eq!(pes.len(), 29 + 1000);
}

#[test]
fn aac_frames_get_adts_headers_and_a_pes_length() {
    let mut m = TsMuxer::new(&tracks()).unwrap();
    let unit = Unit {
        track: 1,
        pts: 48_000,
        dts: 48_000,
        keyframe: true,
        payload: Payload::Frame(Bytes::from(vec![0x21; 300])),
    };
    let mut out = Vec::new();
    assert!(m.write(&unit, &mut out));
    let p = packets(&out);
    let pes: Vec<u8> = p.iter().flat_map(|p| payload(p).to_vec()).collect();
    assert_eq!(&pes[..4], &[0, 0, 1, 0xc0]);
    let len = usize::from(u16::from_be_bytes([pes[4], pes[5]]));
    assert_eq!(len, pes.len() - 6);
    assert_eq!(read_ts(&pes[9..14]), 90_000, "48 kHz ticks → 90 kHz");
    let adts = &pes[14..21];
    assert_eq!(&adts[..2], &[0xff, 0xf1]);
    let frame_len =
        (usize::from(adts[3] & 3) << 11) | (usize::from(adts[4]) << 3) | usize::from(adts[5] >> 5);
    assert_eq!(frame_len, 307);
    // Units of tracks TS does not carry are refused, not mangled.
    let opus = Unit { track: 2, ..unit };
    assert!(!m.write(&opus, &mut out));
}

#[test]
fn streams_without_ts_codecs_are_refused() {
    let t = vec![Track::new(Codec::Opus { channels: 2 }, 48000)];
    assert_eq!(TsMuxer::new(&t).unwrap_err(), TsError::NoTracks);
}

#[test]
fn hostile_timestamps_wrap_instead_of_overflowing() {
    let mut m = TsMuxer::new(&tracks()).unwrap();
    let mut out = Vec::new();
    for ts in [i64::MAX, i64::MIN, -1] {
        let unit = Unit {
            track: 1,
            pts: ts,
            dts: ts,
            keyframe: true,
            payload: Payload::Frame(Bytes::from_static(&[1, 2, 3])),
        };
        assert!(m.write(&unit, &mut out));
    }
    assert_eq!(out.len() % PACKET, 0);
}
