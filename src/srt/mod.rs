//! The SRT listener (`srtAddress`, UDP): publishers and readers of MPEG-TS, named by
//! MediaMTX's stream ids, with per-path passphrases (`srtPublishPassphrase`,
//! `srtReadPassphrase`). SRT itself (handshake, encryption, retransmission) is libsrt's,
//! loaded at run time (`ffi`); without it the listener stays off and says why.

mod conn;
mod feed;
pub mod ffi;
pub mod streamid;

use crate::config::Config;
use crate::core::PathManager;
use crate::limits::BurstLog;
use conn::{Pending, Socket};
use ffi::SrtSocket;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use streamid::{Mode, StreamId};
use tokio_util::sync::CancellationToken;

/// A handshake the callback let through but libsrt never completed (a wrong
/// passphrase) is forgotten after this.
const PENDING_FOR: Duration = Duration::from_secs(30);
/// libsrt's `LOG_WARNING`: its warnings and errors reach the log (at debug).
const LOG_WARNING: c_int = 4;
/// `SRT_LOGF_DISABLE_TIME | SRT_LOGF_DISABLE_THREADNAME | SRT_LOGF_DISABLE_EOL`.
const LOG_FLAGS: c_int = 1 | 2 | 8;

pub struct SrtServer {
    /// The bound UDP address; `None` while libsrt is missing.
    pub local_addr: Option<SocketAddr>,
    pub(crate) task: tokio::task::JoinHandle<()>,
}

pub(crate) struct Ctx {
    manager: PathManager,
    shutdown: CancellationToken,
    feeds: feed::Feeds,
    admit: crate::limits::Admit,
    refused: BurstLog,
}

/// Handshakes between the listen callback and `srt_accept`, by new socket.
static PENDING: Mutex<Option<HashMap<SrtSocket, (Pending, Instant)>>> = Mutex::new(None);
/// Open connections' sockets by API entry id, for their statistics.
static CONNS: Mutex<Option<HashMap<u64, SrtSocket>>> = Mutex::new(None);

fn pending() -> MutexGuard<'static, Option<HashMap<SrtSocket, (Pending, Instant)>>> {
    PENDING.lock().unwrap_or_else(|e| e.into_inner())
}

fn conns() -> MutexGuard<'static, Option<HashMap<u64, SrtSocket>>> {
    CONNS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Keeps a connection's socket findable by its API entry while it lives.
pub(crate) struct Listed(u64);

impl Drop for Listed {
    fn drop(&mut self) {
        if let Some(m) = conns().as_mut() {
            m.remove(&self.0);
        }
    }
}

impl Ctx {
    fn list(&self, entry: u64, sock: SrtSocket) -> Listed {
        conns().get_or_insert_with(HashMap::new).insert(entry, sock);
        Listed(entry)
    }
}

/// SRT statistics of the connection behind API entry `id`.
pub fn stats(id: u64) -> Option<ffi::Stats> {
    let sock = *conns().as_ref()?.get(&id)?;
    ffi::srt().ok()?.stats(sock)
}

impl SrtServer {
    pub async fn start(
        config: &Config,
        manager: PathManager,
        shutdown: CancellationToken,
        stop: CancellationToken,
    ) -> Result<SrtServer, crate::server::ListenError> {
        let addr = config.srt_address.0;
        let srt = match ffi::srt() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("SRT listener off: {e}");
                let task = tokio::spawn(async move { stop.cancelled().await });
                return Ok(SrtServer {
                    local_addr: None,
                    task,
                });
            }
        };
        install_log_handler(srt);
        let listen_err = |what: String| crate::server::ListenError {
            what: "srt",
            addr,
            source: std::io::Error::other(what),
        };
        // SAFETY: creates a socket we own from here on.
        let lsn = unsafe { (srt.create_socket)() };
        if lsn == ffi::INVALID {
            return Err(listen_err(srt.last_error().1));
        }
        let lsn = Socket { srt, id: lsn };
        if config.udp_read_buffer_size > 0 {
            srt.set_int(
                lsn.id,
                ffi::opt::UDP_RCVBUF,
                config.udp_read_buffer_size as i32,
            );
        }
        let (sa, len) = ffi::sockaddr(addr);
        // SAFETY: `sa` holds a valid address of `len` bytes.
        if unsafe { (srt.bind)(lsn.id, (&sa as *const libc::sockaddr_storage).cast(), len) } != 0 {
            let (_, text) = srt.last_error();
            return Err(crate::server::ListenError {
                what: "srt",
                addr,
                source: std::io::Error::new(std::io::ErrorKind::AddrInUse, text),
            });
        }
        let ctx = Arc::new(Ctx {
            admit: manager.admission("srt"),
            manager,
            shutdown,
            feeds: feed::Feeds::default(),
            refused: BurstLog::new(),
        });
        // libsrt may call the callback until the listener is gone, and gives no point
        // after which it can't: each listener start leaks one `Ctx` reference.
        let opaque = Arc::into_raw(ctx.clone()) as *mut c_void;
        // SAFETY: `on_listen` has the callback's prototype and `opaque` stays valid.
        let ok = unsafe {
            (srt.listen_callback)(lsn.id, on_listen, opaque) == 0 && (srt.listen)(lsn.id, 64) == 0
        };
        if !ok {
            return Err(listen_err(srt.last_error().1));
        }
        let local_addr = local_addr(srt, lsn.id).unwrap_or(addr);
        tracing::info!("SRT listener on {local_addr} (libsrt {})", srt.version());
        let stopping = Arc::new(AtomicBool::new(false));
        let accept = {
            let (ctx, stopping, rt) = (
                ctx.clone(),
                stopping.clone(),
                tokio::runtime::Handle::current(),
            );
            let lsn_id = lsn.id;
            std::thread::Builder::new()
                .name("srt-accept".into())
                .spawn(move || accept_loop(srt, lsn_id, ctx, stopping, rt))
                .map_err(|e| listen_err(e.to_string()))?
        };
        let task = tokio::spawn(async move {
            stop.cancelled().await;
            stopping.store(true, Ordering::SeqCst);
            // Closing the listener wakes the accept loop.
            drop(lsn);
            let _ = tokio::task::spawn_blocking(move || accept.join()).await;
        });
        Ok(SrtServer {
            local_addr: Some(local_addr),
            task,
        })
    }
}

