//! Accepted HTTP connections with a write timeout. hyper has none, and an HTTP-FLV
//! reader that stops reading must not hold its slot for ever: a write that stays
//! blocked for `writeTimeout` fails, and hyper closes the connection. With TLS, the
//! handshakes run in tasks of their own, so a slow one holds up no other client.

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
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
                let _ = sock.set_nodelay(true);
                let io = move |inner| TimeoutIo {
                    inner,
                    peer,
                    timeout: write_timeout,
                    deadline: None,
                };
                match &acceptor {
                    None => {
                        if tx.send((io(Stream::Plain(sock)), peer)).await.is_err() {
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
                                    let _ = tx.send((io(Stream::Tls(Box::new(tls))), peer)).await;
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

/// The client's address, as handlers extract it (`ConnectInfo<Peer>`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub SocketAddr);

impl Connected<IncomingStream<'_, TimeoutListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TimeoutListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
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
        self.guard(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
