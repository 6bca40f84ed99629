//! A configured user name or password, as MediaMTX writes them: plain text, `sha256:`
//! (base64 of the SHA-256 digest) or `argon2:` (a PHC string). Checks run in constant
//! time; `Debug` never shows the secret.

use base64::Engine;
use sha2::Digest;
use subtle::ConstantTimeEq;

/// What the API and logs print in place of a secret. A configured password equal to it
/// never authenticates: it is what a config read back from the API and written again
/// would hold.
pub const REDACTED: &str = "***";

#[derive(Clone, PartialEq, Eq, Default)]
pub enum Credential {
    /// Not set: for `pass`, no password is asked.
    #[default]
    Empty,
    Plain(String),
    Sha256([u8; 32]),
    /// The PHC string after `argon2:`, checked well-formed at load.
    Argon2(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Empty => f.write_str("Empty"),
            _ => f.write_str(REDACTED),
        }
    }
}

impl std::str::FromStr for Credential {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Ok(Credential::Empty);
        }
        if let Some(b64) = s.strip_prefix("sha256:") {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| "a sha256: credential must be the base64 of a SHA-256 digest")?;
            let digest: [u8; 32] = raw
                .try_into()
                .map_err(|_| "a sha256: credential must be 32 bytes (44 base64 characters)")?;
            return Ok(Credential::Sha256(digest));
        }
        if let Some(phc) = s.strip_prefix("argon2:") {
            let h =
                argon2::PasswordHash::new(phc).map_err(|e| format!("invalid argon2 hash: {e}"))?;
            argon2::Algorithm::try_from(h.algorithm)
                .and_then(|_| argon2::Params::try_from(&h))
                .map_err(|e| format!("invalid argon2 hash: {e}"))?;
            if h.salt.is_none() || h.hash.is_none() {
                return Err("invalid argon2 hash: no salt or hash".into());
            }
            return Ok(Credential::Argon2(phc.to_string()));
        }
        Ok(Credential::Plain(s.to_string()))
    }
}

impl<'de> serde::Deserialize<'de> for Credential {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // YAML may give a number (`pass: 1234`): take it as written.
        let v = serde_saphyr_scalar(d)?;
        v.parse().map_err(serde::de::Error::custom)
    }
}

fn serde_saphyr_scalar<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E>(self, v: &str) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_u64<E>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_unit<E>(self) -> Result<String, E> {
            Ok(String::new())
        }
        fn visit_none<E>(self) -> Result<String, E> {
            Ok(String::new())
        }
    }
    d.deserialize_any(V)
}

impl Credential {
    /// The value as the config writes it (`sha256:…`, `argon2:…` or the text).
    pub fn as_config_text(&self) -> String {
        match self {
            Credential::Empty => String::new(),
            Credential::Plain(s) => s.clone(),
            Credential::Sha256(d) => format!(
                "sha256:{}",
                base64::engine::general_purpose::STANDARD.encode(d)
            ),
            Credential::Argon2(phc) => format!("argon2:{phc}"),
        }
    }

    pub fn is_empty(&self) -> bool {
        matches!(self, Credential::Empty)
    }

    pub fn is_hashed(&self) -> bool {
        matches!(self, Credential::Sha256(_) | Credential::Argon2(_))
    }

    /// The plain value, where there is one (RTSP Digest needs it).
    pub fn plain(&self) -> Option<&str> {
        match self {
            Credential::Plain(p) if p != REDACTED => Some(p),
            _ => None,
        }
    }

    /// Whether `guess` matches; an empty credential matches anything.
    pub fn check(&self, guess: &str) -> bool {
        match self {
            Credential::Empty => true,
            Credential::Plain(p) => {
                p != REDACTED && bool::from(p.as_bytes().ct_eq(guess.as_bytes()))
            }
            Credential::Sha256(d) => {
                let got: [u8; 32] = sha2::Sha256::digest(guess.as_bytes()).into();
                bool::from(d.ct_eq(&got))
            }
            Credential::Argon2(phc) => {
                use argon2::password_hash::PasswordVerifier;
                argon2::PasswordHash::new(phc).is_ok_and(|h| {
                    argon2::Argon2::default()
                        .verify_password(guess.as_bytes(), &h)
                        .is_ok()
                })
            }
        }
    }
}

/// `argon2:` followed by an Argon2id PHC string of `password` with a fresh salt: what
/// `mediarouter --hash-password` prints.
pub fn hash_password(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    let phc = argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters hashes any password");
    format!("argon2:{phc}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_sha256_and_argon2_check_and_hide() {
        let plain: Credential = "s3cret".parse().unwrap();
        assert!(plain.check("s3cret") && !plain.check("s3cre") && !plain.check("s3cret!"));
        // The SHA-256 of the empty string, as `openssl dgst -binary -sha256 | base64` prints it.
        let empty: Credential = "sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
            .parse()
            .unwrap();
        assert!(empty.check("") && !empty.check(" "));
        let want =
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(b"s3cret"));
        let sha2: Credential = format!("sha256:{want}").parse().unwrap();
        assert!(sha2.check("s3cret") && !sha2.check("other"));
        let argon: Credential = hash_password("s3cret").parse().unwrap();
        assert!(argon.check("s3cret") && !argon.check("S3cret"));
        for c in [&plain, &sha2, &argon] {
            assert_eq!(format!("{c:?}"), REDACTED);
            assert!(!format!("{c:?}").contains("s3cret"));
        }
        assert!(Credential::Empty.check("anything"));
    }

    #[test]
    fn the_redacted_placeholder_never_authenticates() {
        let c: Credential = REDACTED.parse().unwrap();
        assert!(!c.check(REDACTED));
        assert_eq!(c.plain(), None);
    }

    #[test]
    fn malformed_hashes_are_refused_at_load() {
        assert!("sha256:not base64!".parse::<Credential>().is_err());
        assert!("sha256:AAAA".parse::<Credential>().is_err());
        assert!("argon2:$argon2id$garbage".parse::<Credential>().is_err());
    }
}
