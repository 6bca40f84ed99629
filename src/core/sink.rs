//! Readers the stream writes to from where the frame arrives (nginx's event-loop model).
//!
//! On each wake, one task per group of sinks encodes what each sink's cursor has (the
//! protocol's `Encoder`, shared buffers) and writes it to the socket without blocking.
//! Only a sink whose socket is full, or that has no plain TCP socket (TLS), hands over
//! to its connection's task, which writes with awaits until it has caught up: a reader
//! costs the server a `writev` per frame, not a task wake, a poll and a `writev`.

use super::reader::{ReadEnd, StreamReader};
use super::stream::StreamItem;
use bytes::{Buf, Bytes};
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;

/// What one protocol sends a reader for each stream item.
pub trait Encoder: Send {
    /// Appends this reader's bytes for `item`: shared buffers where it can, not copies.
    fn encode(&mut self, item: &StreamItem, out: &mut VecDeque<Bytes>);
}

/// Why a sink stopped.
#[derive(Debug)]
pub enum SinkEnd {
    Read(ReadEnd),
    Write(io::Error),
}

/// One reader's cursor, encoder and socket, shared by its connection task and the
/// stream's group task.
pub struct Sink {
    inner: Mutex<Inner>,
    /// The socket the group task may write to; `None`: only the owner writes (TLS).
    tcp: Option<Arc<OwnedWriteHalf>>,
    attention: Notify,
    /// The connection's count, which its own writes add to as well.
    bytes_out: super::ByteCounter,
}

struct Inner {
    reader: StreamReader,
    encoder: Box<dyn Encoder>,
    /// Encoded and not yet written, in order.
    pending: VecDeque<Bytes>,
    /// The connection's task is writing: the group task leaves the sink alone.
    owner: bool,
    end: Option<SinkEnd>,
}

/// Buffers per `writev` (Linux's IOV_MAX is 1024; a frame is a few).
const IOV: usize = 64;

