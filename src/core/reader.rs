//! The shared ring a stream's items go into, and a reader's cursor in it.
//!
//! A reader takes every item the ring holds past its cursor in one go (a batch) and
//! then sleeps until the stream wakes readers again. A reader whose cursor fell out of
//! the ring skips to the next keyframe and is counted; one that keeps falling behind
//! is told to disconnect.

use super::stream::{Stream, StreamItem, LAG_WINDOW, MAX_LAGS};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The last `capacity` items of a stream, numbered from 0 since the stream began.
pub(crate) struct Ring {
    items: VecDeque<StreamItem>,
    /// Number of the oldest item held.
    first: u64,
    capacity: usize,
    pub(crate) closed: bool,
}

impl Ring {
    pub(crate) fn new(capacity: usize) -> Ring {
        Ring {
            items: VecDeque::with_capacity(capacity),
            first: 0,
            capacity,
            closed: false,
        }
    }

    pub(crate) fn push(&mut self, item: StreamItem) {
        if self.items.len() == self.capacity {
            self.items.pop_front();
            self.first += 1;
        }
        self.items.push_back(item);
    }

    /// Number the next item will get.
    pub(crate) fn end(&self) -> u64 {
        self.first + self.items.len() as u64
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum ReadEnd {
    /// The publisher left or was replaced.
    Closed,
    /// The reader fell behind too often.
    TooSlow,
}

/// One reader's cursor into a stream.
pub struct StreamReader {
    stream: Arc<Stream>,
    /// Items taken from the ring (or the GOP cache at start) and not yet returned.
    pending: VecDeque<StreamItem>,
    cursor: u64,
    skipping: bool,
    lags: VecDeque<Instant>,
    /// Times this reader fell out of the ring and skipped to a keyframe.
    skips: u64,
    rtp_start: Vec<(u16, u32)>,
    /// Longest this reader sleeps without looking at the ring (see `look_every`).
    look_every: Option<Duration>,
}

impl StreamReader {
    pub(crate) fn new(
        stream: Arc<Stream>,
        gop: VecDeque<StreamItem>,
        cursor: u64,
        rtp_start: Vec<(u16, u32)>,
    ) -> StreamReader {
        StreamReader {
            stream,
            pending: gop,
            cursor,
            skipping: false,
            lags: VecDeque::new(),
            skips: 0,
            rtp_start,
            look_every: None,
        }
    }

    pub fn stream(&self) -> &Arc<Stream> {
        &self.stream
    }

    /// Drops what the reader holds and the units before the next keyframe (none, for a
    /// stream without keyframes: it would wait for ever).
    pub(crate) fn skip_to_next_keyframe(&mut self) {
        self.pending.clear();
        self.skipping = self.stream.key_track.is_some();
    }

    /// How often this reader fell behind and skipped to the next keyframe (what a
    /// writer of files cuts a new one at: the media has a gap).
    pub fn skips(&self) -> u64 {
        self.skips
    }

    /// (sequence number, RTP timestamp) of the first packet this reader gets per track.
    pub fn rtp_start(&self, track: usize) -> Option<(u16, u32)> {
        self.rtp_start.get(track).copied()
    }

    /// Makes this reader look at the ring at least every `d`, not only when the stream
    /// wakes readers (at most every `writeMerge`): for a latency-bound reader such as
    /// an LL-HLS muxer, where one task per path polling is cheap.
    pub fn look_every(&mut self, d: Duration) {
        self.look_every = Some(d);
    }

    /// Waits for the next item.
    pub async fn next(&mut self) -> Result<StreamItem, ReadEnd> {
        loop {
            if let Some(it) = self.pending.pop_front() {
                return Ok(it);
            }
            // Registered before looking, so a wake between the look and the wait counts.
            let stream = self.stream.clone();
            let woken = stream.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            self.fill()?;
            if self.pending.is_empty() {
                match self.look_every {
                    Some(d) => {
                        let _ = tokio::time::timeout(d, woken).await;
                    }
                    None => woken.await,
                }
            }
        }
    }

    /// The next item if one is ready, for batching writes.
    pub fn try_next(&mut self) -> Result<Option<StreamItem>, ReadEnd> {
        if self.pending.is_empty() {
            self.fill()?;
        }
        Ok(self.pending.pop_front())
    }

    /// Hands every item ready now to `f`: what is pending, then one look at the ring
    /// (a sink's pump, which the stream wakes again for anything written after it).
    pub fn drain(&mut self, mut f: impl FnMut(StreamItem)) -> Result<(), ReadEnd> {
        while let Some(it) = self.pending.pop_front() {
            f(it);
        }
        let closed = self.fill()?;
        while let Some(it) = self.pending.pop_front() {
            f(it);
        }
        // The stream's last wake may have been for both its last items and its end.
        if closed {
            return Err(ReadEnd::Closed);
        }
        Ok(())
    }

    /// Moves what the ring holds past the cursor into `pending`; whether the stream has
    /// ended (after those items).
    fn fill(&mut self) -> Result<bool, ReadEnd> {
        // Fields apart, not `self.stream.clone()`: a refcount every reader of the stream
        // shares is a contended cache line per reader and frame.
        let stream = &self.stream;
        let ring = stream.ring.read().unwrap_or_else(|e| e.into_inner());
        if self.cursor < ring.first {
            lagged(stream, &mut self.lags, &mut self.skipping)?;
            self.skips += 1;
            self.cursor = ring.first;
        }
        let from = (self.cursor - ring.first) as usize;
        for item in ring.items.range(from..) {
            if self.skipping {
                match item {
                    StreamItem::Unit(e)
                        if Some(e.unit.track) == stream.key_track && e.unit.keyframe =>
                    {
                        self.skipping = false;
                    }
                    _ => continue,
                }
            }
            self.pending.push_back(item.clone());
        }
        self.cursor = ring.end();
        if self.pending.is_empty() && ring.closed {
            return Err(ReadEnd::Closed);
        }
        Ok(ring.closed)
    }
}

/// Counts a lag; too many in `LAG_WINDOW` and the reader is dropped, else it skips
/// to the next keyframe.
fn lagged(
    stream: &Stream,
    lags: &mut VecDeque<Instant>,
    skipping: &mut bool,
) -> Result<(), ReadEnd> {
    let now = Instant::now();
    let stats = &stream.stats;
    stats.reader_lags.fetch_add(1, Ordering::Relaxed);
    lags.push_back(now);
    while lags
        .front()
        .is_some_and(|t| now.duration_since(*t) > LAG_WINDOW)
    {
        lags.pop_front();
    }
    if lags.len() >= MAX_LAGS {
        stats.readers_dropped.fetch_add(1, Ordering::Relaxed);
        return Err(ReadEnd::TooSlow);
    }
    *skipping = stream.key_track.is_some();
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::core::{fixtures, Payload, ReadEnd, Stream, StreamConfig, StreamItem, Unit};
    use bytes::Bytes;
    use std::time::Duration;

    /// A sink's pump looks at the ring once per wake, and the stream's last wake can be
    /// for its last units and its end together: one `drain` must report both.
    #[test]
    fn drain_hands_over_the_last_units_and_then_the_end() {
        let s = Stream::new(
            vec![fixtures::h264()],
            StreamConfig {
                queue_size: 64,
                max_payload: 1400,
                merge: Duration::ZERO,
            },
        );
        let unit = |pts: i64| Unit {
            track: 0,
            pts,
            dts: pts,
            keyframe: pts == 0,
            payload: Payload::Nalus(vec![Bytes::from_static(if pts == 0 {
                &[0x65, 1]
            } else {
                &[0x41, 1]
            })]),
        };
        s.write(unit(0));
        let mut r = s.subscribe().unwrap();
        let mut got = Vec::new();
        let mut take = |it: StreamItem| {
            if let StreamItem::Unit(e) = it {
                got.push(e.unit.pts);
            }
        };
        assert!(r.drain(&mut take).is_ok());
        s.write(unit(1));
        s.write(unit(2));
        s.close();
        assert!(matches!(r.drain(&mut take), Err(ReadEnd::Closed)));
        assert_eq!(got, [0, 1, 2]);
        assert!(matches!(r.drain(|_| {}), Err(ReadEnd::Closed)));
    }
}
