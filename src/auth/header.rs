//! `Authorization` / `WWW-Authenticate` values, sans-io: Basic (RFC 7617) and RTSP's
//! Digest (RFC 2617 with MD5; `qop=auth` when the client uses it). Written here: the
//! crates for Digest are client-side.

use base64::Engine;
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

pub const REALM: &str = "mediarouter";

/// The parameters of a `Digest` response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DigestResponse {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub qop: Option<String>,
    pub nc: Option<String>,
    pub cnonce: Option<String>,
}

/// What an `Authorization` header holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    Basic { user: String, pass: String },
    Bearer(String),
    Digest(DigestResponse),
}

/// Parses an `Authorization` value; `None` for anything malformed or unknown.
pub fn parse(value: &str) -> Option<Authorization> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (user, pass) = text.split_once(':')?;
        return Some(Authorization::Basic {
            user: user.to_string(),
            pass: pass.to_string(),
        });
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        return (!rest.is_empty()).then(|| Authorization::Bearer(rest.to_string()));
    }
    if scheme.eq_ignore_ascii_case("digest") {
        let mut d = DigestResponse::default();
        for (k, v) in params(rest)? {
            let slot = match k.to_ascii_lowercase().as_str() {
                "username" => &mut d.username,
                "realm" => &mut d.realm,
                "nonce" => &mut d.nonce,
                "uri" => &mut d.uri,
                "response" => &mut d.response,
                "qop" => d.qop.insert(String::new()),
                "nc" => d.nc.insert(String::new()),
                "cnonce" => d.cnonce.insert(String::new()),
                "algorithm" if !v.eq_ignore_ascii_case("md5") => return None,
                _ => continue,
            };
            *slot = v;
        }
        if d.username.is_empty() || d.nonce.is_empty() || d.response.is_empty() {
            return None;
        }
        return Some(Authorization::Digest(d));
    }
    None
}

/// `k=v` or `k="v"` pairs separated by commas; `None` when quoting is broken.
fn params(s: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = s.trim_start_matches([' ', ',']);
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let key = rest[..eq].trim().to_string();
        if key.is_empty() || key.contains([' ', ',', '"']) {
            return None;
        }
        rest = &rest[eq + 1..];
        let value;
        if let Some(q) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => v.push(chars.next()?.1),
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => v.push(c),
                }
            }
            value = v;
            rest = &q[end?..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        out.push((key, value));
        rest = rest.trim_start_matches([' ', ',']);
    }
    Some(out)
}

fn md5_hex(parts: &[&str]) -> String {
    let mut h = Md5::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

impl DigestResponse {
    /// Whether `response` is what `user`/`pass` give for `method` on this response's
    /// URI, nonce and realm. The caller checks nonce, realm and URI are its own.
    pub fn verify(&self, user: &str, pass: &str, method: &str) -> bool {
        let ha1 = md5_hex(&[user, &self.realm, pass]);
        let ha2 = md5_hex(&[method, &self.uri]);
        let want = match (&self.qop, &self.nc, &self.cnonce) {
            (Some(qop), Some(nc), Some(cnonce)) => {
                md5_hex(&[&ha1, &self.nonce, nc, cnonce, qop, &ha2])
            }
            _ => md5_hex(&[&ha1, &self.nonce, &ha2]),
        };
        let user_ok = self.username.as_bytes().ct_eq(user.as_bytes());
        let resp_ok = want
            .as_bytes()
            .ct_eq(self.response.to_ascii_lowercase().as_bytes());
        bool::from(user_ok & resp_ok)
    }
}

/// The `WWW-Authenticate` value asking for Basic credentials.
pub fn basic_challenge() -> String {
    format!("Basic realm=\"{REALM}\"")
}

/// The `WWW-Authenticate` value asking for a Digest response with `nonce`.
pub fn digest_challenge(nonce: &str) -> String {
    format!("Digest realm=\"{REALM}\", nonce=\"{nonce}\"")
}

/// The `Authorization` value a client sends for `method` on `uri` after the server's
/// `WWW-Authenticate` (one value, possibly several challenges): Digest when offered
/// (MD5, with `qop=auth` when the server asks for it), else Basic.
pub fn answer(challenge: &str, user: &str, pass: &str, method: &str, uri: &str) -> Option<String> {
    let lower = challenge.to_ascii_lowercase();
    if let Some(start) = lower.find("digest ") {
        let rest = &challenge[start + 7..];
        // The Digest parameters end where another scheme begins.
        let end = rest
            .to_ascii_lowercase()
            .find("basic ")
            .unwrap_or(rest.len());
        let mut realm = String::new();
        let mut nonce = String::new();
        let mut opaque = None;
        let mut qop_auth = false;
        for (k, v) in params(rest[..end].trim_end_matches([' ', ','])).unwrap_or_default() {
            match k.to_ascii_lowercase().as_str() {
                "realm" => realm = v,
                "nonce" => nonce = v,
                "opaque" => opaque = Some(v),
                "qop" => qop_auth = v.split(',').any(|q| q.trim() == "auth"),
                "algorithm" if !v.eq_ignore_ascii_case("md5") => return None,
                _ => {}
            }
        }
        let ha1 = md5_hex(&[user, &realm, pass]);
        let ha2 = md5_hex(&[method, uri]);
        let q = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let mut out = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\"",
            q(user),
            q(&realm),
            q(&nonce),
            q(uri)
        );
        if qop_auth {
            let cnonce = new_nonce();
            let response = md5_hex(&[&ha1, &nonce, "00000001", &cnonce, "auth", &ha2]);
            out +=
                &format!(", response=\"{response}\", qop=auth, nc=00000001, cnonce=\"{cnonce}\"");
        } else {
            out += &format!(", response=\"{}\"", md5_hex(&[&ha1, &nonce, &ha2]));
        }
        if let Some(o) = opaque {
            out += &format!(", opaque=\"{}\"", q(&o));
        }
        return Some(out);
    }
    lower.contains("basic").then(|| {
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        format!("Basic {b64}")
    })
}

