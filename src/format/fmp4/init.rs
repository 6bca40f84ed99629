//! The fMP4 init segment: one `trak` per carried track (track id = stream track
//! index + 1) with its sample entry (`avc1`, `hvc1`, `mp4a`, `Opus`) and a `trex`.

use super::Fmp4Error;
use crate::codec::{config_record, h264};
use crate::core::{Codec, Track};
use mp4_atom::{
    Audio, Avc1, Avcc, Decode, Dinf, Dops, Dref, Encode, Esds, Ftyp, Hdlr, Hvc1, Hvcc, Mdhd, Mdia,
    Minf, Moov, Mp4a, Mvex, Mvhd, Opus, Smhd, Stbl, Stco, Stsc, Stsd, Stsz, Stts, Tkhd, Trak, Trex,
    Url, Visual, Vmhd,
};

/// Whether fMP4 can carry the track's codec.
pub fn carries(track: &Track) -> bool {
    matches!(
        track.codec,
        Codec::H264 { .. } | Codec::H265 { .. } | Codec::Aac { .. } | Codec::Opus { .. }
    )
}

/// The RFC 6381 codec string HLS playlists name the track by.
pub fn codec_string(track: &Track) -> Option<String> {
    match &track.codec {
        Codec::H264 { sps: Some(sps), .. } => {
            h264::profile_level_id(sps).map(|p| format!("avc1.{p}"))
        }
        Codec::H264 { .. } => Some("avc1.42e01e".to_string()),
        Codec::H265 { sps, .. } => Some(h265_codec_string(sps.as_deref())),
        Codec::Aac { config, .. } => {
            let object_type = config.first().map_or(2, |b| b >> 3).max(1);
            Some(format!("mp4a.40.{object_type}"))
        }
        Codec::Opus { .. } => Some("opus".to_string()),
        Codec::Other(_) => None,
    }
}

/// `hvc1.<profile>.<compat>.<tier><level>.<constraints>` (ISO/IEC 14496-15 Annex E);
/// Main profile at level 4.1 when the SPS is unknown.
fn h265_codec_string(sps: Option<&[u8]>) -> String {
    let ptl = sps.and_then(|s| crate::codec::h265_sps::parse(s).ok());
    match ptl {
        Some(p) => {
            let space = ["", "A", "B", "C"][usize::from(p.profile_space & 3)];
            let tier = if p.tier { 'H' } else { 'L' };
            let mut s = format!(
                "hvc1.{space}{}.{:X}.{tier}{}",
                p.profile_idc,
                p.profile_compatibility.reverse_bits(),
                p.level_idc
            );
            let mut constraints = p.constraint_indicator.to_be_bytes()[2..].to_vec();
            while constraints.last() == Some(&0) {
                constraints.pop();
            }
            for c in constraints {
                s.push_str(&format!(".{c:X}"));
            }
            s
        }
        None => "hvc1.1.6.L123.B0".to_string(),
    }
}

/// Decodes a configuration record built by `config_record` into mp4-atom's box.
fn record<T: Decode>(kind: &[u8; 4], body: &[u8]) -> Result<T, Fmp4Error> {
    let mut buf = Vec::with_capacity(body.len() + 8);
    buf.extend_from_slice(&((body.len() + 8) as u32).to_be_bytes());
    buf.extend_from_slice(kind);
    buf.extend_from_slice(body);
    Ok(T::decode(&mut buf.as_slice())?)
}

fn visual(track: &Track) -> Visual {
    let (w, h) = crate::format::flv::mux::video_size(track).unwrap_or((0, 0));
    Visual {
        data_reference_index: 1,
        width: w.min(u32::from(u16::MAX)) as u16,
        height: h.min(u32::from(u16::MAX)) as u16,
        horizresolution: 72.into(),
        vertresolution: 72.into(),
        frame_count: 1,
        compressor: "".into(),
        depth: 24,
    }
}

