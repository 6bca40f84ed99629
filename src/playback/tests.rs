use super::get::{write_fmp4, write_mp4};
use super::segments::{probe, SegmentFile, SegmentUnits};
use crate::config::record::RecordFormat;
use crate::core::{fixtures, Payload, Track, Unit};
use crate::format::fmp4::demux::{parse_fragments, parse_init};
use crate::record::cutter::{Cutter, Event, Limits};
use bytes::Bytes;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn tracks() -> Vec<Track> {
    vec![fixtures::h264_with_sets(), fixtures::aac()]
}

/// Frame `n` at 30 fps: an IDR slice when `key`, else a non-IDR one.
fn video(n: i64, key: bool) -> Unit {
    let nal: &'static [u8] = if key {
        &[0x65, 0x88, 1, 2]
    } else {
        &[0x41, 0x9a, 1, 2]
    };
    Unit {
        payload: Payload::Nalus(vec![Bytes::from_static(nal)]),
        ..fixtures::video(n, key)
    }
}

const T0: u64 = 1_700_000_000;

/// `secs` of media recorded in 3 s segments into `dir`: the files, oldest first.
fn record(dir: &std::path::Path, format: RecordFormat, secs: i64) -> Vec<SegmentFile> {
    let limits = Limits {
        segment: Duration::from_secs(3),
        part: Duration::from_secs(1),
        max_part_bytes: usize::MAX,
    };
    let epoch = UNIX_EPOCH + Duration::from_secs(T0);
    let mut c = Cutter::new(format, &tracks(), limits, epoch).unwrap();
    let mut ev = Vec::new();
    let t = tracks();
    let mut next_audio = 0;
    let mut codec = t[0].codec.clone();
    for f in 0..secs * 30 {
        // As the stream does: keyframes carry their parameter sets.
        let mut v = video(f, f % 30 == 0);
        crate::core::params::track_and_inject(&mut codec, &mut v);
        c.push(&v, &t, &mut ev);
        while next_audio * 1024 * 30 < (f + 1) * 48000 {
            c.push(&fixtures::aac_frame(next_audio), &t, &mut ev);
            next_audio += 1;
        }
    }
    c.finish(&mut ev);
    let mut files: Vec<(SegmentFile, Vec<u8>)> = Vec::new();
    for e in ev {
        match e {
            Event::Open { start, header } => {
                let file = dir.join(format!("{}.seg", files.len()));
                let seg = SegmentFile {
                    file,
                    start,
                    format,
                };
                files.push((seg, header.to_vec()));
            }
            Event::Data { bytes, .. } => files.last_mut().unwrap().1.extend_from_slice(&bytes),
        }
    }
    files
        .into_iter()
        .map(|(s, data)| {
            std::fs::write(&s.file, data).unwrap();
            s
        })
        .collect()
}

fn at(secs: f64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(T0) + Duration::from_secs_f64(secs)
}

#[test]
fn segments_probe_to_their_length_and_read_back_every_frame() {
    for format in [RecordFormat::Fmp4, RecordFormat::Mpegts] {
        let dir = tempfile::tempdir().unwrap();
        let segs = record(dir.path(), format, 10);
        assert_eq!(segs.len(), 4, "{format:?}");
        let lengths: Vec<f64> = segs
            .iter()
            .map(|s| probe(s).unwrap().duration.as_secs_f64())
            .collect();
        for (l, want) in lengths.iter().zip([3.0, 3.0, 3.0, 1.0]) {
            assert!((l - want).abs() < 0.05, "{format:?}: {lengths:?}");
        }
        let mut frames = 0;
        for s in &segs {
            let mut r = SegmentUnits::open(s).unwrap();
            assert_eq!(r.tracks()[0].codec.name(), "H264");
            let mut got = Vec::new();
            while r.next(&mut got).unwrap() {}
            let video: Vec<&(f64, Unit)> = got.iter().filter(|(_, u)| u.track == 0).collect();
            assert!(
                video[0].1.keyframe && video[0].0.abs() < 1e-6,
                "{format:?}: starts at 0 on a keyframe"
            );
            frames += video.len();
        }
        assert_eq!(frames, 300, "{format:?}");
    }
}

#[test]
fn a_range_starts_at_the_keyframe_before_it_and_runs_across_files() {
    for format in [RecordFormat::Fmp4, RecordFormat::Mpegts] {
        let dir = tempfile::tempdir().unwrap();
        let segs = record(dir.path(), format, 10);
        let mut out = Vec::new();
        write_fmp4(&segs, at(2.5), Duration::from_secs(4), |b| {
            out.extend_from_slice(&b);
            true
        })
        .unwrap();
        let init = parse_init(&out).unwrap();
        assert_eq!(init.len(), 2);
        let mut samples = Vec::new();
        parse_fragments(&Bytes::from(out), &mut samples).unwrap();
        let video: Vec<_> = samples
            .iter()
            .filter(|s| s.track_id == init[0].id)
            .collect();
        // From the keyframe at 2 s to the end at 6.5 s: 4.5 s of frames, across the
        // boundary at 3 s and 6 s, decode times one frame apart.
        assert!(video[0].keyframe, "{format:?}");
        assert_eq!(video.len(), 135, "{format:?}");
        for w in video.windows(2) {
            assert_eq!(w[1].dts - w[0].dts, 3000, "{format:?}");
        }
        // The client leaving stops the output.
        let mut sent = 0;
        write_fmp4(&segs, at(0.0), Duration::from_secs(9), |_| {
            sent += 1;
            sent < 2
        })
        .unwrap();
        assert_eq!(sent, 2);
    }
}

#[test]
fn a_plain_mp4_has_every_sample_in_its_tables() {
    use mp4_atom::{Decode, Moov};
    let dir = tempfile::tempdir().unwrap();
    let segs = record(dir.path(), RecordFormat::Fmp4, 10);
    let mut out = Vec::new();
    write_mp4(&segs, at(2.5), Duration::from_secs(4), |b| {
        out.extend_from_slice(&b);
        true
    })
    .unwrap();
    // ftyp, then moov.
    let ftyp = u32::from_be_bytes(out[0..4].try_into().unwrap()) as usize;
    let moov_len = u32::from_be_bytes(out[ftyp..ftyp + 4].try_into().unwrap()) as usize;
    let moov = Moov::decode(&mut &out[ftyp..ftyp + moov_len]).unwrap();
    let video = &moov.trak[0].mdia.minf.stbl;
    let mp4_atom::StszSamples::Different { sizes } = &video.stsz.samples else {
        panic!("sizes");
    };
    assert_eq!(sizes.len(), 135);
    assert_eq!(
        video.stss.as_ref().unwrap().entries,
        vec![1, 31, 61, 91, 121]
    );
    let offsets = &video.co64.as_ref().unwrap().entries;
    // The mdat holds every sample where the table says: the first is the keyframe.
    let mdat = ftyp + moov_len;
    assert_eq!(&out[mdat + 4..mdat + 8], b"mdat");
    let first = offsets[0] as usize;
    assert_eq!(out[first + 4], 0x67, "the keyframe's SPS first");
    let last = offsets[134] as usize + sizes[134] as usize;
    assert!(last <= out.len());
    let total: u64 = moov
        .trak
        .iter()
        .map(|t| match &t.mdia.minf.stbl.stsz.samples {
            mp4_atom::StszSamples::Different { sizes } => sizes.iter().map(|s| u64::from(*s)).sum(),
            _ => 0,
        })
        .sum();
    assert_eq!(out.len() as u64, (mdat + 16) as u64 + total);
}
