//! The part of libsrt's C API (1.5, `srt/srt.h`) the SRT listener uses, loaded at run
//! time with `libloading`. Written by hand: no crate binds the system's libsrt 1.5
//! (`libsrt-sys` builds its own 1.4 copy), and loading it lazily keeps the build free
//! of SRT headers and lets a host without libsrt run with the SRT listener off.

use libloading::Library;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::OnceLock;

pub type SrtSocket = c_int;
pub const INVALID: SrtSocket = -1;

/// `SRT_SOCKOPT` values used here.
pub mod opt {
    pub const SNDSYN: i32 = 1;
    pub const RCVSYN: i32 = 2;
    pub const SNDTIMEO: i32 = 13;
    pub const RCVTIMEO: i32 = 14;
    pub const PASSPHRASE: i32 = 26;
    pub const PEERIDLETIMEO: i32 = 55;
    pub const PAYLOADSIZE: i32 = 49;
    pub const STREAMID: i32 = 46;
    pub const UDP_RCVBUF: i32 = 9;
}

/// `SRT_ERRNO` values the loops tell apart.
pub mod err {
    /// Nothing to read before `SRTO_RCVTIMEO` ran out.
    pub const ASYNC_RCV: i32 = 6002;
    /// No room to send before `SRTO_SNDTIMEO` ran out.
    pub const ASYNC_SND: i32 = 6001;
    pub const TIMEOUT: i32 = 6003;
    /// The peer closed the connection, or stopped answering.
    pub const CONNLOST: i32 = 2001;
    pub const NOCONN: i32 = 2002;
}

/// `SRT_REJX_*` (access control) codes a listener answers with.
pub mod rejx {
    pub const BAD_REQUEST: i32 = 1400;
    pub const UNAUTHORIZED: i32 = 1401;
    pub const OVERLOAD: i32 = 1402;
    pub const NOTFOUND: i32 = 1404;
}

/// `SRT_TRACEBSTATS` (`CBytePerfMon`) exactly as libsrt 1.5 lays it out.
#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct Stats {
    pub ms_timestamp: i64,
    pub pkt_sent_total: i64,
    pub pkt_recv_total: i64,
    pub pkt_snd_loss_total: c_int,
    pub pkt_rcv_loss_total: c_int,
    pub pkt_retrans_total: c_int,
    pub pkt_sent_ack_total: c_int,
    pub pkt_recv_ack_total: c_int,
    pub pkt_sent_nak_total: c_int,
    pub pkt_recv_nak_total: c_int,
    pub us_snd_duration_total: i64,
    pub pkt_snd_drop_total: c_int,
    pub pkt_rcv_drop_total: c_int,
    pub pkt_rcv_undecrypt_total: c_int,
    pub byte_sent_total: u64,
    pub byte_recv_total: u64,
    pub byte_rcv_loss_total: u64,
    pub byte_retrans_total: u64,
    pub byte_snd_drop_total: u64,
    pub byte_rcv_drop_total: u64,
    pub byte_rcv_undecrypt_total: u64,
    pub pkt_sent: i64,
    pub pkt_recv: i64,
    pub pkt_snd_loss: c_int,
    pub pkt_rcv_loss: c_int,
    pub pkt_retrans: c_int,
    pub pkt_rcv_retrans: c_int,
    pub pkt_sent_ack: c_int,
    pub pkt_recv_ack: c_int,
    pub pkt_sent_nak: c_int,
    pub pkt_recv_nak: c_int,
    pub mbps_send_rate: f64,
    pub mbps_recv_rate: f64,
    pub us_snd_duration: i64,
    pub pkt_reorder_distance: c_int,
    pub pkt_rcv_avg_belated_time: f64,
    pub pkt_rcv_belated: i64,
    pub pkt_snd_drop: c_int,
    pub pkt_rcv_drop: c_int,
    pub pkt_rcv_undecrypt: c_int,
    pub byte_sent: u64,
    pub byte_recv: u64,
    pub byte_rcv_loss: u64,
    pub byte_retrans: u64,
    pub byte_snd_drop: u64,
    pub byte_rcv_drop: u64,
    pub byte_rcv_undecrypt: u64,
    pub us_pkt_snd_period: f64,
    pub pkt_flow_window: c_int,
    pub pkt_congestion_window: c_int,
    pub pkt_flight_size: c_int,
    pub ms_rtt: f64,
    pub mbps_bandwidth: f64,
    pub byte_avail_snd_buf: c_int,
    pub byte_avail_rcv_buf: c_int,
    pub mbps_max_bw: f64,
    pub byte_mss: c_int,
    pub pkt_snd_buf: c_int,
    pub byte_snd_buf: c_int,
    pub ms_snd_buf: c_int,
    pub ms_snd_tsbpd_delay: c_int,
    pub pkt_rcv_buf: c_int,
    pub byte_rcv_buf: c_int,
    pub ms_rcv_buf: c_int,
    pub ms_rcv_tsbpd_delay: c_int,
    pub pkt_snd_filter_extra_total: c_int,
    pub pkt_rcv_filter_extra_total: c_int,
    pub pkt_rcv_filter_supply_total: c_int,
    pub pkt_rcv_filter_loss_total: c_int,
    pub pkt_snd_filter_extra: c_int,
    pub pkt_rcv_filter_extra: c_int,
    pub pkt_rcv_filter_supply: c_int,
    pub pkt_rcv_filter_loss: c_int,
    pub pkt_reorder_tolerance: c_int,
    pub pkt_sent_unique_total: i64,
    pub pkt_recv_unique_total: i64,
    pub byte_sent_unique_total: u64,
    pub byte_recv_unique_total: u64,
    pub pkt_sent_unique: i64,
    pub pkt_recv_unique: i64,
    pub byte_sent_unique: u64,
    pub byte_recv_unique: u64,
}

