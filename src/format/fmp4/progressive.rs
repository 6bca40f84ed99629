//! A plain (non-fragmented) MP4's header for samples whose sizes and times are known
//! up front: `ftyp`, a `moov` with full sample tables, and the `mdat` header; the
//! samples' bytes follow in the order given. One chunk per sample keeps the tables
//! simple (`co64` offsets, so files past 4 GiB work).

use super::init::trak;
use super::{Fmp4Error, Sample};
use crate::core::Track;
use mp4_atom::{
    Co64, Ctts, CttsEntry, Encode, Ftyp, Moov, Mvhd, Stsc, StscEntry, Stss, Stsz, StszSamples,
    Stts, SttsEntry,
};

/// `ftyp` + `moov` + the `mdat` header for `samples` (stream track index, sample), in
/// the order their bytes will follow. Tracks without samples are left out.
pub fn header(tracks: &[Track], samples: &[(usize, Sample)]) -> Result<Vec<u8>, Fmp4Error> {
    let data_len: u64 = samples.iter().map(|(_, s)| u64::from(s.size)).sum();
    let mut out = Vec::new();
    Ftyp {
        major_brand: b"isom".into(),
        minor_version: 512,
        compatible_brands: vec![
            b"isom".into(),
            b"iso2".into(),
            b"avc1".into(),
            b"mp41".into(),
        ],
    }
    .encode(&mut out)?;
    // The moov's size doesn't depend on the offsets' values: encode once to learn it.
    let probe = moov(tracks, samples, 0)?;
    let mdat_data = (out.len() + probe.len() + 16) as u64;
    out.extend_from_slice(&moov(tracks, samples, mdat_data)?);
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(b"mdat");
    out.extend_from_slice(&(16 + data_len).to_be_bytes());
    Ok(out)
}

fn moov(
    tracks: &[Track],
    samples: &[(usize, Sample)],
    first_offset: u64,
) -> Result<Vec<u8>, Fmp4Error> {
    let mut traks = Vec::new();
    let mut longest = 0f64;
    for (i, t) in tracks.iter().enumerate() {
        let mut offset = first_offset;
        let mut offsets = Vec::new();
        let mut mine = Vec::new();
        for (track, s) in samples {
            if *track == i {
                offsets.push(offset);
                mine.push(*s);
            }
            offset += u64::from(s.size);
        }
        if mine.is_empty() || !super::carries(t) {
            continue;
        }
        let id = i as u32 + 1;
        let mut trak = trak(t, id)?;
        let duration: u64 = mine.iter().map(|s| u64::from(s.duration)).sum();
        longest = longest.max(duration as f64 / f64::from(t.clock_rate.max(1)));
        trak.tkhd.duration = duration * 1000 / u64::from(t.clock_rate.max(1));
        trak.mdia.mdhd.duration = duration;
        let stbl = &mut trak.mdia.minf.stbl;
        stbl.stts = Stts {
            entries: runs(mine.iter().map(|s| s.duration))
                .map(|(v, n)| SttsEntry {
                    sample_count: n,
                    sample_delta: v,
                })
                .collect(),
        };
        if mine.iter().any(|s| s.cts != 0) {
            stbl.ctts = Some(Ctts {
                entries: runs(mine.iter().map(|s| s.cts))
                    .map(|(v, n)| CttsEntry {
                        sample_count: n,
                        sample_offset: i64::from(v),
                    })
                    .collect(),
            });
        }
        if t.codec.is_video() {
            stbl.stss = Some(Stss {
                entries: (1..=mine.len() as u32)
                    .zip(&mine)
                    .filter(|(_, s)| s.keyframe)
                    .map(|(n, _)| n)
                    .collect(),
            });
        }
        stbl.stsc = Stsc {
            entries: vec![StscEntry {
                first_chunk: 1,
                samples_per_chunk: 1,
                sample_description_index: 1,
            }],
        };
        stbl.stsz = Stsz {
            samples: StszSamples::Different {
                sizes: mine.iter().map(|s| s.size).collect(),
            },
        };
        stbl.stco = None;
        stbl.co64 = Some(Co64 { entries: offsets });
        traks.push(trak);
    }
    if traks.is_empty() {
        return Err(Fmp4Error::NoTracks);
    }
    let mut out = Vec::new();
    Moov {
        mvhd: Mvhd {
            timescale: 1000,
            duration: (longest * 1000.0) as u64,
            rate: 1.into(),
            volume: 1.into(),
            next_track_id: tracks.len() as u32 + 1,
            ..Default::default()
        },
        trak: traks,
        ..Default::default()
    }
    .encode(&mut out)?;
    Ok(out)
}

/// Run-length pairs (value, count).
fn runs<T: PartialEq + Copy>(values: impl Iterator<Item = T>) -> impl Iterator<Item = (T, u32)> {
    let mut out: Vec<(T, u32)> = Vec::new();
    for v in values {
        match out.last_mut() {
            Some((last, n)) if *last == v => *n += 1,
            _ => out.push((v, 1)),
        }
    }
    out.into_iter()
}