/// A fresh nonce: 128 random bits in hex.
pub fn new_nonce() -> String {
    let n: u128 = rand::random();
    format!("{n:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_and_bearer() {
        // "Aladdin:open sesame", RFC 7617 §2.
        assert_eq!(
            parse("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
            Some(Authorization::Basic {
                user: "Aladdin".into(),
                pass: "open sesame".into()
            })
        );
        assert_eq!(parse("basic !!!"), None);
        assert_eq!(parse("Basic dXNlcg=="), None, "no colon");
        assert_eq!(
            parse("Bearer abc.def"),
            Some(Authorization::Bearer("abc.def".into()))
        );
        assert_eq!(parse("Bearer"), None);
        assert_eq!(parse("Negotiate xyz"), None);
    }

    #[test]
    fn digest_rfc2617_example_verifies() {
        // RFC 2617 §3.5, with qop=auth.
        let h = r#"Digest username="Mufasa", realm="testrealm@host.com",
            nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth,
            nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1",
            opaque="5ccc069c403ebaf9f0171e9517f40e41""#;
        let Some(Authorization::Digest(d)) = parse(h) else {
            panic!("not parsed");
        };
        assert_eq!(d.uri, "/dir/index.html");
        assert!(d.verify("Mufasa", "Circle Of Life", "GET"));
        assert!(!d.verify("Mufasa", "circle of life", "GET"));
        assert!(!d.verify("mufasa", "Circle Of Life", "GET"));
        assert!(!d.verify("Mufasa", "Circle Of Life", "POST"));
    }

    #[test]
    fn digest_without_qop_as_ffmpeg_sends_it() {
        let (user, pass, nonce, uri) = ("u", "p", "abc", "rtsp://h/cam");
        let ha1 = md5_hex(&[user, REALM, pass]);
        let ha2 = md5_hex(&["DESCRIBE", uri]);
        let resp = md5_hex(&[&ha1, nonce, &ha2]);
        let h = format!(
            "Digest username=\"{user}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\""
        );
        let Some(Authorization::Digest(d)) = parse(&h) else {
            panic!("not parsed");
        };
        assert!(d.verify(user, pass, "DESCRIBE"));
        assert!(!d.verify(user, "q", "DESCRIBE"));
        assert_eq!(parse(&format!("{h}, algorithm=SHA-256")), None);
    }

    #[test]
    fn client_answers_verify_on_the_server_side() {
        let nonce = new_nonce();
        let uri = "rtsps://cam:322/live";
        for challenge in [
            format!("{}, {}", digest_challenge(&nonce), basic_challenge()),
            format!("Digest realm=\"{REALM}\", nonce=\"{nonce}\", qop=\"auth\", opaque=\"x\""),
        ] {
            let a = answer(&challenge, "ad\"min", "p:ss", "DESCRIBE", uri).unwrap();
            let Some(Authorization::Digest(d)) = parse(&a) else {
                panic!("{a}");
            };
            assert_eq!((d.nonce.as_str(), d.uri.as_str()), (nonce.as_str(), uri));
            assert!(d.verify("ad\"min", "p:ss", "DESCRIBE"), "{a}");
            assert!(!d.verify("ad\"min", "wrong", "DESCRIBE"));
        }
        let a = answer(&basic_challenge(), "u", "p", "DESCRIBE", uri).unwrap();
        assert_eq!(
            parse(&a),
            Some(Authorization::Basic {
                user: "u".into(),
                pass: "p".into()
            })
        );
        assert_eq!(
            answer(
                "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256",
                "u",
                "p",
                "DESCRIBE",
                uri
            ),
            None
        );
        assert_eq!(answer("Negotiate", "u", "p", "DESCRIBE", uri), None);
    }

    #[test]
    fn broken_digest_headers_are_refused() {
        for h in [
            "Digest",
            "Digest username=\"a",
            "Digest username=\"a\", nonce=\"n\"",
            "Digest =x",
            "Digest username=\"a\\",
            "Digest a b=c",
        ] {
            assert!(!matches!(parse(h), Some(Authorization::Digest(_))), "{h}");
        }
    }
}
