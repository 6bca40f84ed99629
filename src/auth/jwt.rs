//! `authMethod: jwt`: tokens signed by an identity server, checked against its public
//! keys (the JWK set at `authJWTJWKS`, fetched on first use, again after an hour, on
//! `POST /v3/auth/jwks/refresh`, and when a token names a key the set lacks).
//! jsonwebtoken verifies; the permissions come from the `authJWTClaimKey` claim.

use super::{Action, Permission, Refusal};
use crate::config::Config;
use bytes::Bytes;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A fetched set is used this long before it is fetched again.
pub const REFRESH: Duration = Duration::from_secs(3600);
/// A token naming an unknown key refetches the set, but not more often than this.
const UNKNOWN_KEY_REFETCH: Duration = Duration::from_secs(10);
/// Largest JWK set read.
const MAX_JWKS: usize = 128 * 1024;

struct Fetched {
    url: String,
    keys: Arc<JwkSet>,
    at: Instant,
}

#[derive(Default)]
pub struct Jwks {
    /// Held across a fetch, so that sessions arriving meanwhile wait for it (bounded
    /// by `readTimeout`) rather than fetch again.
    state: tokio::sync::Mutex<Option<Fetched>>,
}

/// A verified token: who (`sub`) and what it allows.
#[derive(Debug)]
pub struct Claims {
    pub subject: String,
    pub permissions: Vec<Permission>,
}

impl Jwks {
    /// The next check fetches the set again.
    pub async fn refresh(&self) {
        *self.state.lock().await = None;
    }

    async fn keys(
        &self,
        cfg: &Config,
        stale_before: Option<Instant>,
    ) -> Result<Arc<JwkSet>, String> {
        let mut state = self.state.lock().await;
        if let Some(f) = state.as_ref() {
            let fresh = f.url == cfg.auth_jwt_jwks
                && f.at.elapsed() < REFRESH
                && stale_before.is_none_or(|t| f.at >= t);
            if fresh {
                return Ok(f.keys.clone());
            }
        }
        let body = tokio::time::timeout(cfg.read_timeout.0, fetch(cfg))
            .await
            .map_err(|_| format!("JWKS fetch timed out after {:?}", cfg.read_timeout.0))??;
        let keys: JwkSet =
            serde_json::from_slice(&body).map_err(|e| format!("JWKS is not a JWK set: {e}"))?;
        let keys = Arc::new(keys);
        *state = Some(Fetched {
            url: cfg.auth_jwt_jwks.clone(),
            keys: keys.clone(),
            at: Instant::now(),
        });
        Ok(keys)
    }

    /// Verifies `token` (signature, `exp`, `nbf`, and `iss`/`aud` when configured) and
    /// reads its permissions.
    pub async fn verify(&self, cfg: &Config, token: &str) -> Result<Claims, Refusal> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| Refusal::Denied(format!("bad JWT: {e}")))?;
        let mut keys = self.keys(cfg, None).await.map_err(Refusal::Unavailable)?;
        if let Some(kid) = &header.kid {
            if keys.find(kid).is_none() {
                let recent = Instant::now()
                    .checked_sub(UNKNOWN_KEY_REFETCH)
                    .unwrap_or_else(Instant::now);
                keys = self
                    .keys(cfg, Some(recent))
                    .await
                    .map_err(Refusal::Unavailable)?;
            }
        }
        verify_with(cfg, &keys, token, header).map_err(Refusal::Denied)
    }
}

async fn fetch(cfg: &Config) -> Result<Bytes, String> {
    let uri = crate::http::client::parse(&cfg.auth_jwt_jwks).map_err(|e| e.to_string())?;
    let mut conn = crate::http::client::HttpConn::open_pinned(&uri, cfg.auth_jwt_jwks_fingerprint)
        .await
        .map_err(|e| format!("JWKS: {e:#}"))?;
    conn.get_body_limited(&uri, MAX_JWKS)
        .await
        .map_err(|e| format!("JWKS: {e:#}"))
}

fn verify_with(
    cfg: &Config,
    keys: &JwkSet,
    token: &str,
    header: jsonwebtoken::Header,
) -> Result<Claims, String> {
    if matches!(
        header.alg,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    ) {
        // A shared secret can't come from a public key set.
        return Err(format!("JWT algorithm {:?} is not accepted", header.alg));
    }
    let candidates: Vec<_> = match &header.kid {
        Some(kid) => keys.find(kid).into_iter().collect(),
        None => keys.keys.iter().collect(),
    };
    if candidates.is_empty() {
        return Err("JWT signed with a key the JWKS doesn't have".into());
    }
    let mut v = Validation::new(header.alg);
    // As MediaMTX: exp and nbf are checked when present, no grace period.
    v.required_spec_claims.clear();
    v.leeway = 0;
    v.validate_nbf = true;
    if cfg.auth_jwt_issuer.is_empty() {
        v.iss = None;
    } else {
        v.set_issuer(&[&cfg.auth_jwt_issuer]);
    }
    if cfg.auth_jwt_audience.is_empty() {
        v.validate_aud = false;
    } else {
        v.set_audience(&[&cfg.auth_jwt_audience]);
    }
    let mut last = String::from("no key of the JWKS fits the JWT");
    for jwk in candidates {
        // A key that declares its algorithm is used with no other (algorithm confusion).
        if let Some(alg) = jwk.common.key_algorithm {
            if format!("{alg:?}") != format!("{:?}", header.alg) {
                continue;
            }
        }
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        match jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(token, &key, &v) {
            Ok(data) => return claims(cfg, data.claims),
            Err(e) => last = format!("JWT refused: {e}"),
        }
    }
    Err(last)
}

fn claims(cfg: &Config, map: serde_json::Map<String, serde_json::Value>) -> Result<Claims, String> {
    let key = &cfg.auth_jwt_claim_key;
    let raw = map
        .get(key)
        .ok_or_else(|| format!("claim {key:?} not found in the JWT"))?;
    // The permissions as JSON, or as a string holding that JSON (what some identity
    // servers can put in a custom claim).
    let permissions: Vec<Permission> = match raw {
        serde_json::Value::String(s) => serde_json::from_str(s),
        v => serde_json::from_value(v.clone()),
    }
    .map_err(|e| format!("claim {key:?}: {e}"))?;
    let subject = map
        .get("sub")
        .and_then(|s| s.as_str())
        .unwrap_or_default()
        .to_string();
    Ok(Claims {
        subject,
        permissions,
    })
}

impl Claims {
    pub fn allows(&self, action: Action, path: &str) -> bool {
        self.permissions.iter().any(|p| p.matches(action, path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_from_json_or_a_json_string() {
        let cfg = Config::default();
        let perms = serde_json::json!([{"action": "read", "path": "~^cam"}, {"action": "api"}]);
        let mut map = serde_json::Map::new();
        map.insert("sub".into(), "alice".into());
        map.insert("mediamtx_permissions".into(), perms.clone());
        let c = claims(&cfg, map.clone()).unwrap();
        assert_eq!(c.subject, "alice");
        assert!(c.allows(Action::Read, "cam1"));
        assert!(!c.allows(Action::Read, "other"));
        assert!(!c.allows(Action::Publish, "cam1"));
        assert!(c.allows(Action::Api, ""));
        map.insert("mediamtx_permissions".into(), perms.to_string().into());
        assert!(claims(&cfg, map.clone())
            .unwrap()
            .allows(Action::Read, "cam2"));
        map.remove("mediamtx_permissions");
        assert!(claims(&cfg, map).unwrap_err().contains("not found"));
    }
}
