//! Socket plumbing the TCP protocols share: the accept loop, bounded vectored writes,
//! and the send-buffer size of reader sockets.

use std::future::Future;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Kernel send buffer of a reader's socket (Linux doubles it). Autotuning would let a
/// stalled reader park up to `tcp_wmem` max (4 MiB) in the kernel and hide for tens of
/// seconds from `writeTimeout`; 1 MiB still carries 40 Mbit/s at 200 ms RTT.
pub const READER_SNDBUF: usize = 512 * 1024;

/// writev accepts at most this many buffers (IOV_MAX on Linux).
const MAX_IOV: usize = 1024;

/// Binds a server's TCP listener; errors name the server (`what`) and the address.
pub async fn bind(
    what: &'static str,
    addr: SocketAddr,
) -> Result<(TcpListener, SocketAddr), crate::server::ListenError> {
    let err = |source| crate::server::ListenError { what, addr, source };
    let listener = TcpListener::bind(addr).await.map_err(err)?;
    let local = listener.local_addr().map_err(err)?;
    Ok((listener, local))
}

/// Accepts connections until `stop`, each served by its own task (which `stop` does
/// not end) while it holds its place under the connection limits (`admit`; one over
/// them is closed at once). The task drops the listener when it returns.
pub fn spawn_accept_loop<F, Fut>(
    listener: TcpListener,
    what: &'static str,
    stop: CancellationToken,
    admit: crate::limits::Admit,
    serve: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn(TcpStream, SocketAddr) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = stop.cancelled() => return,
                a = listener.accept() => a,
            };
            match accepted {
                Ok((sock, peer)) => {
                    let Some(place) = admit(peer.ip()) else {
                        continue;
                    };
                    let served = serve(sock, peer);
                    tokio::spawn(async move {
                        served.await;
                        drop(place);
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("{what} accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    })
}

/// Why a connection ended.
pub enum End {
    /// Normal end, logged at info.
    Normal(String),
    /// Bad input or a misbehaving peer, logged at warn.
    Bad(String),
}

impl From<WriteError> for End {
    /// A broken connection is a normal end; a client that stops reading is not.
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Io(_) => End::Normal(e.to_string()),
            WriteError::Timeout(_) => End::Bad(e.to_string()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("write error: {0}")]
    Io(#[from] std::io::Error),
    #[error("write blocked for {0:?} (write timeout): client is not reading")]
    Timeout(Duration),
}

/// Writes every part (empty ones skipped) with vectored writes, within `timeout`.
pub async fn write_all_vectored<W: AsyncWriteExt + Unpin>(
    w: &mut W,
    parts: &[&[u8]],
    timeout: Duration,
) -> Result<usize, WriteError> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let mut slices: Vec<IoSlice> = parts
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| IoSlice::new(p))
        .collect();
    let mut rest: &mut [IoSlice] = &mut slices;
    let write = async {
        while !rest.is_empty() {
            let n = w.write_vectored(&rest[..rest.len().min(MAX_IOV)]).await?;
            if n == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::WriteZero));
            }
            IoSlice::advance_slices(&mut rest, n);
        }
        Ok(())
    };
    match tokio::time::timeout(timeout, write).await {
        Ok(Ok(())) => Ok(total),
        Ok(Err(e)) => Err(WriteError::Io(e)),
        Err(_) => Err(WriteError::Timeout(timeout)),
    }
}

/// A connection's write half: plain TCP, which a `core::Sink` can write to from the
/// stream's side too, or any other stream (TLS), which only the connection writes to.
pub enum Out {
    Tcp(Arc<OwnedWriteHalf>),
    Other(BoxWriter),
}

impl Out {
    /// The TCP half, for a sink.
    pub fn tcp(&self) -> Option<Arc<OwnedWriteHalf>> {
        match self {
            Out::Tcp(t) => Some(t.clone()),
            Out::Other(_) => None,
        }
    }

    /// `write_all_vectored` on either kind.
    pub async fn write_all_vectored(
        &mut self,
        parts: &[&[u8]],
        timeout: Duration,
    ) -> Result<usize, WriteError> {
        match self {
            Out::Tcp(t) => write_all_vectored(&mut SharedTcp(t), parts, timeout).await,
            Out::Other(w) => write_all_vectored(w, parts, timeout).await,
        }
    }
}

/// Writes through a shared TCP half (tokio's `AsyncWrite` wants it unshared).
struct SharedTcp<'a>(&'a OwnedWriteHalf);

impl tokio::io::AsyncWrite for SharedTcp<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        poll_write_shared(self.0, cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// `poll_write_vectored` through a TCP half that others hold too.
pub fn poll_write_shared(
    tcp: &OwnedWriteHalf,
    cx: &mut Context<'_>,
    bufs: &[IoSlice<'_>],
) -> Poll<std::io::Result<usize>> {
    loop {
        match tcp.try_write_vectored(bufs) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            r => return Poll::Ready(r),
        }
        // Writable again since the failed try, or registered to be woken when it is.
        let sock: &tokio::net::TcpStream = tcp.as_ref();
        match sock.poll_write_ready(cx) {
            Poll::Ready(Ok(())) => continue,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
    }
}

/// Waits for the token, or forever without one (for `select!` branches).
pub async fn cancelled(t: Option<&CancellationToken>) {
    match t {
        Some(t) => t.cancelled().await,
        None => std::future::pending().await,
    }
}

/// Sleeps until the deadline, or forever without one (for `select!` branches).
pub async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Bounds the kernel send buffer of a reader's socket (see `READER_SNDBUF`).
pub fn limit_send_buffer<S: std::os::fd::AsFd>(sock: &S) {
    let _ = socket2::SockRef::from(sock).set_send_buffer_size(READER_SNDBUF);
}

/// The read and write halves of an accepted connection, boxed so a protocol's
/// connection code runs the same over TCP and TLS.
pub type BoxReader = Box<dyn tokio::io::AsyncRead + Send + Unpin>;
pub type BoxWriter = Box<dyn tokio::io::AsyncWrite + Send + Unpin>;

/// Prepares an accepted socket (no Nagle, the reader send buffer: publishers only send
/// the odd control message back) and, with `tls`, runs the handshake within `timeout`.
/// `None` when the handshake failed, logged at debug as `what`.
pub async fn accept_halves(
    sock: TcpStream,
    peer: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    timeout: Duration,
    what: &str,
) -> Option<(BoxReader, Out)> {
    let _ = sock.set_nodelay(true);
    limit_send_buffer(&sock);
    let Some(acceptor) = tls else {
        let (rd, wr) = sock.into_split();
        return Some((Box::new(rd), Out::Tcp(Arc::new(wr))));
    };
    match tokio::time::timeout(timeout, acceptor.accept(sock)).await {
        Ok(Ok(tls)) => {
            let (rd, wr) = tokio::io::split(tls);
            Some((Box::new(rd), Out::Other(Box::new(wr))))
        }
        Ok(Err(e)) => {
            tracing::debug!(%peer, "{what} handshake failed: {e}");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "{what} handshake timed out");
            None
        }
    }
}
