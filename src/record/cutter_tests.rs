use super::*;
use crate::core::fixtures;
use crate::format::fmp4::demux::{parse_fragments, parse_init};
use crate::format::mpegts::demux::{EsKind, TsDemuxer};
use std::time::UNIX_EPOCH;

fn tracks() -> Vec<Track> {
    vec![fixtures::h264_with_sets(), fixtures::aac()]
}

fn limits(segment_s: u64) -> Limits {
    Limits {
        segment: Duration::from_secs(segment_s),
        part: Duration::from_secs(1),
        max_part_bytes: usize::MAX,
    }
}

/// 30 fps video (keyframe every `gop` frames) and 48 kHz AAC, frames `from..to`.
fn run(c: &mut Cutter, from: i64, to: i64, gop: i64, out: &mut Vec<Event>) {
    let t = tracks();
    let mut next_audio = from * 48000 / 30 / 1024;
    for f in from..to {
        c.push(&fixtures::video(f, f % gop == 0), &t, out);
        while next_audio * 1024 * 30 < (f + 1) * 48000 {
            c.push(&fixtures::aac_frame(next_audio), &t, out);
            next_audio += 1;
        }
    }
}

/// The files the events make, with their start times.
fn files(events: &[Event]) -> Vec<(SystemTime, Vec<u8>)> {
    let mut out: Vec<(SystemTime, Vec<u8>)> = Vec::new();
    for e in events {
        match e {
            Event::Open { start, header } => out.push((*start, header.to_vec())),
            Event::Data { bytes, .. } => out
                .last_mut()
                .expect("data after open")
                .1
                .extend_from_slice(bytes),
        }
    }
    out
}

fn fmp4_video_samples(file: &[u8]) -> (usize, bool) {
    let tracks = parse_init(file).expect("init first");
    let video_id = tracks.iter().find(|t| t.track.codec.is_video()).unwrap().id;
    let mut samples = Vec::new();
    parse_fragments(&Bytes::copy_from_slice(file), &mut samples).unwrap();
    let video: Vec<_> = samples.iter().filter(|s| s.track_id == video_id).collect();
    (video.len(), video.first().is_some_and(|s| s.keyframe))
}

#[test]
fn fmp4_files_start_on_keyframes_after_the_segment_duration() {
    let mut c = Cutter::new(RecordFormat::Fmp4, &tracks(), limits(3), UNIX_EPOCH).unwrap();
    let mut ev = Vec::new();
    // 10 s with a keyframe every second; frames before the first keyframe are dropped.
    run(&mut c, 15, 315, 30, &mut ev);
    c.finish(&mut ev);
    let files = files(&ev);
    let starts: Vec<u64> = files
        .iter()
        .map(|(s, _)| s.duration_since(UNIX_EPOCH).unwrap().as_secs())
        .collect();
    assert_eq!(starts, vec![1, 4, 7, 10]);
    let mut total = 0;
    for (_, f) in &files {
        let (n, key_first) = fmp4_video_samples(f);
        assert!(key_first);
        total += n;
    }
    assert_eq!(total, 315 - 30, "every frame from the first keyframe on");
    // Parts of at most a second: at least three per full file.
    let parts = ev
        .iter()
        .filter(|e| matches!(e, Event::Data { .. }))
        .count();
    assert!(parts >= 9, "{parts} parts");
}

#[test]
fn fmp4_parts_end_at_the_size_limit_and_a_cut_opens_a_new_file() {
    let mut l = limits(3600);
    l.max_part_bytes = 40;
    let mut c = Cutter::new(RecordFormat::Fmp4, &tracks(), l, UNIX_EPOCH).unwrap();
    let mut ev = Vec::new();
    run(&mut c, 0, 60, 30, &mut ev);
    let parts = ev
        .iter()
        .filter(|e| matches!(e, Event::Data { .. }))
        .count();
    assert!(parts > 5, "small parts: {parts}");
    // A failed write: the next keyframe (frame 60) starts a new file, with the init.
    c.restart_after_failure();
    let before = ev.len();
    run(&mut c, 60, 120, 30, &mut ev);
    // A gap (the reader skipped ahead): the file so far ends whole, the next keyframe
    // (frame 150) starts another.
    c.cut_at_next_keyframe();
    run(&mut c, 140, 180, 30, &mut ev);
    c.finish(&mut ev);
    let later = files(&ev[before..]);
    assert_eq!(later.len(), 2);
    assert_eq!(later[0].0, UNIX_EPOCH + Duration::from_secs(2));
    assert_eq!(later[1].0, UNIX_EPOCH + Duration::from_secs(5));
    let (n, key_first) = fmp4_video_samples(&later[0].1);
    assert!(key_first);
    assert_eq!(n, 60 + 10, "frames 60..120, and 140..150 before the cut");
    assert_eq!(fmp4_video_samples(&later[1].1), (30, true));
}

#[test]
fn mpegts_files_hold_every_frame_and_flush_each_part() {
    let mut c = Cutter::new(RecordFormat::Mpegts, &tracks(), limits(3), UNIX_EPOCH).unwrap();
    let mut ev = Vec::new();
    run(&mut c, 15, 315, 30, &mut ev);
    c.finish(&mut ev);
    let files = files(&ev);
    assert_eq!(files.len(), 4);
    let mut video = 0;
    for (_, f) in &files {
        assert_eq!(f.len() % 188, 0);
        let mut d = TsDemuxer::default();
        let mut pes = Vec::new();
        d.push(f, &mut pes).unwrap();
        d.flush(&mut pes);
        video += pes.iter().filter(|p| p.kind == EsKind::H264).count();
    }
    assert_eq!(video, 315 - 30);
    // Flushed about once a second, never holding a whole segment.
    let data: Vec<usize> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Data { bytes, .. } => Some(bytes.len()),
            _ => None,
        })
        .collect();
    assert!(data.len() >= 9, "{data:?}");
}

#[test]
fn new_parameter_sets_start_a_new_file() {
    for format in [RecordFormat::Fmp4, RecordFormat::Mpegts] {
        let mut c = Cutter::new(format, &tracks(), limits(3600), UNIX_EPOCH).unwrap();
        let mut ev = Vec::new();
        run(&mut c, 0, 45, 30, &mut ev);
        // A resolution change: the stream's track has a new SPS from frame 45 on.
        let mut changed = tracks();
        changed[0] = Track::new(
            crate::core::Codec::H264 {
                sps: Some(Bytes::from(
                    crate::codec::aac::decode_hex(
                        "6764001eacd940a02ff970110000030001000003003c0f162d96",
                    )
                    .unwrap(),
                )),
                pps: Some(Bytes::from_static(&[0x68, 0xee, 0x3c, 0x80])),
            },
            90000,
        );
        for f in 45..120 {
            c.push(&fixtures::video(f, f % 30 == 0), &changed, &mut ev);
        }
        c.finish(&mut ev);
        let starts: Vec<SystemTime> = files(&ev).iter().map(|(s, _)| *s).collect();
        // The first keyframe with the new parameters (frame 60, 2 s) opens a file.
        assert_eq!(
            starts,
            vec![UNIX_EPOCH, UNIX_EPOCH + Duration::from_secs(2)],
            "{format:?}"
        );
    }
}
