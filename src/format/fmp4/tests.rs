use super::*;
use crate::codec::h265_sps::tests::{PPS as H265_PPS, SPS as H265_SPS, VPS as H265_VPS};
use crate::core::{fixtures, Codec, Track};
use bytes::Bytes;
use mp4_atom::{Any, Decode, Ftyp, Mdat, Moof, Moov};

fn h264() -> Track {
    fixtures::h264_with_sets()
}

fn h265() -> Track {
    Track::new(
        Codec::H265 {
            vps: Some(Bytes::from_static(H265_VPS)),
            sps: Some(Bytes::from_static(H265_SPS)),
            pps: Some(Bytes::from_static(H265_PPS)),
        },
        90000,
    )
}

fn decode_init(data: &[u8]) -> (Ftyp, Moov) {
    let mut buf = data;
    let ftyp = Ftyp::decode(&mut buf).unwrap();
    let moov = Moov::decode(&mut buf).unwrap();
    assert!(buf.is_empty());
    (ftyp, moov)
}

#[test]
fn h264_aac_init_describes_both_tracks() {
    let tracks = vec![h264(), fixtures::aac()];
    let (ftyp, moov) = decode_init(&init_segment(&tracks).unwrap());
    assert_eq!(ftyp.major_brand, b"iso6".into());
    assert_eq!(moov.trak.len(), 2);
    assert_eq!(moov.mvex.as_ref().unwrap().trex.len(), 2);
    let video = &moov.trak[0];
    assert_eq!(video.tkhd.track_id, 1);
    assert_eq!(video.mdia.mdhd.timescale, 90000);
    match &video.mdia.minf.stbl.stsd.codecs[0] {
        mp4_atom::Codec::Avc1(avc1) => {
            assert_eq!((avc1.visual.width, avc1.visual.height), (640, 360));
            assert_eq!(avc1.avcc.length_size, 4);
            assert_eq!(
                avc1.avcc.picture_parameter_sets[0],
                [0x68, 0xce, 0x0f, 0xc8]
            );
        }
        other => panic!("{other:?}"),
    }
    let audio = &moov.trak[1];
    assert_eq!(audio.mdia.mdhd.timescale, 48000);
    match &audio.mdia.minf.stbl.stsd.codecs[0] {
        mp4_atom::Codec::Mp4a(mp4a) => {
            let dec = mp4a.esds.es_desc.dec_config.dec_specific.as_ref().unwrap();
            assert_eq!(dec.raw, [0x11, 0x90]);
            assert_eq!(mp4a.audio.channel_count, 2);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(codec_string(&tracks[0]).unwrap(), "avc1.42C01E");
    assert_eq!(codec_string(&tracks[1]).unwrap(), "mp4a.40.2");
}

#[test]
fn h265_and_opus_inits() {
    let tracks = vec![h265(), Track::new(Codec::Opus { channels: 2 }, 48000)];
    let (_, moov) = decode_init(&init_segment(&tracks).unwrap());
    assert!(matches!(
        moov.trak[0].mdia.minf.stbl.stsd.codecs[0],
        mp4_atom::Codec::Hvc1(_)
    ));
    match &moov.trak[1].mdia.minf.stbl.stsd.codecs[0] {
        mp4_atom::Codec::Opus(o) => assert_eq!(o.dops.output_channel_count, 2),
        other => panic!("{other:?}"),
    }
    // Main profile (1), compatibility 0x60000000 reversed, level 60, constraint 0x90.
    assert_eq!(codec_string(&tracks[0]).unwrap(), "hvc1.1.6.L60.90");
    assert_eq!(codec_string(&tracks[1]).unwrap(), "opus");
}

#[test]
fn video_without_parameter_sets_is_refused_and_other_codecs_skipped() {
    assert!(matches!(
        init_segment(&[fixtures::h264()]),
        Err(Fmp4Error::NoParameterSets)
    ));
    let other = Track::new(
        Codec::Other(crate::core::OtherCodec {
            media: "audio".into(),
            payload_type: 0,
            rtpmap: Some("PCMU/8000".into()),
            fmtp: None,
        }),
        8000,
    );
    assert!(matches!(
        init_segment(std::slice::from_ref(&other)),
        Err(Fmp4Error::NoTracks)
    ));
    let (_, moov) = decode_init(&init_segment(&[other, fixtures::aac()]).unwrap());
    assert_eq!(moov.trak[0].tkhd.track_id, 2);
}

#[test]
fn fragment_offsets_point_at_each_tracks_samples() {
    let video = [
        Sample {
            duration: 3000,
            cts: 6000,
            keyframe: true,
            size: 5,
        },
        Sample {
            duration: 3000,
            cts: -3000,
            keyframe: false,
            size: 3,
        },
    ];
    let audio = [Sample {
        duration: 1024,
        cts: 0,
        keyframe: true,
        size: 2,
    }];
    let out = fragment(
        7,
        &[
            TrackRun {
                track_id: 1,
                base_decode_time: 90_000,
                samples: &video,
                data: b"VVVVVvvv",
            },
            TrackRun {
                track_id: 2,
                base_decode_time: 48_000,
                samples: &audio,
                data: b"AA",
            },
            TrackRun {
                track_id: 3,
                base_decode_time: 0,
                samples: &[],
                data: b"",
            },
        ],
    )
    .unwrap();
    let mut buf = out.as_slice();
    let moof = Moof::decode(&mut buf).unwrap();
    let mdat = Mdat::decode(&mut buf).unwrap();
    assert!(buf.is_empty());
    assert_eq!(mdat.data, b"VVVVVvvvAA");
    assert_eq!(moof.mfhd.sequence_number, 7);
    assert_eq!(moof.traf.len(), 2, "empty runs are left out");
    let at = |i: usize| moof.traf[i].trun[0].data_offset.unwrap() as usize;
    assert_eq!(&out[at(0)..at(0) + 8], b"VVVVVvvv");
    assert_eq!(&out[at(1)..at(1) + 2], b"AA");
    let v = &moof.traf[0];
    assert_eq!(v.tfdt.as_ref().unwrap().base_media_decode_time, 90_000);
    let entries: Vec<_> = v.trun[0].samples.iter().collect();
    assert_eq!(entries[0].flags, Some(SYNC_SAMPLE));
    assert_eq!(entries[1].flags, Some(NON_SYNC_SAMPLE));
    assert_eq!(entries[1].cts, Some(-3000));
    assert!(matches!(Any::decode(&mut &out[..]).unwrap(), Any::Moof(_)));
}
