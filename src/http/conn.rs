//! Accepted HTTP connections with a write timeout. hyper has none, and an HTTP-FLV
//! reader that stops reading must not hold its slot for ever: a write that stays
//! blocked for `writeTimeout` fails, and hyper closes the connection. With TLS, the
//! handshakes run in tasks of their own, so a slow one holds up no other client.
//! Over plain TCP a handler may take over the body's writes once hyper has sent the
//! response head (`Takeover`): HTTP-FLV readers are written to from the stream's side.

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Sleep;

pub(crate) struct TimeoutListener {
    local_addr: SocketAddr,
    accepted: tokio::sync::mpsc::Receiver<(TimeoutIo, SocketAddr)>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TimeoutListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Longest a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl TimeoutListener {
    pub(crate) fn new(
        inner: TcpListener,
        write_timeout: Duration,
        tls: Option<Arc<rustls::ServerConfig>>,
        admit: crate::limits::Admit,
    ) -> io::Result<Self> {
        let local_addr = inner.local_addr()?;
        let (tx, accepted) = tokio::sync::mpsc::channel(64);
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let task = tokio::spawn(async move {
            loop {
                let (sock, peer) = match inner.accept().await {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!("HTTP accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Some(place) = admit(peer.ip()) else {
                    continue;
                };
                let _ = sock.set_nodelay(true);
                crate::net::limit_send_buffer(&sock);
                let io = move |inner, takeover| TimeoutIo {
                    inner,
                    peer,
                    timeout: write_timeout,
                    deadline: None,
                    takeover,
                    _place: place,
                };
                match &acceptor {
                    None => {
                        let (rd, wr) = sock.into_split();
                        let wr = Arc::new(wr);
                        let takeover = Arc::new(Takeover {
                            tcp: wr.clone(),
                            waiting: AtomicBool::new(false),
                            flushed: Notify::new(),
                        });
                        let plain = Stream::Plain(PlainTcp { rd, wr });
                        if tx.send((io(plain, Some(takeover)), peer)).await.is_err() {
                            return;
                        }
                    }
                    Some(acceptor) => {
                        let (acceptor, tx) = (acceptor.clone(), tx.clone());
                        tokio::spawn(async move {
                            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(sock))
                                .await
                            {
                                Ok(Ok(tls)) => {
                                    let tls = Stream::Tls(Box::new(tls));
                                    let _ = tx.send((io(tls, None), peer)).await;
                                }
                                Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                            }
                        });
                    }
                }
            }
        });
        Ok(TimeoutListener {
            local_addr,
            accepted,
            task,
        })
    }

    /// Closes the listening socket and returns once it is closed, so that the address
    /// can be bound again at once (dropping only asks the accept task to end).
    pub(crate) async fn close(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl axum::serve::Listener for TimeoutListener {
    type Io = TimeoutIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TimeoutIo, SocketAddr) {
        match self.accepted.recv().await {
            Some(a) => a,
            // The accept task only ends when the listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local_addr)
    }
}

/// The client's address, as handlers extract it (`ConnectInfo<Peer>`), and over plain
/// TCP the connection's socket for a body that writes itself.
#[derive(Clone)]
pub(crate) struct Peer(pub SocketAddr, pub Option<Arc<Takeover>>);

impl Connected<IncomingStream<'_, TimeoutListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TimeoutListener>) -> Self {
        Peer(*stream.remote_addr(), stream.io().takeover())
    }
}

impl TimeoutIo {
    pub(crate) fn takeover(&self) -> Option<Arc<Takeover>> {
        self.takeover.clone()
    }
}

/// A plain connection's socket, shared by hyper and a body that writes to it directly.
/// hyper writes nothing while a streaming body is pending, so the two never interleave
/// once the body has waited for `head_written`.
pub(crate) struct Takeover {
    pub(crate) tcp: Arc<OwnedWriteHalf>,
    waiting: AtomicBool,
    flushed: Notify,
}

impl Takeover {
    /// Resolves once hyper has written all it buffered: called from a response body's
    /// first poll, whose head hyper has buffered by then. hyper flushes the socket only
    /// with its write buffer empty (h1 `Buffered::poll_flush`), after every poll of a
    /// pending body.
    pub(crate) async fn head_written(&self) {
        self.waiting.store(true, Ordering::Release);
        self.flushed.notified().await
    }
}

pub(crate) enum Stream {
    Plain(PlainTcp),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

pub(crate) struct PlainTcp {
    rd: OwnedReadHalf,
    wr: Arc<OwnedWriteHalf>,
}

impl AsyncRead for PlainTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.rd).poll_read(cx, buf)
    }
}

impl AsyncWrite for PlainTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        crate::net::poll_write_shared(&self.wr, cx, &[io::IoSlice::new(buf)])
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        crate::net::poll_write_shared(&self.wr, cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let half: &OwnedWriteHalf = &self.wr;
        let sock: &TcpStream = half.as_ref();
        match socket2::SockRef::from(sock).shutdown(std::net::Shutdown::Write) {
            Err(e) if e.kind() != io::ErrorKind::NotConnected => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(())),
        }
    }
}

macro_rules! both {
    ($s:expr, $inner:ident => $e:expr) => {
        match $s {
            Stream::Plain($inner) => $e,
            Stream::Tls($inner) => $e,
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        both!(self.get_mut(), s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        both!(self.get_mut(), s => Pin::new(s).poll_write(cx, buf))
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        both!(self.get_mut(), s => Pin::new(s).poll_write_vectored(cx, bufs))
    }
    fn is_write_vectored(&self) -> bool {
        both!(self, s => s.is_write_vectored())
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        both!(self.get_mut(), s => Pin::new(s).poll_flush(cx))
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        both!(self.get_mut(), s => Pin::new(s).poll_shutdown(cx))
    }
}

pub(crate) struct TimeoutIo {
    inner: Stream,
    peer: SocketAddr,
    timeout: Duration,
    /// Armed while a write is blocked; cleared by any write that goes through.
    deadline: Option<Pin<Box<Sleep>>>,
    /// Plain TCP only.
    takeover: Option<Arc<Takeover>>,
    /// The connection's place under the connection limits, held while it is open.
    _place: crate::limits::Admitted,
}

impl TimeoutIo {
    fn guard<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if r.is_ready() {
            self.deadline = None;
            return r;
        }
        let timeout = self.timeout;
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if deadline.as_mut().poll(cx).is_ready() {
            tracing::warn!(peer = %self.peer, "closing HTTP connection: write blocked for {timeout:?} (write timeout): client is not reading");
            return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
        }
        Poll::Pending
    }
}

impl AsyncRead for TimeoutIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TimeoutIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.guard(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.guard(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        if let (Poll::Ready(Ok(())), Some(t)) = (&r, &self.takeover) {
            if t.waiting.swap(false, Ordering::AcqRel) {
                t.flushed.notify_one();
            }
        }
        self.guard(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
