//! One media fragment: a `moof` with a `traf` per track and the `mdat` after it.
//! Sample data offsets count from the start of the `moof` (`default-base-is-moof`).

use super::{Fmp4Error, NON_SYNC_SAMPLE, SYNC_SAMPLE};
use mp4_atom::{Atom, Encode, Mfhd, Moof, Tfdt, Tfhd, Traf, Trun, TrunEntry, TrunSamples};

/// One sample of a track run; its bytes are in the run's `data`, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Decode duration in the track's timescale.
    pub duration: u32,
    /// Presentation minus decode time.
    pub cts: i32,
    pub keyframe: bool,
    pub size: u32,
}

/// The samples of one track in a fragment.
#[derive(Debug, Clone, Copy)]
pub struct TrackRun<'a> {
    pub track_id: u32,
    /// Decode time of the first sample (`tfdt`).
    pub base_decode_time: u64,
    pub samples: &'a [Sample],
    pub data: &'a [u8],
}

fn moof(seq: u32, runs: &[TrackRun], offsets: &[i32]) -> Moof {
    Moof {
        mfhd: Mfhd {
            sequence_number: seq,
        },
        traf: runs
            .iter()
            .zip(offsets)
            .map(|(r, &offset)| Traf {
                tfhd: Tfhd {
                    track_id: r.track_id,
                    default_base_is_moof: true,
                    ..Default::default()
                },
                tfdt: Some(Tfdt {
                    base_media_decode_time: r.base_decode_time,
                }),
                trun: vec![Trun {
                    data_offset: Some(offset),
                    samples: TrunSamples::Explicit(
                        r.samples
                            .iter()
                            .map(|s| TrunEntry {
                                duration: Some(s.duration),
                                size: Some(s.size),
                                flags: Some(if s.keyframe {
                                    SYNC_SAMPLE
                                } else {
                                    NON_SYNC_SAMPLE
                                }),
                                cts: Some(i64::from(s.cts)),
                            })
                            .collect(),
                    ),
                }],
                ..Default::default()
            })
            .collect(),
    }
}

/// `moof` + `mdat` for the runs (tracks without samples are left out).
pub fn fragment(seq: u32, runs: &[TrackRun]) -> Result<Vec<u8>, Fmp4Error> {
    let runs: Vec<TrackRun> = runs
        .iter()
        .filter(|r| !r.samples.is_empty())
        .copied()
        .collect();
    let data_len: usize = runs.iter().map(|r| r.data.len()).sum();
    // The moof's size doesn't depend on the offset values: encode once to learn it.
    let mut probe = Vec::new();
    moof(seq, &runs, &vec![0; runs.len()]).encode(&mut probe)?;
    let mut offsets = Vec::with_capacity(runs.len());
    let mut at = probe.len() + 8;
    for r in &runs {
        offsets.push(i32::try_from(at).map_err(|_| mp4_atom::Error::TooLarge(Moof::KIND))?);
        at += r.data.len();
    }
    let mut out = Vec::with_capacity(probe.len() + 16 + data_len);
    moof(seq, &runs, &offsets).encode(&mut out)?;
    let mdat_len = 8 + data_len;
    match u32::try_from(mdat_len) {
        Ok(len) => out.extend_from_slice(&len.to_be_bytes()),
        Err(_) => return Err(mp4_atom::Error::TooLarge(mp4_atom::Mdat::KIND).into()),
    }
    out.extend_from_slice(b"mdat");
    for r in &runs {
        out.extend_from_slice(r.data);
    }
    Ok(out)
}