pub type ListenCallback = unsafe extern "C" fn(
    opaque: *mut c_void,
    ns: SrtSocket,
    hs_version: c_int,
    peer: *const libc::sockaddr,
    stream_id: *const c_char,
) -> c_int;

pub type LogHandler = unsafe extern "C" fn(
    opaque: *mut c_void,
    level: c_int,
    file: *const c_char,
    line: c_int,
    area: *const c_char,
    message: *const c_char,
);

/// libsrt's entry points. The `Library` stays loaded for the process's life (the
/// table is a `static`), so the copied function pointers stay valid.
pub struct Srt {
    _lib: Library,
    pub startup: unsafe extern "C" fn() -> c_int,
    pub create_socket: unsafe extern "C" fn() -> SrtSocket,
    pub bind: unsafe extern "C" fn(SrtSocket, *const libc::sockaddr, c_int) -> c_int,
    pub listen: unsafe extern "C" fn(SrtSocket, c_int) -> c_int,
    pub accept: unsafe extern "C" fn(SrtSocket, *mut libc::sockaddr, *mut c_int) -> SrtSocket,
    pub listen_callback: unsafe extern "C" fn(SrtSocket, ListenCallback, *mut c_void) -> c_int,
    pub close: unsafe extern "C" fn(SrtSocket) -> c_int,
    pub getsockname: unsafe extern "C" fn(SrtSocket, *mut libc::sockaddr, *mut c_int) -> c_int,
    pub setsockflag: unsafe extern "C" fn(SrtSocket, c_int, *const c_void, c_int) -> c_int,
    pub getsockflag: unsafe extern "C" fn(SrtSocket, c_int, *mut c_void, *mut c_int) -> c_int,
    pub sendmsg2: unsafe extern "C" fn(SrtSocket, *const c_char, c_int, *mut c_void) -> c_int,
    pub recvmsg: unsafe extern "C" fn(SrtSocket, *mut c_char, c_int) -> c_int,
    pub getlasterror: unsafe extern "C" fn(*mut c_int) -> c_int,
    pub getlasterror_str: unsafe extern "C" fn() -> *const c_char,
    pub bstats: unsafe extern "C" fn(SrtSocket, *mut Stats, c_int) -> c_int,
    pub setrejectreason: unsafe extern "C" fn(SrtSocket, c_int) -> c_int,
    pub setloglevel: unsafe extern "C" fn(c_int),
    pub setloghandler: unsafe extern "C" fn(*mut c_void, LogHandler),
    pub setlogflags: unsafe extern "C" fn(c_int),
    pub getversion: unsafe extern "C" fn() -> u32,
}

