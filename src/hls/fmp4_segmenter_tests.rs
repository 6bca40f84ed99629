use super::*;
use crate::core::{fixtures, Codec};
use mp4_atom::{Decode, Mdat, Moof};
use std::time::UNIX_EPOCH;

fn tracks() -> Vec<Track> {
    vec![fixtures::h264_with_sets(), fixtures::aac()]
}

/// Frame `frame` with its presentation two frames after its decode time.
fn video(frame: i64, keyframe: bool) -> Unit {
    let mut u = fixtures::video(frame, keyframe);
    u.pts += 6000;
    u
}

use fixtures::aac_frame as audio;

/// 30 fps video with a keyframe every `gop` frames and 48 kHz AAC, frames `from..to`.
fn run(s: &mut Fmp4Segmenter, from: i64, to: i64, gop: i64) -> Vec<Output> {
    let t = tracks();
    let mut out = Vec::new();
    let mut next_audio = from * 48000 / 30 / 1024;
    for f in from..to {
        s.push(&video(f, f % gop == 0), &t, &mut out);
        while next_audio * 1024 * 30 < (f + 1) * 48000 {
            s.push(&audio(next_audio), &t, &mut out);
            next_audio += 1;
        }
    }
    out
}

fn segmenter() -> Fmp4Segmenter {
    Fmp4Segmenter::new(
        &tracks(),
        Duration::from_secs(1),
        Duration::from_millis(200),
        UNIX_EPOCH,
    )
    .unwrap()
}

#[test]
fn parts_stay_within_target_and_segments_start_on_keyframes() {
    let mut s = segmenter();
    // Frames before the first keyframe are dropped; a keyframe every 1 s.
    let out = run(&mut s, 20, 125, 30);
    assert!(matches!(out[0], Output::Init(_)), "init first");
    let parts: Vec<&Part> = out
        .iter()
        .filter_map(|o| match o {
            Output::Part(p) => Some(p),
            _ => None,
        })
        .collect();
    let segments: Vec<&Segment> = out
        .iter()
        .filter_map(|o| match o {
            Output::Segment(s) => Some(s),
            _ => None,
        })
        .collect();
    // Keyframes at 30, 60, 90, 120: segments [30,60), [60,90), [90,120).
    assert_eq!(segments.len(), 3);
    for (i, seg) in segments.iter().enumerate() {
        assert_eq!(seg.seq, i as u64);
        assert!((seg.duration.as_secs_f64() - 1.0).abs() < 1e-6, "{seg:?}");
        // 200 ms parts at 30 fps: six frames each, five per segment.
        assert_eq!(seg.parts.len(), 5, "{:?}", seg.parts);
        for p in &seg.parts {
            assert!((p.duration.as_secs_f64() - 0.2).abs() < 1e-6, "{p:?}");
        }
        assert!(seg.parts[0].independent);
        assert!(seg.parts[1..].iter().all(|p| !p.independent));
        // The segment is its parts, back to back.
        let joined: Vec<u8> = parts
            .iter()
            .filter(|p| seg.parts.iter().any(|i| i.id == p.info.id))
            .flat_map(|p| p.data.to_vec())
            .collect();
        assert_eq!(seg.data.to_vec(), joined);
    }
    let ids: Vec<u64> = parts.iter().map(|p| p.info.id).collect();
    assert_eq!(ids, (0..ids.len() as u64).collect::<Vec<_>>());
    assert_eq!(s.next_part(), ids.len() as u64);
    assert_eq!(
        segments[1].start.duration_since(UNIX_EPOCH).unwrap(),
        Duration::from_secs(2)
    );
}