fn local_addr(srt: &ffi::Srt, sock: SrtSocket) -> Option<SocketAddr> {
    // SAFETY: sockaddr_storage is plain old data.
    let mut sa: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as c_int;
    // SAFETY: `sa` has room for `len` bytes.
    let r = unsafe {
        (srt.getsockname)(
            sock,
            (&mut sa as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return None;
    }
    // SAFETY: libsrt wrote an IPv4 or IPv6 address.
    unsafe { ffi::socket_addr((&sa as *const libc::sockaddr_storage).cast()) }
}

fn accept_loop(
    srt: &'static ffi::Srt,
    lsn: SrtSocket,
    ctx: Arc<Ctx>,
    stopping: Arc<AtomicBool>,
    rt: tokio::runtime::Handle,
) {
    let failures = BurstLog::new();
    loop {
        // SAFETY: null address arguments are allowed.
        let ns = unsafe { (srt.accept)(lsn, std::ptr::null_mut(), std::ptr::null_mut()) };
        if stopping.load(Ordering::SeqCst) {
            if ns != ffi::INVALID {
                drop(Socket { srt, id: ns });
            }
            return;
        }
        if ns == ffi::INVALID {
            if let Some(n) = failures.hit() {
                tracing::warn!("SRT accept failed ({n} times): {}", srt.last_error().1);
            }
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        let sock = Socket { srt, id: ns };
        let p = pending().as_mut().and_then(|m| m.remove(&ns));
        match p {
            Some((p, _)) => {
                rt.spawn(conn::run(ctx.clone(), sock, p));
            }
            // Every handshake passes the callback first; drop the socket if not.
            None => drop(sock),
        }
    }
}

/// libsrt's listen callback: runs on libsrt's receiving thread for each handshake,
/// before the answer goes out. Reads the stream id, counts the connection against
/// the limits, and sets the path's passphrase so that libsrt checks it.
unsafe extern "C" fn on_listen(
    opaque: *mut c_void,
    ns: SrtSocket,
    hs_version: c_int,
    peer: *const libc::sockaddr,
    stream_id: *const c_char,
) -> c_int {
    let run = || {
        // SAFETY: `opaque` is the `Ctx` leaked for this listener; the others are
        // libsrt's, valid during the call.
        let ctx = unsafe { &*(opaque as *const Ctx) };
        let peer = unsafe { ffi::socket_addr(peer) };
        let sid = (!stream_id.is_null()).then(|| {
            unsafe { CStr::from_ptr(stream_id) }
                .to_string_lossy()
                .into_owned()
        });
        decide(ctx, ns, hs_version, peer, sid)
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(Ok(())) => 0,
        Ok(Err(code)) => {
            if let Ok(srt) = ffi::srt() {
                // SAFETY: `ns` is the socket libsrt asked about.
                unsafe { (srt.setrejectreason)(ns, code) };
            }
            -1
        }
        Err(_) => -1,
    }
}

fn decide(
    ctx: &Ctx,
    ns: SrtSocket,
    hs_version: c_int,
    peer: Option<SocketAddr>,
    sid: Option<String>,
) -> Result<(), c_int> {
    let srt = ffi::srt().map_err(|_| ffi::rejx::BAD_REQUEST)?;
    let Some(peer) = peer else {
        return Err(ffi::rejx::BAD_REQUEST);
    };
    let refuse = |code: c_int, why: String| {
        if let Some(n) = ctx.refused.hit() {
            tracing::warn!(%peer, "SRT connection refused: {why}{}", since(n));
        }
        code
    };
    if hs_version < 5 {
        return Err(refuse(
            ffi::rejx::BAD_REQUEST,
            "an SRT 1.2 caller (HSv4) sends no stream id".into(),
        ));
    }
    let id = StreamId::parse(sid.as_deref().unwrap_or_default())
        .map_err(|e| refuse(ffi::rejx::BAD_REQUEST, e.to_string()))?;
    let config = ctx.manager.config();
    let Some(found) = config.find_path(&id.path) else {
        return Err(refuse(
            ffi::rejx::NOTFOUND,
            format!(
                "no path '{}' in the config",
                id.path.chars().take(64).collect::<String>()
            ),
        ));
    };
    let pass = match id.mode {
        Mode::Publish => &found.conf.srt_publish_passphrase,
        Mode::Read => &found.conf.srt_read_passphrase,
    };
    if !pass.is_empty() && !srt.set_str(ns, ffi::opt::PASSPHRASE, pass) {
        return Err(refuse(
            ffi::rejx::BAD_REQUEST,
            "libsrt took no passphrase".into(),
        ));
    }
    let Some(admitted) = (ctx.admit)(peer.ip()) else {
        return Err(ffi::rejx::OVERLOAD);
    };
    let now = Instant::now();
    let mut p = pending();
    let map = p.get_or_insert_with(HashMap::new);
    map.retain(|_, (_, t)| now.duration_since(*t) < PENDING_FOR);
    map.insert(ns, (Pending { id, peer, admitted }, now));
    Ok(())
}

/// The tail of a per-burst log line: how many it stands for.
fn since(n: u64) -> String {
    if n > 1 {
        format!(" ({n} refusals since the last report)")
    } else {
        String::new()
    }
}

/// libsrt's log lines, and a readable refusal for a handshake that failed on the
/// passphrase (libsrt decides that after the callback, and says so only in its log).
fn install_log_handler(srt: &ffi::Srt) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: the handler has libsrt's prototype and needs no opaque pointer.
        unsafe {
            (srt.setloglevel)(LOG_WARNING);
            // Our log has its own time; libsrt's line ends are trimmed.
            (srt.setlogflags)(LOG_FLAGS);
            (srt.setloghandler)(std::ptr::null_mut(), on_log);
        }
    });
}

