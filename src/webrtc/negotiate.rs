//! Answering an offer, without I/O: a str0m `Rtc` (ICE-lite, RTP mode) with our host
//! candidates accepts the offer, and what it set up decides which tracks a reader is
//! sent or a publisher may send. Fuzzed (`fuzz/fuzz_targets/webrtc_offer.rs`).

use super::codecs::{self, ReadPlan};
use super::session::{self, PublishTracks, TxTrack};
use std::net::SocketAddr;
use std::time::Instant;
use str0m::change::SdpOffer;
use str0m::media::{Direction, MediaKind, Mid};
use str0m::{Candidate, Output, Rtc, RtcConfig};

/// An accepted offer: the session's engine and the answer to send back.
pub(crate) struct Accepted {
    pub rtc: Rtc,
    pub answer: String,
    pub medias: Vec<(Mid, MediaKind, Direction)>,
}

/// Why an offer was not answered; each is a 400 with this text.
pub(crate) type Refusal = String;

pub(crate) fn accept(
    offer: &str,
    cfg: RtcConfig,
    host: &[SocketAddr],
) -> Result<Accepted, Refusal> {
    let parsed = SdpOffer::from_sdp_string(offer).map_err(|e| format!("invalid SDP offer: {e}"))?;
    let mut rtc = cfg
        .set_ice_lite(true)
        .set_rtp_mode(true)
        .build(Instant::now());
    for a in host {
        if let Ok(c) = Candidate::host(*a, "udp") {
            rtc.add_local_candidate(c);
        }
    }
    let answer = rtc
        .sdp_api()
        .accept_offer(parsed)
        .map_err(|e| format!("offer not accepted: {e}"))?;
    // Nothing is on the network yet: what accepting left in the output is dropped.
    loop {
        match rtc
            .poll_output()
            .map_err(|e| format!("WebRTC error: {e}"))?
        {
            Output::Timeout(_) => break,
            Output::Event(_) | Output::Transmit(_) => {}
        }
    }
    // The offer's media (by `a=mid`) as the answer set them up, with their directions
    // from our side.
    let medias = offer
        .lines()
        .filter_map(|l| l.trim().strip_prefix("a=mid:"))
        .map(|m| Mid::from(m.trim()))
        .filter_map(|mid| rtc.media(mid).map(|m| (mid, m.kind(), m.direction())))
        .collect();
    Ok(Accepted {
        rtc,
        answer: answer.to_sdp_string(),
        medias,
    })
}

/// A reader's send tracks for `plan`, and what it leaves out (for the page).
pub(crate) fn read(
    offer: &str,
    plan: &ReadPlan,
    host: &[SocketAddr],
) -> Result<(Accepted, Vec<TxTrack>, Vec<String>), Refusal> {
    let mut a = accept(offer, codecs::configure_read(Rtc::builder(), plan), host)?;
    let tx = session::reader_tracks(&mut a.rtc, &a.medias, plan)?;
    let mut left = plan.left_out.clone();
    for (chosen, what) in [(plan.video, "video"), (plan.audio, "audio")] {
        if let Some((track, _)) = chosen {
            if !tx.iter().any(|t| t.track() == track) {
                left.push(format!(
                    "{what} (the browser takes none of the stream's {what} codecs)"
                ));
            }
        }
    }
    Ok((a, tx, left))
}

/// A publisher's tracks and the media index of each payload type it may send.
pub(crate) fn publish(
    offer: &str,
    host: &[SocketAddr],
) -> Result<(Accepted, PublishTracks), Refusal> {
    let h264 = offer.to_ascii_uppercase().contains(" H264/90000");
    let a = accept(offer, codecs::configure_publish(Rtc::builder(), h264), host)?;
    let tracks = session::publish_tracks(&a.rtc, &a.medias)?;
    Ok((a, tracks))
}

