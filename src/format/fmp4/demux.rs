//! fMP4 reading (sans-io), for HLS sources: the init section's tracks and the samples
//! of `moof` + `mdat` fragments, through mp4-atom.

use super::Fmp4Error;
use crate::core::{Codec, Track};
use bytes::Bytes;
use mp4_atom::{Decode, Moof, Moov};

/// A track of an init section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitTrack {
    pub id: u32,
    pub track: Track,
    /// NAL length prefix size of video samples.
    pub length_size: u8,
}

/// One sample of a fragment, times in its track's timescale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub track_id: u32,
    pub dts: u64,
    pub cts: i64,
    pub keyframe: bool,
    pub data: Bytes,
}

/// (offset, size, type) of each top-level box.
fn boxes(data: &[u8]) -> Vec<(usize, usize, [u8; 4])> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 8 <= data.len() {
        let mut size =
            u32::from_be_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]) as usize;
        let typ = [data[pos + 4], data[pos + 5], data[pos + 6], data[pos + 7]];
        if size == 1 && pos + 16 <= data.len() {
            let mut b = [0u8; 8];
            b.copy_from_slice(&data[pos + 8..pos + 16]);
            size = usize::try_from(u64::from_be_bytes(b)).unwrap_or(usize::MAX);
        } else if size == 0 {
            size = data.len() - pos;
        }
        if size < 8 || size > data.len() - pos {
            break;
        }
        out.push((pos, size, typ));
        pos += size;
    }
    out
}

fn track_of(trak: &mp4_atom::Trak) -> Option<InitTrack> {
    let id = trak.tkhd.track_id;
    let clock = trak.mdia.mdhd.timescale.max(1);
    let (codec, length_size) = match trak.mdia.minf.stbl.stsd.codecs.first()? {
        mp4_atom::Codec::Avc1(a) => (
            Codec::H264 {
                sps: a
                    .avcc
                    .sequence_parameter_sets
                    .first()
                    .cloned()
                    .map(Bytes::from),
                pps: a
                    .avcc
                    .picture_parameter_sets
                    .first()
                    .cloned()
                    .map(Bytes::from),
            },
            a.avcc.length_size,
        ),
        mp4_atom::Codec::Hvc1(mp4_atom::Hvc1 { hvcc, .. })
        | mp4_atom::Codec::Hev1(mp4_atom::Hev1 { hvcc, .. }) => {
            let set = |t: u8| {
                hvcc.arrays
                    .iter()
                    .find(|a| a.nal_unit_type == t)
                    .and_then(|a| a.nalus.first().cloned())
                    .map(Bytes::from)
            };
            (
                Codec::H265 {
                    vps: set(32),
                    sps: set(33),
                    pps: set(34),
                },
                hvcc.length_size_minus_one + 1,
            )
        }
        mp4_atom::Codec::Mp4a(m) => {
            let dec = m.esds.es_desc.dec_config.dec_specific.as_ref()?;
            let config = if dec.raw.is_empty() {
                vec![
                    (dec.profile << 3) | (dec.freq_index >> 1),
                    ((dec.freq_index & 1) << 7) | (dec.chan_conf << 3),
                ]
            } else {
                dec.raw.clone()
            };
            let cfg = crate::codec::aac::AudioSpecificConfig::parse(&config).ok()?;
            (
                Codec::Aac {
                    config: Bytes::from(config),
                    sample_rate: cfg.sample_rate,
                    channels: cfg.channels,
                },
                0,
            )
        }
        mp4_atom::Codec::Opus(o) => (
            Codec::Opus {
                channels: o.dops.output_channel_count,
            },
            0,
        ),
        _ => return None,
    };
    Some(InitTrack {
        id,
        track: Track::new(codec, clock),
        length_size: length_size.clamp(1, 4),
    })
}

/// The tracks of an init section (`ftyp` + `moov`) that units can carry.
pub fn parse_init(data: &[u8]) -> Result<Vec<InitTrack>, Fmp4Error> {
    let (pos, size, _) = boxes(data)
        .into_iter()
        .find(|(_, _, t)| t == b"moov")
        .ok_or(Fmp4Error::NoTracks)?;
    let moov = Moov::decode(&mut &data[pos..pos + size])?;
    let tracks: Vec<InitTrack> = moov.trak.iter().filter_map(track_of).collect();
    if tracks.is_empty() {
        return Err(Fmp4Error::NoTracks);
    }
    Ok(tracks)
}

