//! RTMP client (`rtmp://`, or `rtmps://` over TLS): handshake (rml_rtmp), `connect`/`createStream`, then `play` (media
//! out of the session) or `publish` (media into it). Chunks go through the server's
//! own chunk reader and writer. Used by RTMP sources, push relays and the load tool.

use super::chunk::{write_message, ChunkReader, Message, MessageRef};
use crate::format::amf0::{self, Value};
use crate::tls::{self, ClientStream, Fingerprint};
use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use futures_util::FutureExt;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SET_CHUNK_SIZE: u8 = 1;
const ACK: u8 = 3;
const USER_CONTROL: u8 = 4;
const WINDOW_ACK: u8 = 5;
const AUDIO: u8 = 8;
const VIDEO: u8 = 9;
const DATA: u8 = 18;
const COMMAND: u8 = 20;
const AGGREGATE: u8 = 22;
const OUT_CHUNK: usize = 4096;

/// `rtmp[s]://host[:port]/app/stream` split into its parts.
pub struct RtmpUrl {
    pub host: String,
    pub port: u16,
    pub tls: bool,
    pub app: String,
    pub stream: String,
    pub tc_url: String,
}

pub fn parse_url(url: &str) -> Result<RtmpUrl> {
    let (tls, rest) = match (url.strip_prefix("rtmp://"), url.strip_prefix("rtmps://")) {
        (Some(rest), _) => (false, rest),
        (_, Some(rest)) => (true, rest),
        _ => bail!("not an rtmp:// or rtmps:// URL: {url}"),
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    // The port follows the last colon, unless that colon is inside an IPv6 literal.
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => {
            let port = p.parse().map_err(|_| anyhow!("bad port '{p}' in {url}"))?;
            (h, port)
        }
        _ => (authority, if tls { 443 } else { 1935 }),
    };
    if host.is_empty() {
        bail!("RTMP URL without a host: {url}");
    }
    let (app, stream) = path
        .split_once('/')
        .ok_or_else(|| anyhow!("RTMP URL needs /app/stream: {url}"))?;
    let scheme = if tls { "rtmps" } else { "rtmp" };
    Ok(RtmpUrl {
        host: host.to_string(),
        port,
        tls,
        app: app.to_string(),
        stream: stream.to_string(),
        tc_url: format!("{scheme}://{authority}/{app}"),
    })
}

pub struct RtmpClient {
    sock: ClientStream,
    chunks: ChunkReader,
    buf: Vec<u8>,
    out: Vec<u8>,
    window: u64,
    /// Bytes received so far.
    pub received: u64,
    acked: u64,
    next_tx: f64,
}

/// A media message as the client sees it.
pub enum Media {
    Video {
        ts: u32,
        body: Bytes,
    },
    Audio {
        ts: u32,
        body: Bytes,
    },
    /// An AMF0 data message (`onMetaData`, `@setDataFrame`).
    Data {
        body: Bytes,
    },
}

impl RtmpClient {
    pub async fn connect(url: &RtmpUrl) -> Result<RtmpClient> {
        Self::connect_pinned(url, None, &Default::default()).await
    }

