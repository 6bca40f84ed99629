//! The MPEG-TS one stream's SRT readers share: one task muxes the stream once into
//! 1316-byte payloads (7 TS packets) and keeps them from the last keyframe on, so a new
//! reader starts with tables and a keyframe, and a reader that falls behind skips
//! ahead to the newest keyframe.

use crate::core::{Stream, StreamItem};
use crate::format::mpegts::TsMuxer;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Duration;

/// 7 TS packets: what fits a 1500-byte MTU with SRT's and UDP's headers.
pub const PAYLOAD: usize = 7 * 188;
/// Payloads kept past the last keyframe when a GOP grows larger (or a stream has no
/// video): a reader that is further behind skips.
const MAX_KEPT: usize = 32 << 20;
/// An audio-only stream repeats its tables this often (in units).
const AUDIO_TABLES_EVERY: u64 = 40;

/// Shared by every SRT reader of one stream.
pub struct Feed {
    state: Mutex<State>,
    ready: Condvar,
}

#[derive(Default)]
struct State {
    /// Payloads; the first is number `first`.
    chunks: VecDeque<Bytes>,
    first: u64,
    bytes: usize,
    /// Why the feed ended (the stream's end, or no track fits MPEG-TS).
    ended: Option<String>,
}

/// What a reader got from its cursor on.
pub enum Take {
    Chunks(Vec<Bytes>),
    /// Nothing new within the wait.
    Idle,
    Ended(String),
}

impl Feed {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The number a new reader starts from: the newest keyframe's tables.
    pub fn start(&self) -> u64 {
        self.lock().first
    }

    /// Payloads from `*cursor` on, waiting up to `wait` for some; a cursor that fell
    /// out of the kept window moves to its start and `skips` counts it.
    pub fn take(&self, cursor: &mut u64, skips: &mut u64, wait: Duration) -> Take {
        let mut st = self.lock();
        if *cursor >= st.first + st.chunks.len() as u64 && st.ended.is_none() {
            st = self
                .ready
                .wait_timeout(st, wait)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        if *cursor < st.first {
            *cursor = st.first;
            *skips += 1;
        }
        let from = (*cursor - st.first) as usize;
        if from < st.chunks.len() {
            let out: Vec<Bytes> = st.chunks.range(from..).cloned().collect();
            *cursor += out.len() as u64;
            return Take::Chunks(out);
        }
        match &st.ended {
            Some(why) => Take::Ended(why.clone()),
            None => Take::Idle,
        }
    }

    fn push(&self, data: &[u8], sync_point: bool) {
        let mut st = self.lock();
        if sync_point {
            // Readers that are behind keep their payloads (`Bytes`); the window restarts.
            st.first += st.chunks.len() as u64;
            st.chunks.clear();
            st.bytes = 0;
        }
        for c in data.chunks(PAYLOAD) {
            st.bytes += c.len();
            st.chunks.push_back(Bytes::copy_from_slice(c));
        }
        while st.bytes > MAX_KEPT {
            let Some(c) = st.chunks.pop_front() else {
                break;
            };
            st.bytes -= c.len();
            st.first += 1;
        }
        drop(st);
        self.ready.notify_all();
    }

    fn end(&self, why: String) {
        self.lock().ended.get_or_insert(why);
        self.ready.notify_all();
    }
}

/// The feeds of the streams SRT readers read, by stream.
#[derive(Default)]
pub struct Feeds(Mutex<HashMap<usize, Weak<Feed>>>);

impl Feeds {
    /// The stream's feed, started by its first reader; it stops when the last one goes.
    pub fn get(&self, stream: &Arc<Stream>) -> Arc<Feed> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, f| f.strong_count() > 0);
        let key = Arc::as_ptr(stream) as usize;
        if let Some(f) = map.get(&key).and_then(Weak::upgrade) {
            return f;
        }
        let feed = Arc::new(Feed {
            state: Mutex::new(State::default()),
            ready: Condvar::new(),
        });
        map.insert(key, Arc::downgrade(&feed));
        // The map's key is the stream's address: the task holds the stream, so no
        // other stream gets that address while the feed lives.
        tokio::spawn(run(stream.clone(), Arc::downgrade(&feed)));
        feed
    }
}

async fn run(stream: Arc<Stream>, feed: Weak<Feed>) {
    let end = |why: String| {
        if let Some(f) = feed.upgrade() {
            f.end(why);
        }
    };
    let tracks = stream.tracks();
    let mut mux = match TsMuxer::new(&tracks) {
        Ok(m) => m,
        Err(e) => return end(e.to_string()),
    };
    let Some(mut reader) = stream.subscribe() else {
        return end("the stream ended".into());
    };
    let video = tracks.iter().position(|t| t.codec.is_video());
    let (mut out, mut audio_units) = (Vec::with_capacity(64 << 10), 0u64);
    loop {
        let item = match reader.next().await {
            Ok(i) => i,
            Err(e) => {
                return end(match e {
                    crate::core::ReadEnd::Closed => "the stream ended".into(),
                    crate::core::ReadEnd::TooSlow => "the SRT feed fell behind".into(),
                })
            }
        };
        let StreamItem::Unit(entry) = item else {
            continue;
        };
        let Some(f) = feed.upgrade() else {
            return;
        };
        let unit = &entry.unit;
        if !mux.carries(unit.track) {
            continue;
        }
        let sync = match video {
            Some(v) => unit.track == v && unit.keyframe,
            None => {
                audio_units += 1;
                audio_units % AUDIO_TABLES_EVERY == 1
            }
        };
        out.clear();
        if sync {
            mux.write_tables(&mut out);
        }
        mux.write(unit, &mut out);
        f.push(&out, sync);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed() -> Feed {
        Feed {
            state: Mutex::new(State::default()),
            ready: Condvar::new(),
        }
    }

    #[test]
    fn readers_start_at_the_newest_keyframe_and_skip_when_behind() {
        let f = feed();
        f.push(&[1u8; PAYLOAD * 2 + 10], true);
        let (mut late, mut skips) = (f.start(), 0);
        assert_eq!(late, 0);
        f.push(&[2u8; 100], false);
        let mut early = f.start();
        match f.take(&mut early, &mut skips, Duration::ZERO) {
            Take::Chunks(c) => {
                assert_eq!(c.len(), 4);
                assert_eq!(c[2].len(), 10);
            }
            _ => panic!("expected payloads"),
        }
        f.push(&[3u8; 50], true);
        assert_eq!(f.start(), 4);
        // `late` never read: it moves to the new keyframe, counted as a skip.
        match f.take(&mut late, &mut skips, Duration::ZERO) {
            Take::Chunks(c) => assert_eq!(&c[0][..], &[3u8; 50][..]),
            _ => panic!("expected payloads"),
        }
        assert_eq!(skips, 1);
        assert!(matches!(
            f.take(&mut late, &mut skips, Duration::ZERO),
            Take::Idle
        ));
        f.end("gone".into());
        assert!(
            matches!(f.take(&mut late, &mut skips, Duration::ZERO), Take::Ended(w) if w == "gone")
        );
    }
}
