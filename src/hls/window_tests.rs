use super::*;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

fn muxer(variant: HlsVariant, count: usize) -> Arc<HlsMuxer> {
    Arc::new(HlsMuxer::new(
        variant,
        count,
        Duration::from_secs(1),
        Duration::from_millis(200),
        0,
        CancellationToken::new(),
    ))
}

fn part(id: u64, segment: u64) -> Part {
    Part {
        info: PartInfo {
            id,
            duration: Duration::from_millis(200),
            independent: id.is_multiple_of(5),
        },
        data: Bytes::from(vec![id as u8; 10]),
        segment,
        discontinuity: false,
        start: std::time::SystemTime::UNIX_EPOCH,
    }
}

/// Segment `seq` of five parts, added part by part.
fn add_segment(m: &HlsMuxer, seq: u64) {
    let mut parts = Vec::new();
    for i in 0..5 {
        let p = part(seq * 5 + i, seq);
        parts.push(p.info);
        m.add_part(p, 0);
    }
    m.add_segment(
        Segment {
            seq,
            data: Bytes::from(vec![0; 50]),
            duration: Duration::from_secs(1),
            start: UNIX_EPOCH + Duration::from_secs(seq),
            discontinuity: false,
            parts,
        },
        0,
    );
}

fn text(r: PlaylistReply) -> String {
    match r {
        PlaylistReply::Playlist(t, _) => t,
        PlaylistReply::NotReady => panic!("not ready"),
        PlaylistReply::TooFar => panic!("too far"),
    }
}

#[tokio::test]
async fn blocking_reload_waits_for_the_part_and_refuses_far_ones() {
    let m = muxer(HlsVariant::LowLatency, 7);
    assert_eq!(m.add_init(Bytes::from_static(b"init")), 0);
    add_segment(&m, 0);
    add_segment(&m, 1);
    m.add_part(part(10, 2), 0);
    let wait = Duration::from_secs(5);
    let now = text(m.media_playlist(wait, Some((2, Some(0)))).await);
    assert!(
        now.contains("URI=\"part10.mp4\",INDEPENDENT=YES\n"),
        "{now}"
    );
    assert!(
        now.contains("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part11.mp4\""),
        "{now}"
    );
    assert!(now.contains("#EXT-X-MAP:URI=\"init0.mp4\""), "{now}");

    // The next part: the request waits until it is added.
    let waiter = {
        let m = m.clone();
        tokio::spawn(async move { text(m.media_playlist(wait, Some((2, Some(1)))).await) })
    };
    let hinted = {
        let m = m.clone();
        tokio::spawn(async move { m.part(11).await })
    };
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished() && !hinted.is_finished());
    m.add_part(part(11, 2), 0);
    let got = tokio::time::timeout(wait, waiter).await.unwrap().unwrap();
    assert!(
        got.contains("URI=\"part11.mp4\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part12.mp4\""),
        "{got}"
    );
    let data = tokio::time::timeout(wait, hinted).await.unwrap().unwrap();
    assert_eq!(data.unwrap(), Bytes::from(vec![11u8; 10]));

    // Past the last part of complete segment 1: part 0 of segment 2, held already.
    assert!(m.lock().satisfies(1, Some(9)));
    assert!(!m.lock().satisfies(2, Some(2)));
    // Segment 3 doesn't exist yet, 5 is past the last + 2; part 30 of 2 is past the
    // advance limit (3 / 0.2 s = 15 parts).
    assert!(matches!(
        m.media_playlist(wait, Some((5, None))).await,
        PlaylistReply::TooFar
    ));
    assert!(matches!(
        m.media_playlist(wait, Some((2, Some(30)))).await,
        PlaylistReply::TooFar
    ));
    // Parts not hinted and not held are 404s at once.
    assert!(m.part(13).await.is_none());
    assert!(m.part(1).await.is_some());
}

#[tokio::test]
async fn the_window_keeps_segment_count_segments_and_recent_parts() {
    let m = muxer(HlsVariant::LowLatency, 7);
    assert_eq!(m.add_init(Bytes::from_static(b"init")), 0);
    for seq in 0..1000 {
        add_segment(&m, seq);
    }
    let (segments, parts) = m.held();
    assert_eq!(segments, 7);
    assert!(parts <= 5 * SEGMENTS_WITH_PARTS as usize, "{parts}");
    let t = text(m.media_playlist(Duration::ZERO, None).await);
    assert!(t.contains("#EXT-X-MEDIA-SEQUENCE:993\n"), "{t}");
    assert_eq!(t.matches("#EXTINF").count(), 7);
    // Parts only for the last three segments.
    assert_eq!(t.matches("#EXT-X-PART:").count(), 15, "{t}");
    assert!(m.segment(992).is_none() && m.segment(993).is_some());
}

#[tokio::test]
async fn fmp4_without_low_latency_lists_no_parts() {
    let m = muxer(HlsVariant::Fmp4, 7);
    add_segment(&m, 0);
    // Players start a few segments from the end: one segment isn't served yet.
    assert!(matches!(
        m.media_playlist(Duration::ZERO, None).await,
        PlaylistReply::NotReady
    ));
    add_segment(&m, 1);
    let t = text(m.media_playlist(Duration::ZERO, None).await);
    assert!(!t.contains("PART") && !t.contains("PRELOAD"), "{t}");
    assert!(t.contains("seg0.mp4"));
    assert!(matches!(
        muxer(HlsVariant::Mpegts, 7)
            .media_playlist(Duration::ZERO, None)
            .await,
        PlaylistReply::NotReady
    ));
}
