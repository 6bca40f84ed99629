//! TLS for the listeners (`hlsEncryption`, `apiEncryption`): rustls with the key and
//! certificate chain read from PEM files, read again when either file changes (checked
//! at each handshake), so a renewed certificate (certbot, cert-manager) is served to
//! new connections without a restart, and open sessions stay.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// A key and certificate on disk, with what was last loaded from them.
#[derive(Debug)]
pub struct CertFiles {
    key: PathBuf,
    cert: PathBuf,
    loaded: Mutex<(Option<SystemTime>, Option<SystemTime>, Arc<CertifiedKey>)>,
}

fn mtime(p: &PathBuf) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn load(key: &PathBuf, cert: &PathBuf) -> Result<Arc<CertifiedKey>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate", cert.display()));
    }
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| format!("{}: {e}", key.display()))?;
    let ck = CertifiedKey::new(chain, signing);
    ck.keys_match()
        .map_err(|e| format!("{} and {}: {e}", key.display(), cert.display()))?;
    Ok(Arc::new(ck))
}

impl CertFiles {
    /// Loads both files now: a listener with a bad key or certificate doesn't open.
    pub fn open(key: &str, cert: &str) -> Result<Arc<CertFiles>, String> {
        let (key, cert) = (PathBuf::from(key), PathBuf::from(cert));
        let ck = load(&key, &cert)?;
        let loaded = Mutex::new((mtime(&key), mtime(&cert), ck));
        Ok(Arc::new(CertFiles { key, cert, loaded }))
    }

    /// The current key and chain, read again when a file's modification time changed;
    /// a file that no longer loads keeps the previous one serving (and says so).
    fn current(&self) -> Arc<CertifiedKey> {
        let mut l = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        let now = (mtime(&self.key), mtime(&self.cert));
        if (l.0, l.1) != now {
            match load(&self.key, &self.cert) {
                Ok(ck) => {
                    tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
                    *l = (now.0, now.1, ck);
                }
                Err(e) => {
                    tracing::warn!("TLS certificate not reloaded, the previous one stays: {e}");
                    l.0 = now.0;
                    l.1 = now.1;
                }
            }
        }
        l.2.clone()
    }

    /// A rustls server config that asks this for its certificate at each handshake.
    pub fn server_config(self: &Arc<Self>, alpn: &[&[u8]]) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut c = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Resolver(self.clone())));
        c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(c)
    }
}

#[derive(Debug)]
struct Resolver(Arc<CertFiles>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current())
    }
}
