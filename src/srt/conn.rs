//! One accepted SRT connection: the auth check, then a publisher (TS in, units out) or
//! a reader (the stream's shared TS feed out). libsrt's calls block, so each
//! connection's loop runs on a thread of its own with short timeouts, to notice kicks.

use super::feed::Take;
use super::ffi::{self, SrtSocket};
use super::streamid::{Mode, StreamId};
use super::Ctx;
use crate::core::{Client, Peer, Publisher, Reader, SessionGuard, SessionKind, SessionState};
use crate::format::mpegts::ingest::TsIngest;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a blocked loop looks up to see whether it was kicked.
const TICK: Duration = Duration::from_millis(200);

/// An accepted socket; closed when dropped.
pub(super) struct Socket {
    pub srt: &'static ffi::Srt,
    pub id: SrtSocket,
}

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: the socket is ours; nothing uses its number after this.
        unsafe { (self.srt.close)(self.id) };
    }
}

/// What the listen callback learnt about a connection before libsrt accepted it.
pub(super) struct Pending {
    pub id: StreamId,
    pub peer: SocketAddr,
    pub admitted: crate::limits::Admitted,
}

pub(super) async fn run(ctx: Arc<Ctx>, sock: Socket, p: Pending) {
    let Pending { id, peer, admitted } = p;
    let manager = ctx.manager.clone();
    let entry = manager.sessions().open(SessionKind::SrtConn, peer);
    entry.update(|d| {
        d.path = id.path.clone();
        d.query = crate::core::without_credentials(&id.query);
        d.user = id.user.clone();
    });
    let _listed = ctx.list(entry.id, sock.id);
    let what = match id.mode {
        Mode::Publish => "publish",
        Mode::Read => "read",
    };
    if let Err(why) = authenticate(&ctx, &id, peer, &entry).await {
        tracing::info!(%peer, path = %id.path, "SRT {what} refused: {why}");
        return;
    }
    let client = Client::new(Peer::SrtConn, peer, &id.query).in_session(&entry);
    let conf = manager.config();
    let timeouts = (conf.read_timeout.0, conf.write_timeout.0);
    let job: Box<dyn FnOnce() -> String + Send> = match id.mode {
        Mode::Publish => match manager.add_publisher(&id.path, client) {
            Ok(publisher) => {
                let cfg = manager.stream_config();
                let ctx = ctx.clone();
                Box::new(move || publish(&ctx, &sock, &entry, publisher, cfg, timeouts.0))
            }
            Err(e) => {
                tracing::info!(%peer, path = %id.path, "SRT publish refused: {e}");
                return;
            }
        },
        Mode::Read => {
            manager.demand_with(&id.path, &id.query).await;
            match manager.add_reader(&id.path, client) {
                Ok(reader) => {
                    let ctx = ctx.clone();
                    let feed = ctx.feeds.get(reader.stream());
                    Box::new(move || read(&ctx, &sock, &entry, reader, feed, timeouts.1))
                }
                Err(e) => {
                    tracing::info!(%peer, path = %id.path, "SRT read refused: {e}");
                    return;
                }
            }
        }
    };
    let path = id.path.clone();
    // A thread of its own, not tokio's blocking pool: connections last, and the pool's
    // size would cap how many there can be.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let rt = tokio::runtime::Handle::current();
    let spawned = std::thread::Builder::new()
        .name("srt-conn".into())
        .spawn(move || {
            // Starting a stream starts its path's tasks (hooks, muxers) on the runtime.
            let _rt = rt.enter();
            let _admitted = admitted;
            let _ = tx.send(job());
        });
    let why = match spawned {
        Ok(_) => rx
            .await
            .unwrap_or_else(|_| "the connection's thread failed".into()),
        Err(e) => format!("no thread for the connection: {e}"),
    };
    tracing::info!(%peer, %path, "SRT {what} ended: {why}");
}

async fn authenticate(
    ctx: &Ctx,
    id: &StreamId,
    peer: SocketAddr,
    entry: &SessionGuard,
) -> Result<(), String> {
    let creds = match id.credentials() {
        crate::auth::Credentials::None => crate::auth::query_credentials(&id.query),
        c => c,
    };
    let action = match id.mode {
        Mode::Publish => crate::auth::Action::Publish,
        Mode::Read => crate::auth::Action::Read,
    };
    let conn_id = entry.id.to_string();
    let req = crate::auth::Request {
        ip: peer.ip(),
        action,
        path: &id.path,
        creds: &creds,
        method: "",
        protocol: "srt",
        query: &id.query,
        id: Some(&conn_id),
        user_agent: "",
    };
    match ctx.manager.authenticate(&req).await {
        Ok(user) => {
            if let Some(u) = user {
                entry.update(|d| d.user = u);
            }
            Ok(())
        }
        Err(denied) => {
            // Slows guessing down, as the other protocols do; the socket stays open
            // meanwhile so the caller can't tell a wrong password quickly.
            if denied != crate::auth::Denied::AskCredentials {
                tokio::time::sleep(crate::auth::failures::Failures::delay()).await;
            }
            Err("authentication failed".into())
        }
    }
}

