//! Program-specific information: the PAT and PMT sections (one program), with their
//! CRC-32/MPEG-2, each written into a single TS packet.

use super::PACKET;

const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_MPEG_2);
const PROGRAM: u16 = 1;

/// A long-form section: table id, the body after the section header, version 0.
fn section(table_id: u8, id: u16, body: &[u8]) -> Vec<u8> {
    let len = 5 + body.len() + 4;
    let mut s = vec![
        table_id,
        0xb0 | ((len >> 8) as u8 & 0x0f),
        len as u8,
        (id >> 8) as u8,
        id as u8,
        0xc1, // version 0, current
        0,    // section number
        0,    // last section number
    ];
    s.extend_from_slice(body);
    let crc = CRC.checksum(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    s
}

pub(super) fn pat(pmt_pid: u16) -> Vec<u8> {
    let body = [
        (PROGRAM >> 8) as u8,
        PROGRAM as u8,
        0xe0 | (pmt_pid >> 8) as u8,
        pmt_pid as u8,
    ];
    section(0x00, 1, &body)
}

/// `streams`: (stream type, PID) per elementary stream.
pub(super) fn pmt(pcr_pid: u16, streams: &[(u8, u16)]) -> Vec<u8> {
    let mut body = vec![0xe0 | (pcr_pid >> 8) as u8, pcr_pid as u8, 0xf0, 0];
    for (typ, pid) in streams {
        body.extend_from_slice(&[*typ, 0xe0 | (pid >> 8) as u8, *pid as u8, 0xf0, 0]);
    }
    section(0x02, PROGRAM, &body)
}

/// One section in one TS packet (pointer field first, 0xff after).
pub(super) fn write_section(out: &mut Vec<u8>, pid: u16, cc: &mut u8, section: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&[0x47, 0x40 | (pid >> 8) as u8, pid as u8, 0x10 | *cc, 0]);
    *cc = (*cc + 1) & 0x0f;
    out.extend_from_slice(&section[..section.len().min(PACKET - 5)]);
    out.resize(start + PACKET, 0xff);
}

#[cfg(test)]
pub(super) fn crc_ok(section: &[u8]) -> bool {
    // Over a whole section, CRC included, CRC-32/MPEG-2 leaves zero.
    CRC.checksum(section) == 0
}
