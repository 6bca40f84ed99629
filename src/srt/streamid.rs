//! SRT stream ids as MediaMTX reads them (sans-io): `publish:<path>[:user:pass][:query]`,
//! `read:<path>[:user:pass][:query]`, and SRT's access-control syntax
//! `#!::m=publish|request,r=<path>,u=<user>,s=<pass>`.

/// libsrt refuses longer stream ids in the handshake; anything longer is not one.
pub const MAX_LEN: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Read,
    Publish,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamId {
    pub mode: Mode,
    pub path: String,
    pub user: String,
    pub pass: String,
    pub query: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamIdError {
    #[error("no stream id (use publish:<path> or read:<path>)")]
    Empty,
    #[error("stream id longer than {MAX_LEN} bytes")]
    TooLong,
    #[error("stream id must be 'publish|read:<path>[:query]' or 'publish|read:<path>:user:pass[:query]'")]
    Syntax,
    #[error("'{0}' in the stream id has no value")]
    NoValue(String),
    #[error("unsupported key '{0}' in the stream id")]
    Key(String),
    #[error("unsupported mode '{0}' in the stream id (publish or request)")]
    Mode(String),
    #[error("the stream id names no path")]
    NoPath,
}

impl StreamId {
    pub fn parse(raw: &str) -> Result<StreamId, StreamIdError> {
        if raw.is_empty() {
            return Err(StreamIdError::Empty);
        }
        if raw.len() > MAX_LEN {
            return Err(StreamIdError::TooLong);
        }
        let id = match raw.strip_prefix("#!::") {
            Some(pairs) => Self::keyed(pairs)?,
            None => Self::colons(raw)?,
        };
        if id.path.is_empty() {
            return Err(StreamIdError::NoPath);
        }
        Ok(id)
    }

    fn keyed(pairs: &str) -> Result<StreamId, StreamIdError> {
        let mut id = StreamId {
            mode: Mode::Read,
            path: String::new(),
            user: String::new(),
            pass: String::new(),
            query: String::new(),
        };
        for kv in pairs.split(',') {
            let Some((k, v)) = kv.split_once('=') else {
                return Err(StreamIdError::NoValue(kv.chars().take(32).collect()));
            };
            match k {
                "u" => id.user = v.to_string(),
                "r" => id.path = v.to_string(),
                "s" => id.pass = v.to_string(),
                // Host and type: accepted and not used, as MediaMTX does.
                "h" | "t" => {}
                "m" => {
                    id.mode = match v {
                        "request" => Mode::Read,
                        "publish" => Mode::Publish,
                        _ => return Err(StreamIdError::Mode(v.chars().take(32).collect())),
                    }
                }
                _ => return Err(StreamIdError::Key(k.chars().take(32).collect())),
            }
        }
        Ok(id)
    }

    fn colons(raw: &str) -> Result<StreamId, StreamIdError> {
        let parts: Vec<&str> = raw.split(':').collect();
        if !(2..=5).contains(&parts.len()) {
            return Err(StreamIdError::Syntax);
        }
        let mode = match parts[0] {
            "read" => Mode::Read,
            "publish" => Mode::Publish,
            _ => return Err(StreamIdError::Syntax),
        };
        let (user, pass) = match parts.len() {
            4 | 5 => (parts[2], parts[3]),
            _ => ("", ""),
        };
        let query = match parts.len() {
            3 => parts[2],
            5 => parts[4],
            _ => "",
        };
        Ok(StreamId {
            mode,
            path: parts[1].to_string(),
            user: user.to_string(),
            pass: pass.to_string(),
            query: query.to_string(),
        })
    }

    /// The credentials it carries, for the auth check: `user:pass` in the id, else
    /// whatever the query carries (`?user=&pass=`, `?token=`, `?jwt=` are read there).
    pub fn credentials(&self) -> crate::auth::Credentials {
        if self.user.is_empty() && self.pass.is_empty() {
            crate::auth::Credentials::None
        } else {
            crate::auth::Credentials::Basic {
                user: self.user.clone(),
                pass: self.pass.clone(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(mode: Mode, path: &str, user: &str, pass: &str, query: &str) -> StreamId {
        StreamId {
            mode,
            path: path.into(),
            user: user.into(),
            pass: pass.into(),
            query: query.into(),
        }
    }

    #[test]
    fn mediamtx_forms() {
        use Mode::*;
        let cases = [
            ("publish:cam", id(Publish, "cam", "", "", "")),
            ("read:cam", id(Read, "cam", "", "", "")),
            ("read:live/room", id(Read, "live/room", "", "", "")),
            ("read:cam:key=1", id(Read, "cam", "", "", "key=1")),
            (
                "publish:cam:me:secret",
                id(Publish, "cam", "me", "secret", ""),
            ),
            (
                "publish:cam:me:secret:token=x",
                id(Publish, "cam", "me", "secret", "token=x"),
            ),
            (
                "#!::m=publish,r=cam,u=me,s=secret",
                id(Publish, "cam", "me", "secret", ""),
            ),
            ("#!::r=cam,m=request", id(Read, "cam", "", "", "")),
            (
                "#!::r=cam,h=example.com,t=stream",
                id(Read, "cam", "", "", ""),
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(StreamId::parse(raw), Ok(want), "{raw}");
        }
    }

    #[test]
    fn refusals() {
        use StreamIdError::*;
        let long = format!("publish:{}", "a".repeat(600));
        let cases: [(&str, StreamIdError); 10] = [
            ("", Empty),
            (&long, TooLong),
            ("cam", Syntax),
            ("play:cam", Syntax),
            ("publish:a:b:c:d:e", Syntax),
            ("publish:", NoPath),
            ("#!::m=publish", NoPath),
            ("#!::r=cam,x=1", Key("x".into())),
            ("#!::r=cam,m=play", Mode("play".into())),
            ("#!::r=cam,m", NoValue("m".into())),
        ];
        for (raw, want) in cases {
            assert_eq!(StreamId::parse(raw), Err(want), "{raw}");
        }
    }

    #[test]
    fn credentials_only_when_given() {
        let with = StreamId::parse("read:cam:u:p").unwrap();
        assert!(matches!(
            with.credentials(),
            crate::auth::Credentials::Basic { .. }
        ));
        let without = StreamId::parse("read:cam").unwrap();
        assert_eq!(without.credentials(), crate::auth::Credentials::None);
    }
}