impl Sink {
    /// A sink that starts with its owner writing (what the connection queued before,
    /// then the GOP), attached to its stream's group tasks.
    pub fn attach(
        reader: StreamReader,
        encoder: Box<dyn Encoder>,
        tcp: Option<Arc<OwnedWriteHalf>>,
        bytes_out: super::ByteCounter,
    ) -> Arc<Sink> {
        let stream = reader.stream().clone();
        let sink = Arc::new(Sink {
            inner: Mutex::new(Inner {
                reader,
                encoder,
                pending: VecDeque::new(),
                owner: true,
                end: None,
            }),
            tcp,
            attention: Notify::new(),
            bytes_out,
        });
        sink.attention.notify_one();
        stream.attach(Arc::downgrade(&sink));
        sink
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes written to this reader's connection: by the group task, and by the
    /// owner where it counts into the same `ByteCounter`.
    pub fn bytes_out(&self) -> u64 {
        self.bytes_out.get()
    }

    /// Resolves when the owner must write: see `take`.
    pub async fn attention(&self) {
        self.attention.notified().await
    }

    /// For the owner after `attention`: what to write now (with awaits, then call again),
    /// `Ok(None)` once caught up (the group task writes again), or why the sink ended.
    pub fn take(&self) -> Result<Option<Vec<Bytes>>, SinkEnd> {
        let mut g = self.lock();
        g.drain();
        if !g.pending.is_empty() {
            return Ok(Some(g.pending.drain(..).collect()));
        }
        if let Some(e) = g.end.take() {
            return Err(e);
        }
        g.owner = false;
        Ok(None)
    }

    /// Takes the writes back for good (the connection is ending): the group task no
    /// longer writes, and what it left unwritten (a frame cut short) is returned.
    pub fn stop(&self) -> Vec<Bytes> {
        let mut g = self.lock();
        g.owner = true;
        g.pending.drain(..).collect()
    }

    /// Queues the connection's own bytes (responses, control messages) after what the
    /// reader has pending, and has the owner write them.
    pub fn send_own(&self, b: Bytes) {
        let mut g = self.lock();
        g.pending.push_back(b);
        if !std::mem::replace(&mut g.owner, true) {
            drop(g);
            self.attention.notify_one();
        }
    }

    /// The group task's turn: write what is new without blocking, or hand over.
    pub(super) fn pump(&self) {
        let mut g = self.lock();
        if g.owner {
            return;
        }
        g.drain();
        if g.pending.is_empty() && g.end.is_none() {
            return;
        }
        if let (Some(tcp), None) = (&self.tcp, &g.end) {
            match write_some(tcp, &mut g.pending, &self.bytes_out) {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => g.end = Some(SinkEnd::Write(e)),
            }
        }
        g.owner = true;
        drop(g);
        self.attention.notify_one();
    }
}

impl Inner {
    /// Encodes everything the cursor has into `pending`.
    fn drain(&mut self) {
        if self.end.is_some() {
            return;
        }
        let (encoder, pending) = (&mut self.encoder, &mut self.pending);
        if let Err(e) = self.reader.drain(|it| encoder.encode(&it, pending)) {
            self.end = Some(SinkEnd::Read(e));
        }
    }
}

/// Writes `pending` until it is empty (`true`) or the socket is full (`false`).
fn write_some(
    tcp: &OwnedWriteHalf,
    pending: &mut VecDeque<Bytes>,
    count: &super::ByteCounter,
) -> io::Result<bool> {
    while !pending.is_empty() {
        let mut iov = [IoSlice::new(&[]); IOV];
        let mut n_iov = 0;
        let mut want = 0;
        for b in pending.iter().filter(|b| !b.is_empty()).take(IOV) {
            iov[n_iov] = IoSlice::new(b);
            n_iov += 1;
            want += b.len();
        }
        if n_iov == 0 {
            pending.clear();
            break;
        }
        let n = match send(tcp, &iov[..n_iov]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        };
        count.add(n as u64);
        consume(pending, n);
        if n < want {
            return Ok(false);
        }
    }
    Ok(true)
}

/// One non-blocking `sendmsg`. Not tokio's `try_write_vectored`: `writev` goes through
/// the file layer (position lock, fsnotify) and tokio's readiness check, a tenth of
/// the server's CPU with a thousand readers. A stale "writable" this leaves in tokio
/// costs the owner one failed try before it waits.
#[cfg(target_os = "linux")]
fn send(tcp: &OwnedWriteHalf, iov: &[IoSlice<'_>]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let sock: &tokio::net::TcpStream = tcp.as_ref();
    // SAFETY: an all-zero msghdr is valid (no name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // IoSlice is ABI-compatible with iovec on Unix.
    msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = iov.len() as _;
    // SAFETY: msg points at `iov`, which outlives the call; the fd is open while `tcp` is.
    let n = unsafe {
        libc::sendmsg(
            sock.as_raw_fd(),
            &msg,
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

#[cfg(not(target_os = "linux"))]
fn send(tcp: &OwnedWriteHalf, iov: &[IoSlice<'_>]) -> io::Result<usize> {
    tcp.try_write_vectored(iov)
}

/// Drops the first `n` bytes of `pending`.
fn consume(pending: &mut VecDeque<Bytes>, mut n: usize) {
    while n > 0 {
        let Some(front) = pending.front_mut() else {
            return;
        };
        if front.len() > n {
            front.advance(n);
            return;
        }
        n -= front.len();
        pending.pop_front();
    }
    while pending.front().is_some_and(Bytes::is_empty) {
        pending.pop_front();
    }
}

/// Sinks of one stream that one task pumps in turn.
pub(super) struct Group {
    pub(super) members: Mutex<Vec<Weak<Sink>>>,
    pub(super) wake: Notify,
}

/// Sinks per group task: a frame's writes for 64 readers take well under a
/// millisecond, and groups run on all of the runtime's threads.
pub(super) const GROUP_SIZE: usize = 64;

impl Group {
    pub(super) fn new() -> Arc<Group> {
        Arc::new(Group {
            members: Mutex::new(Vec::with_capacity(GROUP_SIZE)),
            wake: Notify::new(),
        })
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Vec<Weak<Sink>>> {
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Pumps every member each time the stream wakes readers, until the stream is gone.
    pub(super) async fn run(self: Arc<Group>, alive: impl Fn() -> bool) {
        loop {
            self.wake.notified().await;
            // Gone only once every reader (and so every sink) is.
            if !alive() {
                return;
            }
            let mut members = self.lock();
            let mut dead = false;
            for m in members.iter() {
                match m.upgrade() {
                    Some(s) => s.pump(),
                    None => dead = true,
                }
            }
            if dead {
                members.retain(|m| m.strong_count() > 0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{fixtures, Payload, Stream, StreamConfig, Unit};
    use std::time::Duration;
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    /// Sends each unit as its pts (8 bytes) followed by its payload.
    struct Pts;

    impl Encoder for Pts {
        fn encode(&mut self, item: &StreamItem, out: &mut VecDeque<Bytes>) {
            if let StreamItem::Unit(e) = item {
                out.push_back(Bytes::copy_from_slice(&e.unit.pts.to_be_bytes()));
                if let Payload::Nalus(n) = &e.unit.payload {
                    out.extend(n.iter().cloned());
                }
            }
        }
    }

    fn frame(pts: i64, size: usize) -> Unit {
        let mut nal = vec![0u8; size.max(1)];
        nal[0] = if pts == 0 { 0x65 } else { 0x41 };
        Unit {
            track: 0,
            pts,
            dts: pts,
            keyframe: pts == 0,
            payload: Payload::Nalus(vec![Bytes::from(nal)]),
        }
    }

    async fn pair() -> (TcpStream, OwnedWriteHalf) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (server, _) = l.accept().await.unwrap();
        let (_rd, wr) = server.into_split();
        (client, wr)
    }

    fn stream() -> Arc<Stream> {
        Stream::new(
            vec![fixtures::h264()],
            StreamConfig {
                queue_size: 64,
                max_payload: 1400,
                merge: Duration::ZERO,
            },
        )
    }

    /// Plays the owner's part until the sink is back to direct writes.
    async fn own(sink: &Sink, wr: &OwnedWriteHalf) {
        while let Some(parts) = sink.take().unwrap() {
            for p in parts {
                let mut p = &p[..];
                while !p.is_empty() {
                    wr.writable().await.unwrap();
                    match wr.try_write(p) {
                        Ok(n) => p = &p[n..],
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        }
    }

    async fn read_pts(c: &mut TcpStream, size: usize) -> i64 {
        let mut head = [0u8; 8];
        let wait = Duration::from_secs(5);
        tokio::time::timeout(wait, c.read_exact(&mut head))
            .await
            .unwrap()
            .unwrap();
        let mut body = vec![0u8; size];
        tokio::time::timeout(wait, c.read_exact(&mut body))
            .await
            .unwrap()
            .unwrap();
        i64::from_be_bytes(head)
    }

    #[tokio::test]
    async fn the_stream_writes_frames_itself_once_the_owner_caught_up() {
        let s = stream();
        s.write(frame(0, 100));
        let (mut client, wr) = pair().await;
        let wr = Arc::new(wr);
        let sink = Sink::attach(
            s.subscribe().unwrap(),
            Box::new(Pts),
            Some(wr.clone()),
            Default::default(),
        );
        sink.send_own(Bytes::from_static(b"hello"));
        // The owner writes the first part: its own bytes, then the GOP.
        sink.attention().await;
        own(&sink, &wr).await;
        let mut hello = [0u8; 5];
        client.read_exact(&mut hello).await.unwrap();
        assert_eq!(&hello, b"hello");
        assert_eq!(read_pts(&mut client, 100).await, 0);
        // From now on the group task writes; the owner is not asked.
        for pts in 1..=20 {
            s.write(frame(pts, 100));
            assert_eq!(read_pts(&mut client, 100).await, pts);
        }
        assert!(sink.bytes_out() >= 20 * 108);
        let asked = tokio::time::timeout(Duration::from_millis(1), sink.attention()).await;
        assert!(asked.is_err(), "the owner was asked to write");
    }

    #[tokio::test]
    async fn a_full_socket_hands_over_to_the_owner_and_the_end_reaches_it() {
        let s = stream();
        let (mut client, wr) = pair().await;
        let wr = Arc::new(wr);
        let sink = Sink::attach(
            s.subscribe().unwrap(),
            Box::new(Pts),
            Some(wr.clone()),
            Default::default(),
        );
        sink.attention().await;
        own(&sink, &wr).await;
        // A client that doesn't read: the kernel buffers fill, then the owner is asked.
        let size = 256 * 1024;
        for pts in 0..40 {
            s.write(frame(pts, size));
        }
        tokio::time::timeout(Duration::from_secs(5), sink.attention())
            .await
            .expect("owner not asked to write to a full socket");
        let reading = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Ok(pts) = tokio::time::timeout(Duration::from_secs(5), async {
                read_pts(&mut client, size).await
            })
            .await
            {
                got.push(pts);
                if pts == 39 {
                    break;
                }
            }
            got
        });
        own(&sink, &wr).await;
        let got = reading.await.unwrap();
        assert_eq!(got, (0..40).collect::<Vec<_>>(), "frames lost or reordered");
        s.close();
        tokio::time::timeout(Duration::from_secs(5), sink.attention())
            .await
            .unwrap();
        assert!(matches!(sink.take(), Err(SinkEnd::Read(ReadEnd::Closed))));
    }

    #[test]
    fn consume_advances_across_buffers() {
        let mut p: VecDeque<Bytes> = [&b"abc"[..], b"de", b"fgh"]
            .into_iter()
            .map(Bytes::from_static)
            .collect();
        consume(&mut p, 4);
        assert_eq!(p, [Bytes::from_static(b"e"), Bytes::from_static(b"fgh")]);
        consume(&mut p, 1);
        assert_eq!(p, [Bytes::from_static(b"fgh")]);
        consume(&mut p, 3);
        assert!(p.is_empty());
    }
}