fn sample_entry(track: &Track, id: u32) -> Result<mp4_atom::Codec, Fmp4Error> {
    Ok(match &track.codec {
        Codec::H264 {
            sps: Some(sps),
            pps: Some(pps),
        } => {
            let avcc: Avcc = record(b"avcC", &config_record::avcc(sps, pps)?)?;
            Avc1 {
                visual: visual(track),
                avcc,
                ..Default::default()
            }
            .into()
        }
        Codec::H265 {
            vps: Some(vps),
            sps: Some(sps),
            pps: Some(pps),
        } => {
            let hvcc: Hvcc = record(b"hvcC", &config_record::hvcc(vps, sps, pps)?)?;
            Hvc1 {
                visual: visual(track),
                hvcc,
                ..Default::default()
            }
            .into()
        }
        Codec::H264 { .. } | Codec::H265 { .. } => return Err(Fmp4Error::NoParameterSets),
        Codec::Aac {
            config,
            sample_rate,
            channels,
        } => Mp4a {
            audio: audio(*channels, *sample_rate),
            esds: Esds {
                es_desc: mp4_atom::esds::EsDescriptor {
                    es_id: id.min(u32::from(u16::MAX)) as u16,
                    dec_config: mp4_atom::esds::DecoderConfig {
                        object_type_indication: 0x40,
                        stream_type: 5,
                        dec_specific: Some(mp4_atom::esds::DecoderSpecific {
                            raw: config.to_vec(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    ..Default::default()
                },
            },
            btrt: None,
            taic: None,
        }
        .into(),
        Codec::Opus { channels } => Opus {
            audio: audio(*channels, 48000),
            dops: Dops {
                output_channel_count: *channels,
                pre_skip: 0,
                input_sample_rate: 48000,
                output_gain: 0,
                channel_mapping: None,
            },
            btrt: None,
        }
        .into(),
        Codec::Other(_) => return Err(Fmp4Error::NoTracks),
    })
}

fn audio(channels: u8, rate: u32) -> Audio {
    Audio {
        data_reference_index: 1,
        channel_count: u16::from(channels.max(1)),
        sample_size: 16,
        // 16.16 fixed point: rates above 65535 Hz don't fit; the mdhd timescale is the truth.
        sample_rate: (rate.min(u32::from(u16::MAX)) as u16).into(),
    }
}

/// A track's `trak` with its sample entry and empty sample tables.
pub(super) fn trak(track: &Track, id: u32) -> Result<Trak, Fmp4Error> {
    let video = track.codec.is_video();
    let (w, h) = if video {
        crate::format::flv::mux::video_size(track).unwrap_or((0, 0))
    } else {
        (0, 0)
    };
    Ok(Trak {
        tkhd: Tkhd {
            track_id: id,
            enabled: true,
            in_movie: true,
            volume: if video { 0.into() } else { 1.into() },
            width: (w.min(u32::from(u16::MAX)) as u16).into(),
            height: (h.min(u32::from(u16::MAX)) as u16).into(),
            ..Default::default()
        },
        mdia: Mdia {
            mdhd: Mdhd {
                timescale: track.clock_rate.max(1),
                language: "und".into(),
                ..Default::default()
            },
            hdlr: Hdlr {
                handler: if video { b"vide" } else { b"soun" }.into(),
                name: if video {
                    "VideoHandler"
                } else {
                    "SoundHandler"
                }
                .into(),
            },
            minf: Minf {
                vmhd: video.then(Vmhd::default),
                smhd: (!video).then(Smhd::default),
                dinf: Dinf {
                    dref: Dref {
                        entries: vec![Url {
                            location: "".into(),
                        }
                        .into()],
                    },
                },
                stbl: Stbl {
                    stsd: Stsd {
                        codecs: vec![sample_entry(track, id)?],
                    },
                    stts: Stts::default(),
                    stsc: Stsc::default(),
                    stsz: Stsz::default(),
                    stco: Some(Stco::default()),
                    ..Default::default()
                },
                ..Default::default()
            },
        },
        ..Default::default()
    })
}

/// `ftyp` + `moov` for the carried tracks of `tracks`.
pub fn init_segment(tracks: &[Track]) -> Result<Vec<u8>, Fmp4Error> {
    let mut traks = Vec::new();
    let mut trex = Vec::new();
    for (i, t) in tracks.iter().enumerate().filter(|(_, t)| carries(t)) {
        let id = i as u32 + 1;
        traks.push(trak(t, id)?);
        trex.push(Trex {
            track_id: id,
            default_sample_description_index: 1,
            ..Default::default()
        });
    }
    if traks.is_empty() {
        return Err(Fmp4Error::NoTracks);
    }
    let mut out = Vec::with_capacity(1024);
    Ftyp {
        major_brand: b"iso6".into(),
        minor_version: 1,
        compatible_brands: vec![b"iso6".into(), b"cmfc".into(), b"mp41".into()],
    }
    .encode(&mut out)?;
    Moov {
        mvhd: Mvhd {
            timescale: 1000,
            rate: 1.into(),
            volume: 1.into(),
            next_track_id: tracks.len() as u32 + 1,
            ..Default::default()
        },
        mvex: Some(Mvex {
            trex,
            ..Default::default()
        }),
        trak: traks,
        ..Default::default()
    }
    .encode(&mut out)?;
    Ok(out)
}
