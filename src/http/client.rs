//! HTTP/1.1 client over hyper's low-level connection API (one keep-alive connection,
//! no pool, `http://` or `https://`): HLS sources fetch playlists and segments with it,
//! and the load tool's HTTP-FLV and HLS readers read with it.

use crate::tls::{self, Fingerprint};
use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response, Uri};
use hyper_util::rt::TokioIo;

pub struct HttpConn {
    sender: SendRequest<Full<Bytes>>,
    https: bool,
    authority: String,
    /// The address connected to.
    pub peer: std::net::SocketAddr,
    /// Bytes of response bodies read through `get_body`.
    pub body_bytes: u64,
}

pub fn parse(url: &str) -> Result<Uri> {
    let uri: Uri = url.parse().with_context(|| format!("bad URL {url}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        bail!("only http:// and https:// URLs are supported: {url}");
    }
    Ok(uri)
}

/// `rel` resolved against the URL `base` (absolute, host-relative or directory-relative).
pub fn resolve(base: &Uri, rel: &str) -> Result<Uri> {
    if rel.starts_with("http://") || rel.starts_with("https://") {
        return parse(rel);
    }
    let scheme = base.scheme_str().unwrap_or("http");
    let authority = base.authority().map(|a| a.as_str()).unwrap_or("");
    let path = if rel.starts_with('/') {
        rel.to_string()
    } else {
        let dir = base.path().rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        format!("{dir}/{rel}")
    };
    parse(&format!("{scheme}://{authority}{path}"))
}

impl HttpConn {
    pub async fn open(uri: &Uri) -> Result<HttpConn> {
        Self::open_pinned(uri, None).await
    }

    /// Opens a connection for `uri`; an `https` one checks the server's certificate
    /// against `fingerprint` when given, else against the system's roots.
    pub async fn open_pinned(uri: &Uri, fingerprint: Option<Fingerprint>) -> Result<HttpConn> {
        Self::open_allowed(uri, fingerprint, &|_| true).await
    }

    /// `open_pinned`, to an address `allow` accepts (see `tls::connect_to_allowed`).
    pub async fn open_allowed(
        uri: &Uri,
        fingerprint: Option<Fingerprint>,
        allow: &(dyn Fn(std::net::IpAddr) -> bool + Sync),
    ) -> Result<HttpConn> {
        let authority = uri
            .authority()
            .ok_or_else(|| anyhow!("URL without a host: {uri}"))?;
        let https = uri.scheme_str() == Some("https");
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let sock = tls::connect_to_allowed(authority.host(), port, https, fingerprint, allow)
            .await
            .with_context(|| format!("connect {authority}"))?;
        let peer = sock.peer_addr()?;
        let authority = authority.to_string();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(sock)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(HttpConn {
            sender,
            https,
            authority,
            peer,
            body_bytes: 0,
        })
    }

    /// Whether `uri` is on the server this connection talks to.
    pub fn serves(&self, uri: &Uri) -> bool {
        (uri.scheme_str() == Some("https")) == self.https
            && uri
                .authority()
                .is_some_and(|a| a.as_str() == self.authority)
    }

    pub async fn get(&mut self, uri: &Uri) -> Result<Response<Incoming>> {
        let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let req = Request::get(pq)
            .header(hyper::header::HOST, &self.authority)
            .body(Full::new(Bytes::new()))?;
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        if !resp.status().is_success() {
            bail!("GET {uri}: {}", resp.status());
        }
        Ok(resp)
    }

    /// POSTs `body` as `content_type`; the response whatever its status.
    pub async fn post(
        &mut self,
        uri: &Uri,
        content_type: &str,
        body: Bytes,
    ) -> Result<Response<Incoming>> {
        let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let req = Request::post(pq)
            .header(hyper::header::HOST, &self.authority)
            .header(hyper::header::CONTENT_TYPE, content_type)
            .body(Full::new(body))?;
        self.sender.ready().await?;
        Ok(self.sender.send_request(req).await?)
    }

    /// GET and collect the body, refused past `limit` bytes (for bodies from servers
    /// the config names but we don't trust to be small).
    pub async fn get_body_limited(&mut self, uri: &Uri, limit: usize) -> Result<Bytes> {
        let resp = self.get(uri).await?;
        let body = http_body_util::Limited::new(resp.into_body(), limit)
            .collect()
            .await
            .map_err(|e| anyhow!("{e}"))?
            .to_bytes();
        self.body_bytes += body.len() as u64;
        Ok(body)
    }

    /// GET and collect the whole body.
    pub async fn get_body(&mut self, uri: &Uri) -> Result<Bytes> {
        let resp = self.get(uri).await?;
        let body = resp.into_body().collect().await?.to_bytes();
        self.body_bytes += body.len() as u64;
        Ok(body)
    }
}