/// Where distributions put libsrt 1.5: Debian splits it by TLS library.
const NAMES: &[&str] = &[
    "libsrt-openssl.so.1.5",
    "libsrt-gnutls.so.1.5",
    "libsrt.so.1.5",
    "libsrt.1.5.dylib",
];

static SRT: OnceLock<Result<Srt, String>> = OnceLock::new();

/// libsrt, loaded (and started) on first use.
pub fn srt() -> Result<&'static Srt, &'static str> {
    SRT.get_or_init(load).as_ref().map_err(String::as_str)
}

fn load() -> Result<Srt, String> {
    let mut errors = Vec::new();
    // `MEDIAROUTER_LIBSRT` names the library to load instead (a build of one's own).
    let chosen = std::env::var("MEDIAROUTER_LIBSRT").ok();
    let names: Vec<&str> = match &chosen {
        Some(n) => vec![n.as_str()],
        None => NAMES.to_vec(),
    };
    for name in names {
        // SAFETY: loading libsrt runs its initializers, which only set up its globals.
        match unsafe { Library::new(name) } {
            Ok(lib) => return bind(lib).map_err(|e| format!("{name}: {e}")),
            Err(e) => errors.push(e.to_string()),
        }
    }
    Err(format!(
        "libsrt 1.5 not found (install libsrt1.5-openssl or libsrt1.5-gnutls): {}",
        errors.first().cloned().unwrap_or_default()
    ))
}

fn bind(lib: Library) -> Result<Srt, libloading::Error> {
    macro_rules! sym {
        ($name:literal) => {
            // SAFETY: the field's type is the C prototype of this symbol in srt.h 1.5.
            unsafe { *lib.get(concat!($name, "\0").as_bytes())? }
        };
    }
    let s = Srt {
        startup: sym!("srt_startup"),
        create_socket: sym!("srt_create_socket"),
        bind: sym!("srt_bind"),
        listen: sym!("srt_listen"),
        accept: sym!("srt_accept"),
        listen_callback: sym!("srt_listen_callback"),
        close: sym!("srt_close"),
        getsockname: sym!("srt_getsockname"),
        setsockflag: sym!("srt_setsockflag"),
        getsockflag: sym!("srt_getsockflag"),
        sendmsg2: sym!("srt_sendmsg2"),
        recvmsg: sym!("srt_recvmsg"),
        getlasterror: sym!("srt_getlasterror"),
        getlasterror_str: sym!("srt_getlasterror_str"),
        bstats: sym!("srt_bstats"),
        setrejectreason: sym!("srt_setrejectreason"),
        setloglevel: sym!("srt_setloglevel"),
        setloghandler: sym!("srt_setloghandler"),
        setlogflags: sym!("srt_setlogflags"),
        getversion: sym!("srt_getversion"),
        _lib: lib,
    };
    // SAFETY: srt_startup may be called more than once; it counts.
    unsafe { (s.startup)() };
    Ok(s)
}

impl Srt {
    /// The calling thread's last error: (code, text with the system's error, if any).
    pub fn last_error(&self) -> (i32, String) {
        let mut errno: c_int = 0;
        // SAFETY: both read libsrt's thread-local error; the text is a C string it owns.
        let (code, text) = unsafe {
            let code = (self.getlasterror)(&mut errno);
            let text = (self.getlasterror_str)();
            let text = if text.is_null() {
                String::new()
            } else {
                CStr::from_ptr(text).to_string_lossy().into_owned()
            };
            (code, text)
        };
        match errno {
            0 => (code, text),
            e => (
                code,
                format!("{text}: {}", std::io::Error::from_raw_os_error(e)),
            ),
        }
    }

