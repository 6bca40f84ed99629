//! TLS for the connections the server opens itself (`https://` HLS sources, `rtmps://`
//! sources and push destinations): rustls over the system's trust roots, or a pinned
//! SHA-256 of the peer's certificate (`sourceFingerprint`) for self-signed sources.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::{Deserialize, Deserializer};
use sha2::{Digest, Sha256};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// SHA-256 of a DER certificate, written in config as 64 hex digits (colons allowed).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of(cert_der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(cert_der).into())
    }

    pub fn parse(s: &str) -> Result<Fingerprint, String> {
        let hex: String = s.chars().filter(|c| *c != ':').collect();
        let bad =
            || format!("sourceFingerprint '{s}': want the certificate's SHA-256 as 64 hex digits");
        if hex.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16)
                .map_err(|_| bad())?;
        }
        Ok(Fingerprint(out))
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Fingerprint::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A connection to a peer, with or without TLS.
pub enum ClientStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl ClientStream {
    /// The address this stream is connected to.
    pub fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        match self {
            ClientStream::Plain(s) => s.peer_addr(),
            ClientStream::Tls(s) => s.get_ref().0.peer_addr(),
        }
    }
}

/// Connects to `host:port`; with `tls`, runs a TLS handshake for `host` and checks
/// the certificate against `fingerprint` when given, else against the system's roots.
pub async fn connect(
    host: &str,
    port: u16,
    tls: bool,
    fingerprint: Option<Fingerprint>,
) -> io::Result<ClientStream> {
    connect_to_allowed(host, port, tls, fingerprint, &|_| true).await
}

/// `connect`, to the first address `host` resolves to that `allow` accepts: the check
/// is on the address connected to, so a second DNS answer can't change it.
pub async fn connect_to_allowed(
    host: &str,
    port: u16,
    tls: bool,
    fingerprint: Option<Fingerprint>,
    allow: &(dyn Fn(std::net::IpAddr) -> bool + Sync),
) -> io::Result<ClientStream> {
    // URLs bracket IPv6 literals; sockets and SNI want them bare.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let mut failure = io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"));
    let mut connected = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        if !allow(addr.ip()) {
            let name = match host.parse::<std::net::IpAddr>() {
                Ok(_) => host.to_string(),
                Err(_) => format!("{host} ({})", addr.ip()),
            };
            failure = io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{name} is an address this URL may not reach"),
            );
            continue;
        }
        match TcpStream::connect(addr).await {
            Ok(s) => {
                connected = Some(s);
                break;
            }
            Err(e) => failure = e,
        }
    }
    let sock = connected.ok_or(failure)?;
    sock.set_nodelay(true)?;
    if !tls {
        return Ok(ClientStream::Plain(sock));
    }
    let name = ServerName::try_from(host)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?
        .to_owned();
    let config = match fingerprint {
        Some(f) => pinned_config(f)?,
        None => system_config()?,
    };
    let tls = TlsConnector::from(config).connect(name, sock).await?;
    Ok(ClientStream::Tls(Box::new(tls)))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn builder() -> io::Result<rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>> {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)
}

/// Trust roots from the system (`/etc/ssl/certs`, or `SSL_CERT_FILE`/`SSL_CERT_DIR`),
/// loaded once.
fn system_config() -> io::Result<Arc<ClientConfig>> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    if let Some(c) = CONFIG.get() {
        return Ok(c.clone());
    }
    let mut roots = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!("loading the system's TLS roots: {e}");
    }
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        tracing::warn!("no TLS trust roots found: TLS peers need sourceFingerprint");
    }
    let config = Arc::new(
        builder()?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    Ok(CONFIG.get_or_init(|| config).clone())
}

fn pinned_config(fingerprint: Fingerprint) -> io::Result<Arc<ClientConfig>> {
    let verifier = Arc::new(Pinned {
        fingerprint,
        provider: provider(),
    });
    Ok(Arc::new(
        builder()?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
    ))
}

/// Accepts exactly the certificate whose SHA-256 is pinned; the handshake signature
/// is still checked, so the peer must hold that certificate's key.
#[derive(Debug)]
struct Pinned {
    fingerprint: Fingerprint,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = Fingerprint::of(end_entity);
        if got == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "certificate fingerprint {got} is not sourceFingerprint {}",
                self.fingerprint
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            ClientStream::Plain(s) => s.is_write_vectored(),
            ClientStream::Tls(s) => s.is_write_vectored(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_with_or_without_colons() {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
        let f = Fingerprint::parse(hex).unwrap();
        assert_eq!(f.0[1], 0x11);
        assert_eq!(f.to_string(), hex.to_lowercase());
        let colons: Vec<String> = f.0.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(Fingerprint::parse(&colons.join(":")).unwrap(), f);
        assert!(Fingerprint::parse("abcd").is_err());
        assert!(Fingerprint::parse(&"zz".repeat(32)).is_err());
        // Multi-byte characters must not panic on slicing.
        assert!(Fingerprint::parse(&"é".repeat(32)).is_err());
    }
}
