//! Accepted HTTP connections with a write timeout. hyper has none, and an HTTP-FLV
//! reader that stops reading must not hold its slot for ever: a write that stays
//! blocked for `writeTimeout` fails, and hyper closes the connection.

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;

pub(crate) struct TimeoutListener {
    pub inner: TcpListener,
    pub write_timeout: Duration,
}

impl axum::serve::Listener for TimeoutListener {
    type Io = TimeoutIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TimeoutIo, SocketAddr) {
        loop {
            match self.inner.accept().await {
                Ok((sock, peer)) => {
                    let _ = sock.set_nodelay(true);
                    let io = TimeoutIo {
                        inner: sock,
                        peer,
                        timeout: self.write_timeout,
                        deadline: None,
                    };
                    return (io, peer);
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("HTTP accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
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

pub(crate) struct TimeoutIo {
    inner: TcpStream,
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