unsafe extern "C" fn on_log(
    _opaque: *mut c_void,
    _level: c_int,
    _file: *const c_char,
    _line: c_int,
    area: *const c_char,
    message: *const c_char,
) {
    let text = |p: *const c_char| {
        if p.is_null() {
            String::new()
        } else {
            // SAFETY: libsrt passes C strings valid during the call.
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }
    };
    let (area, message) = (text(area), text(message));
    let _ = std::panic::catch_unwind(|| {
        tracing::debug!(target: "mediarouter::srt::libsrt", "{area}: {}", message.trim_end());
        if let Some((sock, why)) = rejected(&message) {
            let p = pending().as_mut().and_then(|m| m.remove(&sock));
            if let Some((p, _)) = p {
                let what = match p.id.mode {
                    Mode::Publish => "publish",
                    Mode::Read => "read",
                };
                if let Some(n) = refusal_burst(p.peer.ip(), what, why) {
                    tracing::warn!(peer = %p.peer, path = %p.id.path, "SRT {what} refused: {why}{}", since(n));
                }
            }
        }
    });
}

/// Handshake refusals are logged once per burst for each client address, action and
/// reason: a flood from one address is one line, and every distinct mistake is seen.
fn refusal_burst(ip: std::net::IpAddr, what: &'static str, why: &'static str) -> Option<u64> {
    static SEEN: crate::limits::KeyedBurstLog<(std::net::IpAddr, &str, &str)> =
        crate::limits::KeyedBurstLog::new();
    SEEN.hit((ip, what, why))
}

/// `@<socket>:newConnection: connection rejected due to: … ERROR:<REASON>` → the
/// socket and why, in words (the passphrase itself is never in libsrt's log).
fn rejected(message: &str) -> Option<(SrtSocket, &'static str)> {
    // libsrt may put its own time and thread header before the `@`.
    let at = message.find("connection rejected")?;
    let before = &message[..at];
    let id = &before[before.rfind('@')? + 1..];
    let sock: SrtSocket = id.split(':').next()?.parse().ok()?;
    let rest = &message[at..];
    let why = if rest.contains("BADSECRET") {
        "wrong passphrase"
    } else if rest.contains("UNSECURE") {
        "passphrase missing (or sent to a path without one)"
    } else {
        "handshake refused"
    };
    Some((sock, why))
}

#[cfg(test)]
mod tests {
    #[test]
    fn refusals_read_from_libsrt_log_lines() {
        let bad = "@672896594:newConnection: connection rejected due to: INTERNAL REJECTION - ERROR:BADSECRET";
        assert_eq!(super::rejected(bad), Some((672896594, "wrong passphrase")));
        let unsecure = "20:09:46.515776/SRT:RcvQ:w1!W:SRT.cn: @5:newConnection: connection rejected due to: INTERNAL REJECTION - ERROR:UNSECURE\n";
        assert_eq!(
            super::rejected(unsecure),
            Some((5, "passphrase missing (or sent to a path without one)"))
        );
        assert_eq!(
            super::rejected("processConnectRequest: rsp(REJECT): 1010"),
            None
        );
    }
}