#[test]
fn a_segment_decodes_with_the_real_sample_timing() {
    let mut s = segmenter();
    let out = run(&mut s, 0, 61, 30);
    let seg = out
        .iter()
        .find_map(|o| match o {
            Output::Segment(s) if s.seq == 1 => Some(s),
            _ => None,
        })
        .unwrap();
    let mut buf = &seg.data[..];
    let (mut video_ticks, mut frames, mut first_tfdt) = (0u64, 0, None);
    let mut first_flags = None;
    while !buf.is_empty() {
        let moof = Moof::decode(&mut buf).unwrap();
        let mdat = Mdat::decode(&mut buf).unwrap();
        assert!(!mdat.data.is_empty());
        let v = moof.traf.iter().find(|t| t.tfhd.track_id == 1).unwrap();
        first_tfdt.get_or_insert(v.tfdt.as_ref().unwrap().base_media_decode_time);
        for e in v.trun[0].samples.iter() {
            first_flags.get_or_insert(e.flags);
            video_ticks += u64::from(e.duration.unwrap());
            assert_eq!(e.cts, Some(6000));
            assert_eq!(e.size, Some(8), "4-byte length + NAL");
            frames += 1;
        }
    }
    assert_eq!(frames, 30);
    assert_eq!(video_ticks, 90_000);
    // The output starts at the first keyframe (frame 0), so segment 1 starts at 1 s.
    assert_eq!(first_tfdt, Some(90_000));
    assert_eq!(first_flags, Some(Some(fmp4::SYNC_SAMPLE)));
}

#[test]
fn waits_for_a_keyframe_with_parameter_sets() {
    let mut s = Fmp4Segmenter::new(
        &[fixtures::h264()],
        Duration::from_secs(1),
        Duration::from_millis(200),
        UNIX_EPOCH,
    )
    .unwrap();
    let mut out = Vec::new();
    s.push(&video(0, true), &[fixtures::h264()], &mut out);
    assert!(out.is_empty() && !s.started(), "no SPS/PPS yet");
    s.push(&video(1, false), &tracks()[..1], &mut out);
    assert!(out.is_empty() && !s.started(), "not a keyframe");
    s.push(&video(2, true), &tracks()[..1], &mut out);
    assert!(matches!(out[..], [Output::Init(_)]) && s.started());
}

#[test]
fn finish_closes_the_open_segment_and_numbering_continues() {
    let mut s = segmenter();
    s.start_at(40, 700);
    s.mark_discontinuity();
    let mut out = run(&mut s, 0, 45, 30);
    s.finish(&mut out);
    let segs: Vec<&Segment> = out
        .iter()
        .filter_map(|o| match o {
            Output::Segment(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(segs.len(), 2);
    assert_eq!((segs[0].seq, segs[1].seq), (40, 41));
    assert_eq!(segs[0].parts[0].id, 700);
    assert!(segs[0].discontinuity && !segs[1].discontinuity);
    // Frames 30..45 and one more frame interval for the last.
    assert!(
        (segs[1].duration.as_secs_f64() - 0.5).abs() < 1e-6,
        "{:?}",
        segs[1]
    );
}

#[test]
fn hostile_timestamps_do_not_panic() {
    let mut s = segmenter();
    let t = tracks();
    let mut out = Vec::new();
    for dts in [0, i64::MAX, i64::MIN, 5, i64::MAX, -1] {
        let mut u = video(0, true);
        u.dts = dts;
        u.pts = dts.wrapping_neg();
        s.push(&u, &t, &mut out);
        let mut a = audio(0);
        a.dts = dts;
        s.push(&a, &t, &mut out);
    }
    s.finish(&mut out);
}

#[test]
fn new_parameter_sets_start_a_segment_with_a_new_init_section() {
    let mut s = segmenter();
    let mut out = run(&mut s, 0, 45, 30);
    // Frame 45 is a keyframe with a new SPS (another level): mid-GOP, mid-segment.
    let mut changed = tracks();
    if let Codec::H264 { sps: Some(sps), .. } = &mut changed[0].codec {
        let mut b = sps.to_vec();
        b[3] = 0x1f;
        *sps = Bytes::from(b);
    }
    out.clear();
    s.push(&video(45, true), &changed, &mut out);
    s.push(&video(46, false), &changed, &mut out);
    let kinds: Vec<&str> = out
        .iter()
        .map(|o| match o {
            Output::Init(_) => "init",
            Output::Part(_) => "part",
            Output::Segment(_) => "segment",
        })
        .collect();
    assert_eq!(kinds, ["part", "segment", "init"]);
    let mut rest = Vec::new();
    for f in 47..91 {
        s.push(&video(f, f % 30 == 0), &changed, &mut rest);
    }
    let seg = rest
        .iter()
        .find_map(|o| match o {
            Output::Segment(s) => Some(s),
            _ => None,
        })
        .unwrap();
    assert!(
        seg.discontinuity,
        "the segment after new parameters is a discontinuity"
    );
    assert!(
        !rest.iter().any(|o| matches!(o, Output::Init(_))),
        "one init per change"
    );
}
