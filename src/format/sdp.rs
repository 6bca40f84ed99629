//! SDP (RFC 8866) for RTSP: tracks out of an ANNOUNCE body, and the DESCRIBE body
//! for a stream's tracks. Parsing and writing go through `sdp-types`.

use crate::codec::{aac, h264};
use crate::core::{Codec, OtherCodec, Track};
use crate::format::rtp::RtpFormatParams;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use sdp_types::{Attribute, Media, Origin, Session, Time};

/// One media section of an announced SDP.
#[derive(Debug, Clone)]
pub struct AnnouncedMedia {
    pub track: Track,
    pub payload_type: u8,
    /// The `a=control` value (absolute URL or relative to the base).
    pub control: Option<String>,
    pub fmtp: RtpFormatParams,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SdpError {
    #[error("SDP does not parse: {0}")]
    Syntax(String),
    #[error("SDP has no media")]
    NoMedia,
    #[error("SDP has too many media sections ({0}; sdpMaxMedias)")]
    TooManyMedia(usize),
    #[error("SDP media {index}: {reason}")]
    Media { index: usize, reason: String },
}

/// The media of an SDP with at most `max_medias` sections (`sdpMaxMedias`).
pub fn parse_announce(body: &[u8], max_medias: usize) -> Result<Vec<AnnouncedMedia>, SdpError> {
    let session = Session::parse(body).map_err(|e| SdpError::Syntax(e.to_string()))?;
    if session.medias.is_empty() {
        return Err(SdpError::NoMedia);
    }
    if session.medias.len() > max_medias {
        return Err(SdpError::TooManyMedia(session.medias.len()));
    }
    session
        .medias
        .iter()
        .enumerate()
        .map(|(index, m)| parse_media(m).map_err(|reason| SdpError::Media { index, reason }))
        .collect()
}

fn parse_fmtp(value: &str) -> RtpFormatParams {
    value
        .split(';')
        .filter_map(|kv| {
            let kv = kv.trim();
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (!k.is_empty()).then(|| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect()
}

fn parse_media(m: &Media) -> Result<AnnouncedMedia, String> {
    let pt: u8 = m
        .fmt
        .split_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .filter(|pt| *pt < 128)
        .ok_or_else(|| format!("invalid payload type '{}'", m.fmt))?;
    let for_pt = |attr: &str| {
        m.attributes
            .iter()
            .filter(|a| a.attribute.eq_ignore_ascii_case(attr))
            .filter_map(|a| a.value.as_deref())
            .find_map(|v| {
                let (p, rest) = v.trim().split_once(char::is_whitespace)?;
                (p.parse::<u8>().ok()? == pt).then(|| rest.trim().to_string())
            })
    };
    let rtpmap = for_pt("rtpmap");
    let fmtp_raw = for_pt("fmtp");
    let fmtp = fmtp_raw.as_deref().map(parse_fmtp).unwrap_or_default();
    let control = m
        .attributes
        .iter()
        .find(|a| a.attribute == "control")
        .and_then(|a| a.value.clone());

    let (encoding, clock, channels) = match &rtpmap {
        Some(map) => {
            let mut it = map.split('/');
            let enc = it.next().unwrap_or_default().to_ascii_uppercase();
            let clock: u32 = it
                .next()
                .and_then(|c| c.trim().parse().ok())
                .filter(|c| *c > 0)
                .ok_or_else(|| format!("invalid rtpmap '{map}'"))?;
            let ch: Option<u8> = it.next().and_then(|c| c.trim().parse().ok());
            (enc, clock, ch)
        }
        None => (String::new(), static_clock_rate(pt, &m.media), None),
    };

    let other = || {
        Codec::Other(OtherCodec {
            media: m.media.clone(),
            payload_type: pt,
            rtpmap: rtpmap.clone(),
            fmtp: fmtp_raw.clone(),
        })
    };
    let param = |k: &str| fmtp.get(k).map(String::as_str);
    let codec = match encoding.as_str() {
        "H264" if param("packetization-mode").unwrap_or("0") != "2" => {
            let mut sets = param("sprop-parameter-sets")
                .unwrap_or_default()
                .split(',')
                .filter_map(|s| B64.decode(s.trim()).ok())
                .map(Bytes::from);
            let (mut sps, mut pps) = (None, None);
            for s in sets.by_ref() {
                match h264::nal_type(&s) {
                    h264::NAL_SPS => sps = Some(s),
                    h264::NAL_PPS => pps = Some(s),
                    _ => {}
                }
            }
            Codec::H264 { sps, pps }
        }
        "H265" if param("sprop-max-don-diff").unwrap_or("0") == "0" => {
            let get = |k: &str| {
                param(k)
                    .and_then(|v| B64.decode(v.trim()).ok())
                    .map(Bytes::from)
            };
            Codec::H265 {
                vps: get("sprop-vps"),
                sps: get("sprop-sps"),
                pps: get("sprop-pps"),
            }
        }
        "MPEG4-GENERIC"
            if param("mode").is_some_and(|v| {
                v.eq_ignore_ascii_case("AAC-hbr") || v.eq_ignore_ascii_case("AAC-lbr")
            }) =>
        {
            let config = param("config")
                .and_then(aac::decode_hex)
                .ok_or("AAC without a valid config parameter")?;
            let asc = aac::AudioSpecificConfig::parse(&config).map_err(|e| e.to_string())?;
            Codec::Aac {
                config: Bytes::from(config),
                sample_rate: asc.sample_rate,
                channels: asc.channels,
            }
        }
        "OPUS" => Codec::Opus {
            channels: if param("sprop-stereo") == Some("0") {
                1
            } else {
                channels.unwrap_or(2).clamp(1, 2)
            },
        },
        _ => other(),
    };
    Ok(AnnouncedMedia {
        track: Track::new(codec, clock),
        payload_type: pt,
        control,
        fmtp,
    })
}

fn static_clock_rate(pt: u8, media: &str) -> u32 {
    match pt {
        0 | 3 | 4 | 5 | 7 | 8 | 9 | 12 | 13 | 15 | 18 => 8000,
        6 => 16000,
        10 | 11 => 44100,
        16 => 11025,
        17 => 22050,
        _ if media == "audio" => 8000,
        _ => 90000,
    }
}

/// The DESCRIBE body: one media section per track with `a=control:trackID=N`.
pub fn describe(tracks: &[(Track, u8)]) -> String {
    let mut session = Session {
        origin: Origin {
            username: Some("-".into()),
            sess_id: "0".into(),
            sess_version: 0,
            nettype: "IN".into(),
            addrtype: "IP4".into(),
            unicast_address: "127.0.0.1".into(),
        },
        session_name: "mediarouter".into(),
        session_description: None,
        uri: None,
        emails: vec![],
        phones: vec![],
        connection: Some(sdp_types::Connection {
            nettype: "IN".into(),
            addrtype: "IP4".into(),
            connection_address: "0.0.0.0".into(),
        }),
        bandwidths: vec![],
        times: vec![Time {
            start_time: 0,
            stop_time: 0,
            repeats: vec![],
        }],
        time_zones: vec![],
        key: None,
        attributes: vec![Attribute::with_value("tool", "mediarouter")],
        medias: vec![],
    };
    for (i, (track, pt)) in tracks.iter().enumerate() {
        let (media, rtpmap, fmtp) = media_lines(track);
        let mut attributes = vec![Attribute::with_value("control", format!("trackID={i}"))];
        if let Some(map) = rtpmap {
            attributes.push(Attribute::with_value("rtpmap", format!("{pt} {map}")));
        }
        if let Some(f) = fmtp {
            attributes.push(Attribute::with_value("fmtp", format!("{pt} {f}")));
        }
        session.medias.push(Media {
            media,
            port: 0,
            num_ports: None,
            proto: "RTP/AVP".into(),
            fmt: pt.to_string(),
            media_title: None,
            connections: vec![],
            bandwidths: vec![],
            key: None,
            attributes,
        });
    }
    let mut out = Vec::new();
    // Writing into a Vec can't fail.
    let _ = session.write(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn media_lines(track: &Track) -> (String, Option<String>, Option<String>) {
    let b64 = |b: &Option<Bytes>| b.as_ref().map(|b| B64.encode(b));
    match &track.codec {
        Codec::H264 { sps, pps } => {
            let mut f = "packetization-mode=1".to_string();
            if let (Some(s), Some(p)) = (b64(sps), b64(pps)) {
                f += &format!("; sprop-parameter-sets={s},{p}");
            }
            if let Some(plid) = sps.as_deref().and_then(h264::profile_level_id) {
                f += &format!("; profile-level-id={plid}");
            }
            ("video".into(), Some("H264/90000".into()), Some(f))
        }
        Codec::H265 { vps, sps, pps } => {
            let parts: Vec<String> = [("sprop-vps", vps), ("sprop-sps", sps), ("sprop-pps", pps)]
                .iter()
                .filter_map(|(k, v)| b64(v).map(|v| format!("{k}={v}")))
                .collect();
            ("video".into(), Some("H265/90000".into()), (!parts.is_empty()).then(|| parts.join("; ")))
        }
        Codec::Aac { config, sample_rate, channels } => (
            "audio".into(),
            Some(format!("MPEG4-GENERIC/{sample_rate}/{channels}")),
            Some(format!(
                "profile-level-id=1; mode=AAC-hbr; sizelength=13; indexlength=3; indexdeltalength=3; config={}",
                aac::encode_hex(config)
            )),
        ),
        Codec::Opus { channels } => (
            "audio".into(),
            Some("opus/48000/2".into()),
            Some(format!("sprop-stereo={}", u8::from(*channels == 2))),
        ),
        Codec::Other(o) => (o.media.clone(), o.rtpmap.clone(), o.fmtp.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FFMPEG_SDP: &str = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=No Name\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\na=tool:libavformat 59.27.100\r\n\
m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1; sprop-parameter-sets=Z2QAH6zZQFAFuwEQAAADABAAAAMDwPGDGWA=,aOvjyyLA; profile-level-id=64001F\r\na=control:streamid=0\r\n\
m=audio 0 RTP/AVP 97\r\nb=AS:128\r\na=rtpmap:97 MPEG4-GENERIC/44100/2\r\na=fmtp:97 profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3; config=121056E500\r\na=control:streamid=1\r\n\
m=audio 0 RTP/AVP 0\r\na=control:streamid=2\r\n";

    #[test]
    fn parses_ffmpeg_announce() {
        let m = parse_announce(FFMPEG_SDP.as_bytes(), 16).unwrap();
        assert_eq!(m.len(), 3);
        match &m[0].track.codec {
            Codec::H264 {
                sps: Some(s),
                pps: Some(p),
            } => {
                assert_eq!(s[0] & 0x1f, 7);
                assert_eq!(p[0] & 0x1f, 8);
            }
            c => panic!("{c:?}"),
        }
        assert_eq!(m[0].control.as_deref(), Some("streamid=0"));
        assert_eq!(m[1].track.clock_rate, 44100);
        assert!(matches!(
            m[1].track.codec,
            Codec::Aac {
                sample_rate: 44100,
                channels: 2,
                ..
            }
        ));
        assert_eq!(m[1].fmtp.get("sizelength").map(String::as_str), Some("13"));
        assert!(matches!(&m[2].track.codec, Codec::Other(o) if o.payload_type == 0));
        assert_eq!(m[2].track.clock_rate, 8000);
    }

    #[test]
    fn describe_roundtrips() {
        let announced = parse_announce(FFMPEG_SDP.as_bytes(), 16).unwrap();
        let tracks: Vec<(Track, u8)> = announced
            .iter()
            .map(|a| (a.track.clone(), a.payload_type))
            .collect();
        let sdp = describe(&tracks);
        assert!(sdp.contains("a=control:trackID=1"), "{sdp}");
        let again = parse_announce(sdp.as_bytes(), 16).unwrap();
        for (a, b) in again.iter().zip(&announced) {
            assert_eq!(a.track, b.track);
        }
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse_announce(b"\x00\xffgarbage", 16).is_err());
        // sdpMaxMedias: this SDP has three sections, over 1.
        assert!(matches!(
            parse_announce(FFMPEG_SDP.as_bytes(), 1),
            Err(SdpError::TooManyMedia(3))
        ));
        assert!(parse_announce(b"v=0\r\no=- 0 0 IN IP4 1.2.3.4\r\ns=x\r\nt=0 0\r\n", 16).is_err());
        let bad_aac = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/44100/2\r\na=fmtp:97 mode=AAC-hbr; config=zz\r\n";
        assert!(parse_announce(bad_aac.as_bytes(), 16).is_err());
        let bad_pt = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=video 0 RTP/AVP 300\r\n";
        assert!(parse_announce(bad_pt.as_bytes(), 16).is_err());
    }
}