    /// Connects; an `rtmps` URL checks the server's certificate against `fingerprint`
    /// when given, else against the system's roots. The server's messages are held to
    /// `limits` (`rtmpMaxChunkSize`, `rtmpMaxMessageSize`).
    pub async fn connect_pinned(
        url: &RtmpUrl,
        fingerprint: Option<Fingerprint>,
        limits: &crate::format::limits::InputLimits,
    ) -> Result<RtmpClient> {
        let sock = tls::connect(&url.host, url.port, url.tls, fingerprint)
            .await
            .with_context(|| format!("connect {}:{}", url.host, url.port))?;
        let mut c = RtmpClient {
            sock,
            chunks: ChunkReader::new(limits.rtmp_chunk_size, limits.rtmp_message),
            buf: vec![0; 64 * 1024],
            out: Vec::new(),
            window: 2_500_000,
            received: 0,
            acked: 0,
            next_tx: 1.0,
        };
        c.handshake().await?;
        c.send(2, SET_CHUNK_SIZE, 0, 0, &(OUT_CHUNK as u32).to_be_bytes());
        let tx = c.command(
            0,
            "connect",
            vec![amf0::object(&[
                ("app", Value::String(url.app.clone())),
                ("type", Value::String("nonprivate".into())),
                (
                    "flashVer",
                    Value::String(format!(
                        "FMLE/3.0 (mediarouter {})",
                        env!("CARGO_PKG_VERSION")
                    )),
                ),
                ("tcUrl", Value::String(url.tc_url.clone())),
                // Enhanced RTMP: this client reads H.265 as `hvc1` (servers send it
                // only to players that list it).
                (
                    "fourCcList",
                    Value::StrictArray(vec![Value::String("hvc1".into())]),
                ),
            ])],
        );
        c.flush().await?;
        c.wait_result(tx).await?;
        Ok(c)
    }

    async fn handshake(&mut self) -> Result<()> {
        let mut hs = Handshake::new(PeerType::Client);
        let p0p1 = hs.generate_outbound_p0_and_p1()?;
        self.sock.write_all(&p0p1).await?;
        loop {
            let n = self.sock.read(&mut self.buf).await?;
            if n == 0 {
                bail!("closed during the handshake");
            }
            match hs.process_bytes(&self.buf[..n])? {
                HandshakeProcessResult::InProgress { response_bytes } => {
                    self.sock.write_all(&response_bytes).await?;
                }
                HandshakeProcessResult::Completed {
                    response_bytes,
                    remaining_bytes,
                } => {
                    self.sock.write_all(&response_bytes).await?;
                    self.chunks.push(&remaining_bytes);
                    return Ok(());
                }
            }
        }
    }

    fn send(&mut self, csid: u8, type_id: u8, stream_id: u32, timestamp: u32, payload: &[u8]) {
        let m = MessageRef {
            timestamp,
            type_id,
            stream_id,
            payload,
        };
        write_message(&mut self.out, csid, &m, OUT_CHUNK);
    }

    fn command(&mut self, stream_id: u32, name: &str, args: Vec<Value>) -> f64 {
        let tx = self.next_tx;
        self.next_tx += 1.0;
        let mut values = vec![Value::String(name.into()), Value::Number(tx), Value::Null];
        if name == "connect" {
            values.pop();
        }
        values.extend(args);
        let csid = if stream_id == 0 { 3 } else { 8 };
        self.send(csid, COMMAND, stream_id, 0, &amf0::encode_all(&values));
        tx
    }