/// Why a loop should stop now, if it should.
fn stop_reason(ctx: &Ctx, entry: &SessionGuard) -> Option<String> {
    if entry.kicked().is_cancelled() {
        return Some(entry.kicked().reason().to_string());
    }
    ctx.shutdown
        .is_cancelled()
        .then(|| "the server is stopping".to_string())
}

/// TS datagrams → units, until the caller leaves, goes quiet for `readTimeout`, sends
/// what isn't TS, or is replaced or kicked.
fn publish(
    ctx: &Ctx,
    sock: &Socket,
    entry: &SessionGuard,
    publisher: Publisher,
    cfg: crate::core::StreamConfig,
    read_timeout: Duration,
) -> String {
    let srt = sock.srt;
    srt.set_int(sock.id, ffi::opt::RCVTIMEO, TICK.as_millis() as i32);
    entry.update(|d| d.state = SessionState::Publish);
    let mut ingest = TsIngest::default();
    let (mut buf, mut units) = (vec![0u8; 1500], Vec::new());
    let mut stream: Option<Arc<crate::core::Stream>> = None;
    let mut last = Instant::now();
    loop {
        if let Some(why) = stop_reason(ctx, entry) {
            return why;
        }
        if publisher.cancelled().is_cancelled() {
            return publisher.cancelled().reason().to_string();
        }
        // SAFETY: `buf` has room for the length given.
        let n = unsafe { (srt.recvmsg)(sock.id, buf.as_mut_ptr().cast(), buf.len() as i32) };
        if n <= 0 {
            let (code, text) = srt.last_error();
            if n == 0 || code == ffi::err::ASYNC_RCV || code == ffi::err::TIMEOUT {
                if last.elapsed() > read_timeout {
                    return format!("no data for {read_timeout:?} (readTimeout)");
                }
                continue;
            }
            return closed(code, text);
        }
        last = Instant::now();
        let data = &buf[..n as usize];
        entry.bytes_in.add(data.len() as u64);
        match ingest.push(data, &mut units) {
            Ok(Some(tracks)) => {
                let names: Vec<&str> = tracks.iter().map(|t| t.codec.name()).collect();
                tracing::info!(
                    peer = %entry.remote,
                    path = %entry.detail().path,
                    "SRT publisher started ({})",
                    names.join(", ")
                );
                let s = crate::core::Stream::new(tracks, cfg);
                if let Err(e) = publisher.start(s.clone()) {
                    return e.to_string();
                }
                stream = Some(s);
            }
            Ok(None) => {}
            Err(e) => return format!("bad MPEG-TS from the publisher: {e}"),
        }
        if let Some(s) = &stream {
            for u in units.drain(..) {
                s.write(u);
            }
        }
    }
}

/// Why a connection ended, from libsrt's error.
fn closed(code: i32, text: String) -> String {
    match code {
        ffi::err::CONNLOST | ffi::err::NOCONN => {
            "the caller closed the connection or stopped answering".into()
        }
        _ => text,
    }
}

/// The stream's TS feed → the caller, until it leaves, can't keep up for
/// `writeTimeout`, the stream ends, or it is kicked.
fn read(
    ctx: &Ctx,
    sock: &Socket,
    entry: &SessionGuard,
    reader: Reader,
    feed: Arc<super::feed::Feed>,
    write_timeout: Duration,
) -> String {
    let srt = sock.srt;
    srt.set_int(
        sock.id,
        ffi::opt::SNDTIMEO,
        write_timeout.as_millis().min(60_000) as i32,
    );
    // Held while reading: the path counts the reader.
    let _reader = reader;
    entry.update(|d| d.state = SessionState::Read);
    tracing::info!(peer = %entry.remote, path = %entry.detail().path, "SRT reader started");
    let (mut cursor, mut skips) = (feed.start(), 0u64);
    loop {
        if let Some(why) = stop_reason(ctx, entry) {
            return why;
        }
        match feed.take(&mut cursor, &mut skips, TICK) {
            Take::Idle => continue,
            Take::Ended(why) => return why,
            Take::Chunks(chunks) => {
                for c in chunks {
                    // SAFETY: `c` outlives the call; a null control block means defaults.
                    let n = unsafe {
                        (srt.sendmsg2)(
                            sock.id,
                            c.as_ptr().cast(),
                            c.len() as i32,
                            std::ptr::null_mut(),
                        )
                    };
                    if n < 0 {
                        let (code, text) = srt.last_error();
                        if code == ffi::err::ASYNC_SND || code == ffi::err::TIMEOUT {
                            return format!("could not send for {write_timeout:?} (writeTimeout)");
                        }
                        return closed(code, text);
                    }
                    entry.bytes_out.add(c.len() as u64);
                }
            }
        }
    }
}
