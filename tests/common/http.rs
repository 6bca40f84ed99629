//! A blocking HTTP/1.0 GET for tests: (status, body).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub fn get(addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers");
    let status = String::from_utf8_lossy(&resp[9..12]).parse().unwrap();
    (status, resp[split + 4..].to_vec())
}

/// One HTTP/1.0 request written as `head` (request line and headers, no blank line)
/// and `body`, from the local address `from` when given: (status, headers, body).
pub fn request_from(
    from: Option<std::net::IpAddr>,
    addr: SocketAddr,
    head: &str,
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )
    .unwrap();
    if let Some(ip) = from {
        sock.bind(&SocketAddr::new(ip, 0).into()).unwrap();
    }
    sock.connect_timeout(&addr.into(), Duration::from_secs(10))
        .unwrap();
    let mut s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let length = if body.is_empty() {
        String::new()
    } else {
        format!("Content-Length: {}\r\n", body.len())
    };
    write!(s, "{head}\r\nHost: test\r\n{length}\r\n").unwrap();
    s.write_all(body).unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(resp.len());
    let head = String::from_utf8_lossy(&resp[..split]).into_owned();
    let status = head.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = resp.get(split + 4..).unwrap_or_default().to_vec();
    (status, head, body)
}

/// Serves `app` on a loopback port from a runtime of its own (a test's auth server,
/// webhook receiver, …); the server lives as long as the returned runtime.
pub fn serve(app: axum::Router) -> (tokio::runtime::Runtime, SocketAddr) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move { axum::serve(listener, app).await });
    (rt, addr)
}
