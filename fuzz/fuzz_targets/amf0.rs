//! AMF0 values alone (RTMP command and data messages): what decodes encodes again and
//! decodes to the same values.
#![no_main]
use mediarouter::format::amf0;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(values) = amf0::decode_all(data) else {
        return;
    };
    let again = amf0::encode_all(&values);
    let back = amf0::decode_all(&again).expect("what we encode decodes");
    assert_eq!(format!("{back:?}"), format!("{values:?}"));
});
