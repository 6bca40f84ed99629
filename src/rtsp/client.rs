//! A small RTSP client control connection (rtsp-types for the wire format): requests
//! with CSeq and Session, a 401 answered once with Basic or Digest, responses read
//! past interleaved data, over TCP or TLS. Push relays publish with it (ANNOUNCE,
//! SETUP, RECORD), `rtsps://` sources read with it, and so does the load tool.

use crate::tls::ClientStream;
use anyhow::{anyhow, bail, Context, Result};
use bytes::{Buf, Bytes, BytesMut};
use rtsp_types::{Message, Method, ParseError, Response, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An RTSP control connection (the publisher in `rtsp_publish` uses it too).
pub struct Conn {
    pub sock: ClientStream,
    /// Bytes read and not consumed yet (interleaved media, responses).
    pub buf: BytesMut,
    cseq: u32,
    session: Option<String>,
    /// User and password to answer a 401 with.
    pub credentials: Option<(String, String)>,
    /// The server's `WWW-Authenticate`, once it asked: later requests answer it too.
    challenge: Option<String>,
}

/// What the server sent next while media flows.
pub enum Item {
    Interleaved(u8, Bytes),
    Response(Response<Vec<u8>>),
}

impl Conn {
    pub async fn open(url: &str) -> Result<Conn> {
        let sock = TcpStream::connect(host_port(url)?).await?;
        sock.set_nodelay(true)?;
        Ok(Conn::from_stream(ClientStream::Plain(sock)))
    }

    /// A connection over `sock`, already connected (and TLS-handshaken for RTSPS).
    pub fn from_stream(sock: ClientStream) -> Conn {
        Conn {
            sock,
            buf: BytesMut::with_capacity(128 * 1024),
            cseq: 0,
            session: None,
            credentials: None,
            challenge: None,
        }
    }

    /// SETUP with `transport`; the first reply's Session is kept for what follows.
    pub async fn setup(&mut self, url: &str, transport: String) -> Result<Response<Vec<u8>>> {
        let r = self
            .request(Method::Setup, url, &[("Transport", transport)])
            .await?;
        if self.session.is_none() {
            let s = header(&r, "Session").ok_or_else(|| anyhow!("SETUP without Session"))?;
            self.session = Some(s.split(';').next().unwrap_or("").trim().to_string());
        }
        Ok(r)
    }

    /// Writes a request without waiting for its reply (keep-alives while media flows;
    /// `next_item` returns the reply).
    pub async fn send(
        &mut self,
        method: Method,
        url: &str,
        extra: &[(&str, String)],
    ) -> Result<()> {
        let out = self.serialize(method, url, extra, Vec::new())?;
        self.sock.write_all(&out).await?;
        Ok(())
    }

    /// The next interleaved frame or response; `None` when the server closed.
    pub async fn next_item(&mut self) -> Result<Option<Item>> {
        loop {
            if self.buf.first() == Some(&b'$') {
                if self.buf.len() >= 4 {
                    let len = usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]]));
                    if self.buf.len() >= 4 + len {
                        let channel = self.buf[1];
                        self.buf.advance(4);
                        let data = self.buf.split_to(len).freeze();
                        return Ok(Some(Item::Interleaved(channel, data)));
                    }
                }
            } else if let Some(r) = self.response()? {
                return Ok(Some(Item::Response(r)));
            }
            if self.sock.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }

    fn serialize(
        &mut self,
        method: Method,
        url: &str,
        extra: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<Vec<u8>> {
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
        if let (Some(challenge), Some((user, pass))) = (&self.challenge, &self.credentials) {
            let method_name: &str = (&method).into();
            if let Some(a) = crate::auth::header::answer(challenge, user, pass, method_name, url) {
                b = b.header(rtsp_types::headers::AUTHORIZATION, a);
            }
        }
        for (k, v) in extra {
            b = b.header(rtsp_types::HeaderName::try_from(*k)?, v.clone());
        }
        let req = b.build(body);
        let mut out = Vec::new();
        req.write(&mut out)?;
        Ok(out)
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
        let mut asked = false;
        loop {
            let out = self.serialize(method.clone(), url, extra, body.clone())?;
            self.sock.write_all(&out).await?;
            let r = loop {
                if let Some(r) = self.response()? {
                    break r;
                }
                let n = self.sock.read_buf(&mut self.buf).await?;
                if n == 0 {
                    bail!("connection closed during {method:?}");
                }
            };
            // A 401 is answered once, with the credentials we have.
            if r.status() == rtsp_types::StatusCode::Unauthorized
                && !asked
                && self.credentials.is_some()
            {
                if let Some(c) = header(&r, "WWW-Authenticate") {
                    self.challenge = Some(c);
                    asked = true;
                    continue;
                }
            }
            if !r.status().is_success() {
                bail!(
                    "{method:?} {}: {}",
                    crate::auth::redact_url(url),
                    u16::from(r.status())
                );
            }
            return Ok(r);
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
