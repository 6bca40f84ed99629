//! A small RTSP client control connection (rtsp-types for the wire format): requests
//! with CSeq and Session, responses read past interleaved data. Push relays publish
//! with it (ANNOUNCE, SETUP, RECORD); the load tool reads and publishes with it.

use anyhow::{anyhow, bail, Context, Result};
use bytes::{Buf, BytesMut};
use rtsp_types::{Message, Method, ParseError, Response, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An RTSP control connection (the publisher in `rtsp_publish` uses it too).
pub struct Conn {
    pub sock: TcpStream,
    /// Bytes read and not consumed yet (interleaved media, responses).
    pub buf: BytesMut,
    cseq: u32,
    session: Option<String>,
}

impl Conn {
    pub async fn open(url: &str) -> Result<Conn> {
        let sock = TcpStream::connect(host_port(url)?).await?;
        sock.set_nodelay(true)?;
        Ok(Conn {
            sock,
            buf: BytesMut::with_capacity(128 * 1024),
            cseq: 0,
            session: None,
        })
    }

    /// SETUP with `transport`; the first reply's Session is kept for what follows.
    pub async fn setup(&mut self, url: &str, transport: String) -> Result<()> {
        let r = self
            .request(Method::Setup, url, &[("Transport", transport)])
            .await?;
        if self.session.is_none() {
            let s = header(&r, "Session").ok_or_else(|| anyhow!("SETUP without Session"))?;
            self.session = Some(s.split(';').next().unwrap_or("").trim().to_string());
        }
        Ok(())
    }

    pub async fn request(
        &mut self,
        method: Method,
        url: &str,
        extra: &[(&str, String)],
    ) -> Result<Response<Vec<u8>>> {
        self.request_body(method, url, extra, Vec::new()).await
    }

    pub async fn request_body(
        &mut self,
        method: Method,
        url: &str,
        extra: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<Response<Vec<u8>>> {
        self.cseq += 1;
        let mut b = rtsp_types::Request::builder(method.clone(), Version::V1_0)
            .request_uri(rtsp_types::Url::parse(url).with_context(|| format!("bad URL {url}"))?)
            .header(rtsp_types::headers::CSEQ, self.cseq.to_string())
            .header(
                rtsp_types::headers::USER_AGENT,
                concat!("mediarouter/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(s) = &self.session {
            b = b.header(rtsp_types::headers::SESSION, s.clone());
        }
        for (k, v) in extra {
            b = b.header(rtsp_types::HeaderName::try_from(*k)?, v.clone());
        }
        let req = b.build(body);
        let mut out = Vec::new();
        req.write(&mut out)?;
        self.sock.write_all(&out).await?;
        loop {
            if let Some(r) = self.response()? {
                if !r.status().is_success() {
                    bail!("{method:?} {url}: {}", u16::from(r.status()));
                }
                return Ok(r);
            }
            let n = self.sock.read_buf(&mut self.buf).await?;
            if n == 0 {
                bail!("connection closed during {method:?}");
            }
        }
    }

    /// A complete response at the front of the buffer (interleaved data before it is dropped).
    pub fn response(&mut self) -> Result<Option<Response<Vec<u8>>>> {
        loop {
            if self.buf.first() == Some(&b'$') {
                if self.buf.len() < 4 {
                    return Ok(None);
                }
                let len = usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]]));
                if self.buf.len() < 4 + len {
                    return Ok(None);
                }
                self.buf.advance(4 + len);
                continue;
            }
            if self.buf.is_empty() {
                return Ok(None);
            }
            let parsed = match Message::<Vec<u8>>::parse(&self.buf[..]) {
                Ok((m, n)) => Some((m, n)),
                Err(ParseError::Incomplete(_)) => None,
                Err(ParseError::Error) => bail!("malformed RTSP response"),
            };
            let Some((m, n)) = parsed else {
                return Ok(None);
            };
            self.buf.advance(n);
            if let Message::Response(r) = m {
                return Ok(Some(r));
            }
        }
    }

    /// Writes bytes as they are (interleaved media).
    pub async fn write_raw(&mut self, data: &[u8]) -> Result<()> {
        if !data.is_empty() {
            self.sock.write_all(data).await?;
        }
        Ok(())
    }
}

/// The value of header `name` in `r`.
pub fn header(r: &Response<Vec<u8>>, name: &str) -> Option<String> {
    r.header(&rtsp_types::HeaderName::try_from(name).ok()?)
        .map(|v| v.as_str().to_string())
}

/// `host:port` of an rtsp:// URL (554 by default).
pub fn host_port(url: &str) -> Result<String> {
    let u = rtsp_types::Url::parse(url).with_context(|| format!("bad URL {url}"))?;
    let host = u
        .host_str()
        .ok_or_else(|| anyhow!("URL without host: {url}"))?;
    Ok(format!("{host}:{}", u.port().unwrap_or(554)))
}
