//! A TLS front for tests: terminates TLS with a generated certificate and forwards the
//! plain bytes to a test server's listener, so TLS sources and push have a real peer.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::SocketAddr;
use std::sync::Arc;

pub struct Cert {
    chain: Vec<CertificateDer<'static>>,
    key: PrivatePkcs8KeyDer<'static>,
    /// SHA-256 of the leaf, as `sourceFingerprint` takes it.
    pub fingerprint: String,
    /// The issuing CA in PEM (the leaf itself when self-signed), for `SSL_CERT_FILE`.
    pub ca_pem: String,
}

fn names() -> Vec<String> {
    vec!["localhost".into(), "127.0.0.1".into()]
}

pub fn self_signed() -> Cert {
    let c = rcgen::generate_simple_self_signed(names()).unwrap();
    let der = c.cert.der().clone();
    Cert {
        fingerprint: mediarouter::tls::Fingerprint::of(&der).to_string(),
        ca_pem: c.cert.pem(),
        chain: vec![der],
        key: PrivatePkcs8KeyDer::from(c.signing_key.serialize_der()),
    }
}

/// A leaf for localhost signed by a fresh CA.
pub fn ca_signed() -> Cert {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(names())
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let der = leaf.der().clone();
    Cert {
        fingerprint: mediarouter::tls::Fingerprint::of(&der).to_string(),
        ca_pem: ca.pem(),
        chain: vec![der],
        key: PrivatePkcs8KeyDer::from(key.serialize_der()),
    }
}

/// Listens on a free loopback port: each TLS connection is forwarded to `target`.
/// The front lives until the test process ends.
pub fn front(target: SocketAddr, cert: &Cert) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            cert.chain.clone(),
            PrivateKeyDer::Pkcs8(cert.key.clone_key()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((sock, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A handshake refused by the client ends here; that's what some tests want.
                    let Ok(mut tls) = acceptor.accept(sock).await else {
                        return;
                    };
                    let Ok(mut plain) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
    });
    addr
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

impl Cert {
    /// Writes the key and the chain as PEM files (what `*ServerKey`/`*ServerCert` name).
    pub fn write_pem(&self, key: &std::path::Path, cert: &std::path::Path) {
        let chain: String = self.chain.iter().map(|c| pem("CERTIFICATE", c)).collect();
        // Write to a temporary name and rename: a reader never sees half a file.
        for (path, text) in [
            (key, pem("PRIVATE KEY", self.key.secret_pkcs8_der())),
            (cert, chain),
        ] {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, path).unwrap();
        }
    }
}