/// The samples of every `moof` in `data`, their bytes out of the `mdat` that follows.
pub fn parse_fragments(data: &Bytes, out: &mut Vec<Sample>) -> Result<(), Fmp4Error> {
    for (pos, size, typ) in boxes(data) {
        if &typ != b"moof" {
            continue;
        }
        let moof = Moof::decode(&mut &data[pos..pos + size])?;
        for traf in &moof.traf {
            let tfhd = &traf.tfhd;
            let base = tfhd
                .base_data_offset
                .and_then(|b| usize::try_from(b).ok())
                .unwrap_or(pos);
            let mut dts = traf.tfdt.as_ref().map_or(0, |t| t.base_media_decode_time);
            for trun in &traf.trun {
                let mut at = match trun.data_offset {
                    Some(o) => base.checked_add_signed(o as isize),
                    None => Some(base),
                };
                for (i, e) in trun.samples.iter().enumerate() {
                    let size = e.size.or(tfhd.default_sample_size).unwrap_or(0) as usize;
                    let duration = e.duration.or(tfhd.default_sample_duration).unwrap_or(0);
                    let flags = e
                        .flags
                        .or(if i == 0 {
                            None
                        } else {
                            tfhd.default_sample_flags
                        })
                        .or(tfhd.default_sample_flags)
                        .unwrap_or(0);
                    let Some(start) = at else {
                        break;
                    };
                    let Some(end) = start.checked_add(size).filter(|e| *e <= data.len()) else {
                        break;
                    };
                    out.push(Sample {
                        track_id: tfhd.track_id,
                        dts,
                        cts: e.cts.unwrap_or(0),
                        keyframe: flags & 0x0001_0000 == 0,
                        data: data.slice(start..end),
                    });
                    at = Some(end);
                    dts = dts.wrapping_add(u64::from(duration));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures;
    use crate::format::fmp4::{fragment, init_segment, Sample as Out, TrackRun};

    #[test]
    fn what_the_muxer_writes_reads_back() {
        let tracks = vec![fixtures::h264_with_sets(), fixtures::aac()];
        let init = init_segment(&tracks).unwrap();
        let read = parse_init(&init).unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].track, tracks[0]);
        assert_eq!(read[1].track, tracks[1]);
        assert_eq!((read[0].id, read[0].length_size), (1, 4));
        let v = [
            Out {
                duration: 3000,
                cts: 3000,
                keyframe: true,
                size: 3,
            },
            Out {
                duration: 3000,
                cts: -3000,
                keyframe: false,
                size: 2,
            },
        ];
        let a = [Out {
            duration: 1024,
            cts: 0,
            keyframe: true,
            size: 1,
        }];
        let frag = Bytes::from(
            fragment(
                1,
                &[
                    TrackRun {
                        track_id: 1,
                        base_decode_time: 9000,
                        samples: &v,
                        data: b"abcde",
                    },
                    TrackRun {
                        track_id: 2,
                        base_decode_time: 480,
                        samples: &a,
                        data: b"z",
                    },
                ],
            )
            .unwrap(),
        );
        let mut twice = frag.to_vec();
        twice.extend_from_slice(&frag);
        let mut out = Vec::new();
        parse_fragments(&Bytes::from(twice), &mut out).unwrap();
        assert_eq!(out.len(), 6);
        assert_eq!(
            (out[0].dts, out[0].cts, out[0].keyframe),
            (9000, 3000, true)
        );
        assert_eq!(&out[0].data[..], b"abc");
        assert_eq!(
            (out[1].dts, out[1].cts, out[1].keyframe),
            (12000, -3000, false)
        );
        assert_eq!(&out[1].data[..], b"de");
        assert_eq!((out[2].track_id, out[2].dts), (2, 480));
        assert_eq!(&out[2].data[..], b"z");
        assert_eq!(out[3], out[0]);
    }

    #[test]
    fn junk_does_not_panic() {
        let mut out = Vec::new();
        for junk in [
            &b"\0\0\0\x10moofxxxxxxxx"[..],
            b"\0\0\0\x01moof",
            b"",
            &[0xff; 40],
        ] {
            let _ = parse_init(junk);
            let _ = parse_fragments(&Bytes::copy_from_slice(junk), &mut out);
        }
    }
}