/// For the fuzz target: answers `offer` as a reader of H.264 + Opus and as a
/// publisher would be answered. Never panics, whatever the offer holds.
#[doc(hidden)]
pub fn fuzz_offer(offer: &str) {
    use crate::core::{Codec, Track};
    let tracks = [
        Track::new(
            Codec::H264 {
                sps: None,
                pps: None,
            },
            90000,
        ),
        Track::new(Codec::Opus { channels: 2 }, 48000),
    ];
    let host = [SocketAddr::from(([127, 0, 0, 1], 8189))];
    let _ = read(offer, &codecs::plan(&tracks), &host);
    let _ = publish(offer, &host);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{fixtures, Track};

    /// Chromium 156's receive-only offer (video and audio), trimmed of its RTX and RED.
    const CHROMIUM: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\na=msid-semantic: WMS\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 102 127\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:Wq1c\r\na=ice-pwd:5ZlIWnYKzTT8kKZBNMoh8wDh\r\na=ice-options:trickle\r\n\
a=fingerprint:sha-256 3A:96:6D:57:B2:C2:C7:61:A0:46:3E:1C:97:39:D3:F7:0A:88:A0:B1:EC:03:FB:10:A5:5D:3A:37:AB:DD:02:AA\r\na=setup:actpass\r\na=mid:0\r\na=recvonly\r\na=rtcp-mux\r\na=rtcp-rsize\r\n\
a=rtpmap:96 VP8/90000\r\na=rtpmap:102 H264/90000\r\na=rtcp-fb:102 nack\r\na=rtcp-fb:102 nack pli\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n\
a=rtpmap:127 H264/90000\r\na=fmtp:127 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:Wq1c\r\na=ice-pwd:5ZlIWnYKzTT8kKZBNMoh8wDh\r\na=ice-options:trickle\r\n\
a=fingerprint:sha-256 3A:96:6D:57:B2:C2:C7:61:A0:46:3E:1C:97:39:D3:F7:0A:88:A0:B1:EC:03:FB:10:A5:5D:3A:37:AB:DD:02:AA\r\na=setup:actpass\r\na=mid:1\r\na=recvonly\r\na=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:0 PCMU/8000\r\n";

    fn host() -> [SocketAddr; 1] {
        [SocketAddr::from(([127, 0, 0, 1], 8189))]
    }

    #[test]
    fn a_high_profile_stream_goes_out_under_main_when_the_browser_offers_no_high() {
        let high = Track::new(
            crate::core::Codec::H264 {
                sps: Some(bytes::Bytes::from_static(&[0x67, 0x64, 0x00, 0x28, 0xac])),
                pps: None,
            },
            90000,
        );
        let plan = codecs::plan(&[high, fixtures::aac()]);
        let (a, tx, left) = read(CHROMIUM, &plan, &host()).unwrap();
        assert_eq!(tx.len(), 1);
        assert!(
            left.len() == 1 && left[0].starts_with("AAC audio"),
            "{left:?}"
        );
        assert!(a.answer.contains("a=ice-lite"), "{}", a.answer);
        assert!(a.answer.contains("profile-level-id=4d001f"), "{}", a.answer);
        assert!(
            a.answer.contains("a=candidate:") && a.answer.contains("127.0.0.1 8189"),
            "{}",
            a.answer
        );
    }

    #[test]
    fn pcmu_and_opus_streams_take_the_audio_media() {
        for (track, pt) in [
            (
                Track::new(crate::core::Codec::Opus { channels: 2 }, 48000),
                "111",
            ),
            (fixtures_pcmu(), "0"),
        ] {
            let plan = codecs::plan(&[fixtures::h264_with_sets(), track]);
            let (a, tx, left) = read(CHROMIUM, &plan, &host()).unwrap();
            assert_eq!(tx.len(), 2, "{}", a.answer);
            assert!(left.is_empty(), "{left:?}");
            let audio = a.answer.split("m=audio").nth(1).unwrap();
            assert!(
                audio.starts_with(&format!(" 9 UDP/TLS/RTP/SAVPF {pt}")),
                "{audio}"
            );
        }
    }

    fn fixtures_pcmu() -> Track {
        Track::new(
            crate::core::Codec::Other(crate::core::OtherCodec {
                media: "audio".into(),
                payload_type: 0,
                rtpmap: None,
                fmtp: None,
            }),
            8000,
        )
    }

    #[test]
    fn a_publisher_sends_what_it_has_of_h264_and_opus() {
        let sendonly = CHROMIUM.replace("a=recvonly", "a=sendonly");
        let (_, PublishTracks { tracks, by_pt }) = publish(&sendonly, &host()).unwrap();
        let names: Vec<&str> = tracks.iter().map(|m| m.track.codec.name()).collect();
        assert_eq!(names, ["H264", "Opus"]);
        assert_eq!(by_pt.values().filter(|i| **i == 0).count(), 2, "{by_pt:?}");
        // An offer without H.264 gets VP8 (passed through, as its RTP payloads).
        let vp8: String = sendonly
            .replace(" 96 102 127\r\n", " 96\r\n")
            .split("\r\n")
            .filter(|l| !l.contains(":102") && !l.contains(":127"))
            .map(|l| format!("{l}\r\n"))
            .collect();
        let (a, PublishTracks { tracks, .. }) = publish(&vp8, &host()).unwrap();
        let names: Vec<&str> = tracks.iter().map(|m| m.track.codec.name()).collect();
        assert_eq!(names, ["VP8", "Opus"], "{}", a.answer);
        // Video of a codec nobody reads, and no audio: refused.
        let theora = vp8
            .split("m=audio")
            .next()
            .unwrap()
            .replace("BUNDLE 0 1", "BUNDLE 0")
            .replace("VP8/90000", "theora/90000");
        let e = publish(&theora, &host()).err().unwrap();
        assert!(e.contains("no video"), "{e}");
    }

    /// Safari offers H.265: an H.265 stream goes out under it, unchanged.
    #[test]
    fn an_h265_stream_goes_to_a_browser_that_offers_h265() {
        let safari = CHROMIUM
            .replace(" 96 102 127\r\n", " 96 104\r\n")
            .replace(
                "a=rtpmap:102 H264/90000",
                "a=rtpmap:104 H265/90000\r\na=fmtp:104 profile-id=1;tier-flag=0;level-id=93;tx-mode=SRST\r\na=rtpmap:102 H264/90000",
            );
        let h265 = Track::new(
            crate::core::Codec::H265 {
                vps: None,
                sps: None,
                pps: None,
            },
            90000,
        );
        let (a, tx, left) =
            read(&safari, &codecs::plan(std::slice::from_ref(&h265)), &host()).unwrap();
        assert_eq!(tx.len(), 1, "{}", a.answer);
        assert!(left.is_empty(), "{left:?}");
        assert!(a.answer.contains("H265/90000"), "{}", a.answer);
        // Chromium on Linux offers none: refused, with the reason.
        let e = read(CHROMIUM, &codecs::plan(&[h265]), &host())
            .err()
            .unwrap();
        assert!(e.contains("none of the stream's codecs"), "{e}");
    }

    #[test]
    fn garbage_offers_are_refused_without_a_panic() {
        for offer in [
            "",
            "v=0",
            "hello\r\nworld",
            &CHROMIUM.replace("a=fingerprint", "a=x"),
            &CHROMIUM[..200],
        ] {
            fuzz_offer(offer);
            assert!(
                read(offer, &codecs::plan(&[fixtures::h264()]), &host()).is_err(),
                "{offer}"
            );
        }
    }
}
