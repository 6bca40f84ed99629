//! An FLV byte stream after the file header: tags, audio/video bodies, NAL splitting,
//! and decoder configuration records inside sequence headers.
#![no_main]
use bytes::Bytes;
use mediarouter::codec::config_record;
use mediarouter::format::flv;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((tag, used))) = flv::parse_tag(rest) {
        let body = Bytes::copy_from_slice(tag.body);
        match tag.typ {
            8 => {
                let _ = flv::parse_audio(&body);
            }
            9 => match flv::parse_video(&body) {
                Ok(Some((_, flv::VideoPacket::SequenceHeader(record)))) => {
                    let _ = config_record::parse_avcc(&record);
                    let _ = config_record::parse_hvcc(&record);
                }
                Ok(Some((_, flv::VideoPacket::Frame { data, .. }))) => {
                    for size in [1, 2, 4] {
                        let _ = flv::split_nalus(&data, size);
                    }
                }
                _ => {}
            },
            _ => {}
        }
        rest = &rest[used..];
    }
});