    async fn flush(&mut self) -> Result<()> {
        if !self.out.is_empty() {
            self.sock.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Next message, answering protocol control on the way. `None` at end of stream.
    async fn next(&mut self) -> Result<Option<Message>> {
        loop {
            while let Some(m) = self.chunks.next_message()? {
                match m.type_id {
                    SET_CHUNK_SIZE if m.payload.len() >= 4 => {
                        self.chunks
                            .set_chunk_size(be_u32(&m.payload) & 0x7fff_ffff)?;
                    }
                    WINDOW_ACK if m.payload.len() >= 4 => {
                        self.window = u64::from(be_u32(&m.payload).max(1));
                    }
                    // Ping request → ping response with the same timestamp.
                    USER_CONTROL if m.payload.len() >= 6 && m.payload[1] == 6 => {
                        let mut p = vec![0, 7];
                        p.extend_from_slice(&m.payload[2..6]);
                        self.send(2, USER_CONTROL, 0, 0, &p);
                        self.flush().await?;
                    }
                    _ => return Ok(Some(m)),
                }
            }
            let n = self.sock.read(&mut self.buf).await?;
            if n == 0 {
                return Ok(None);
            }
            self.received += n as u64;
            self.chunks.push(&self.buf[..n]);
            if self.received - self.acked >= self.window / 2 {
                self.acked = self.received;
                let seq = (self.received & 0xffff_ffff) as u32;
                self.send(2, ACK, 0, 0, &seq.to_be_bytes());
                self.flush().await?;
            }
        }
    }

    /// The values of the next AMF0 command message; `what` names the wait in errors.
    async fn next_command(&mut self, what: &str) -> Result<Vec<Value>> {
        loop {
            let m = self
                .next()
                .await?
                .ok_or_else(|| anyhow!("closed while waiting for {what}"))?;
            if m.type_id == COMMAND {
                return amf0::decode_all(&m.payload).map_err(|e| anyhow!("bad AMF0: {e:?}"));
            }
        }
    }

    /// Waits for `_result` (or `_error`) of transaction `tx`, returning its values.
    async fn wait_result(&mut self, tx: f64) -> Result<Vec<Value>> {
        loop {
            let v = self.next_command("a command result").await?;
            let name = v.first().and_then(Value::as_str).unwrap_or("");
            let id = v.get(1).and_then(Value::as_f64);
            if id == Some(tx) {
                if name == "_result" {
                    return Ok(v);
                }
                bail!("{name}: {:?}", v.get(3));
            }
        }
    }

    /// Waits for an `onStatus` and fails unless its code is `want`.
    async fn wait_status(&mut self, want: &str) -> Result<()> {
        loop {
            let v = self.next_command(want).await?;
            if v.first().and_then(Value::as_str) != Some("onStatus") {
                continue;
            }
            let code = v
                .get(3)
                .and_then(|i| i.get("code"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if code == want {
                return Ok(());
            }
            if code.contains("Failed") || code.contains("BadName") || code.contains("Reject") {
                bail!("{code}");
            }
        }
    }

    async fn create_stream(&mut self) -> Result<u32> {
        let tx = self.command(0, "createStream", vec![]);
        self.flush().await?;
        let r = self.wait_result(tx).await?;
        r.get(3)
            .and_then(Value::as_f64)
            .map(|v| v as u32)
            .ok_or_else(|| anyhow!("createStream result without a stream id"))
    }

    /// `createStream` + `play`; media follows.
    pub async fn play(&mut self, stream: &str) -> Result<()> {
        let id = self.create_stream().await?;
        // Set Buffer Length, as players send it.
        let mut p = vec![0, 3];
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&1000u32.to_be_bytes());
        self.send(2, USER_CONTROL, 0, 0, &p);
        self.command(
            id,
            "play",
            vec![Value::String(stream.into()), Value::Number(-2.0)],
        );
        self.flush().await
    }

    /// Next audio/video message of a play session (aggregates split); `None` at the end.
    pub async fn next_media(&mut self, pending: &mut Vec<Media>) -> Result<bool> {
        loop {
            let Some(m) = self.next().await? else {
                return Ok(false);
            };
            match m.type_id {
                VIDEO => pending.push(Media::Video {
                    ts: m.timestamp,
                    body: m.payload,
                }),
                AUDIO => pending.push(Media::Audio {
                    ts: m.timestamp,
                    body: m.payload,
                }),
                DATA => pending.push(Media::Data { body: m.payload }),
                AGGREGATE => split_aggregate(&m, pending),
                COMMAND => {
                    let v = amf0::decode_all(&m.payload).unwrap_or_default();
                    let code = v
                        .get(3)
                        .and_then(|i| i.get("code"))
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    if code == "NetStream.Play.StreamNotFound" || code == "NetStream.Play.Failed" {
                        bail!("{code}");
                    }
                    if code == "NetStream.Play.UnpublishNotify" {
                        return Ok(false);
                    }
                    continue;
                }
                _ => continue,
            }
            return Ok(true);
        }
    }

    /// `createStream` + `publish`; returns the stream id to send media on.
    pub async fn publish(&mut self, stream: &str) -> Result<u32> {
        let id = self.create_stream().await?;
        self.command(
            id,
            "publish",
            vec![Value::String(stream.into()), Value::String("live".into())],
        );
        self.flush().await?;
        self.wait_status("NetStream.Publish.Start").await?;
        Ok(id)
    }

    /// A data message (`@setDataFrame` …) already AMF0-encoded.
    pub fn queue_raw_data(&mut self, stream_id: u32, body: &[u8]) {
        self.send(4, DATA, stream_id, 0, body);
    }

    pub fn queue_media(&mut self, stream_id: u32, video: bool, ts: u32, body: &[u8]) {
        let (csid, typ) = if video { (6, VIDEO) } else { (4, AUDIO) };
        self.send(csid, typ, stream_id, ts, body);
    }

    /// Sends what is queued, and drains (ignores) what the server sent meanwhile.
    pub async fn flush_publish(&mut self) -> Result<()> {
        self.flush().await?;
        loop {
            // One poll: reads are cancel-safe on TCP and TLS alike.
            match self.sock.read(&mut self.buf).now_or_never() {
                None => break,
                Some(Ok(0)) => bail!("server closed the publishing connection"),
                Some(Ok(n)) => self.chunks.push(&self.buf[..n]),
                Some(Err(e)) => return Err(e.into()),
            }
        }
        while let Some(m) = self.chunks.next_message()? {
            if m.type_id == SET_CHUNK_SIZE && m.payload.len() >= 4 {
                self.chunks
                    .set_chunk_size(be_u32(&m.payload) & 0x7fff_ffff)?;
            }
        }
        Ok(())
    }
}

/// The big-endian u32 at the start of `b` (at least 4 bytes long).
fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Aggregate message (type 22): FLV tags back to back, timestamps relative to the first.
fn split_aggregate(m: &Message, out: &mut Vec<Media>) {
    let p = &m.payload;
    let mut pos = 0;
    let mut base: Option<u32> = None;
    while pos + 11 <= p.len() {
        let typ = p[pos] & 0x1f;
        let len = u32::from_be_bytes([0, p[pos + 1], p[pos + 2], p[pos + 3]]) as usize;
        let ts = u32::from_be_bytes([p[pos + 7], p[pos + 4], p[pos + 5], p[pos + 6]]);
        let end = pos + 11 + len;
        if end > p.len() {
            return;
        }
        let first = *base.get_or_insert(ts);
        let ts = m.timestamp.wrapping_add(ts.wrapping_sub(first));
        let body = p.slice(pos + 11..end);
        match typ {
            VIDEO => out.push(Media::Video { ts, body }),
            AUDIO => out.push(Media::Audio { ts, body }),
            _ => {}
        }
        pos = end + 4;
    }
}

#[cfg(test)]
mod tests {
    use super::parse_url;

    #[test]
    fn urls_split_into_host_port_app_and_stream() {
        let u = parse_url("rtmp://cdn.example/live/key?x=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.tls),
            ("cdn.example", 1935, false)
        );
        assert_eq!((u.app.as_str(), u.stream.as_str()), ("live", "key?x=1"));
        assert_eq!(u.tc_url, "rtmp://cdn.example/live");
        let u = parse_url("rtmps://live-api.example/rtmp/abc").unwrap();
        assert_eq!((u.port, u.tls), (443, true));
        assert_eq!(u.tc_url, "rtmps://live-api.example/rtmp");
        let u = parse_url("rtmps://[::1]:1936/a/b").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("[::1]", 1936));
        let u = parse_url("rtmp://[::1]/a/b").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("[::1]", 1935));
        assert!(parse_url("rtmp://host:port/a/b").is_err());
        assert!(parse_url("rtmp://host/onlyapp").is_err());
        assert!(parse_url("rtmp:///a/b").is_err());
        assert!(parse_url("http://host/a/b").is_err());
    }
}