    pub fn set_int(&self, s: SrtSocket, opt: i32, v: i32) -> bool {
        // SAFETY: `v` outlives the call; libsrt copies int options.
        unsafe { (self.setsockflag)(s, opt, (&v as *const i32).cast(), 4) == 0 }
    }

    pub fn set_bool(&self, s: SrtSocket, opt: i32, v: bool) -> bool {
        let v = v as c_int;
        // SAFETY: as for `set_int`; boolean options take an int-sized value.
        unsafe { (self.setsockflag)(s, opt, (&v as *const c_int).cast(), 4) == 0 }
    }

    pub fn set_str(&self, s: SrtSocket, opt: i32, v: &str) -> bool {
        let Ok(len) = c_int::try_from(v.len()) else {
            return false;
        };
        // SAFETY: libsrt copies `len` bytes of string options.
        unsafe { (self.setsockflag)(s, opt, v.as_ptr().cast(), len) == 0 }
    }

    /// Statistics since the connection began (the interval counters are not reset).
    pub fn stats(&self, s: SrtSocket) -> Option<Stats> {
        let mut st = Stats::default();
        // SAFETY: `st` has the layout of SRT_TRACEBSTATS.
        (unsafe { (self.bstats)(s, &mut st, 0) } == 0).then_some(st)
    }

    pub fn version(&self) -> String {
        // SAFETY: no arguments.
        let v = unsafe { (self.getversion)() };
        format!("{}.{}.{}", v >> 16, (v >> 8) & 0xff, v & 0xff)
    }
}

/// A socket address in the form `srt_bind` takes.
pub fn sockaddr(addr: std::net::SocketAddr) -> (libc::sockaddr_storage, c_int) {
    let sock = socket2::SockAddr::from(addr);
    // SAFETY: sockaddr_storage is plain old data; `len` bytes of it are written.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = sock.len() as usize;
    // SAFETY: `sock` holds `len` valid bytes, and `storage` has room for any address.
    unsafe {
        std::ptr::copy_nonoverlapping(
            sock.as_ptr().cast::<u8>(),
            (&mut storage as *mut libc::sockaddr_storage).cast::<u8>(),
            len,
        );
    }
    (storage, len as c_int)
}

/// A socket address libsrt handed over (a peer in the listen callback).
///
/// # Safety
/// `p` must be null or point to a valid `sockaddr_in` or `sockaddr_in6`.
pub unsafe fn socket_addr(p: *const libc::sockaddr) -> Option<std::net::SocketAddr> {
    if p.is_null() {
        return None;
    }
    match i32::from((*p).sa_family) {
        libc::AF_INET => {
            let a = &*p.cast::<libc::sockaddr_in>();
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some((ip, u16::from_be(a.sin_port)).into())
        }
        libc::AF_INET6 => {
            let a = &*p.cast::<libc::sockaddr_in6>();
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some((ip, u16::from_be(a.sin6_port)).into())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_layout_matches_libsrt_1_5() {
        // sizeof and offsetof of SRT_TRACEBSTATS, from a C program built against
        // Debian's libsrt 1.5.1 headers on x86-64 Linux.
        if cfg!(all(target_arch = "x86_64", target_os = "linux")) {
            assert_eq!(std::mem::size_of::<Stats>(), 496);
            assert_eq!(std::mem::offset_of!(Stats, pkt_rcv_retrans), 164);
            assert_eq!(std::mem::offset_of!(Stats, ms_rtt), 328);
            assert_eq!(std::mem::offset_of!(Stats, pkt_recv_unique_total), 440);
        }
    }

    #[test]
    fn addresses_round_trip() {
        for a in ["127.0.0.1:8890", "[::1]:9000"] {
            let addr: std::net::SocketAddr = a.parse().unwrap();
            let (st, _) = sockaddr(addr);
            let back = unsafe { socket_addr((&st as *const libc::sockaddr_storage).cast()) };
            assert_eq!(back, Some(addr));
        }
    }
}
