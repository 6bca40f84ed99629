//! Who may do what (MediaMTX's `authMethod: internal` model): the user list with
//! credentials, networks and permissions, the check each protocol runs before a
//! publish, read or API call, and the log line and delay that follow a failure.

pub mod credential;
mod external;
pub mod failures;
mod gate;
pub mod header;
pub mod jwt;
mod permission;
pub mod sessions;

pub use credential::{hash_password, Credential, REDACTED};
pub use gate::{Gate, Request};
pub use permission::{Action, PathRule, Permission};

use serde::Deserialize;
use std::net::IpAddr;

/// A URL as logs and the API show it: the password as `***`, and no query (stream
/// keys, `pass=` and tokens ride there).
pub fn redact_url(url: &str) -> String {
    let no_query = url.split('?').next().unwrap_or(url);
    match url::Url::parse(no_query) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some(REDACTED));
            u.to_string()
        }
        _ => no_query.to_string(),
    }
}

/// A random version-4 UUID: a connection's id, as an auth server is sent it.
pub fn new_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// A network of `ips`: a CIDR, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNetwork(pub ipnet::IpNet);

impl std::str::FromStr for IpNetwork {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.parse::<ipnet::IpNet>()
            .map(|n| IpNetwork(n.trunc()))
            .or_else(|_| s.parse::<IpAddr>().map(|a| IpNetwork(a.into())))
            .map_err(|_| format!("invalid IP or CIDR {s:?}"))
    }
}

impl<'de> Deserialize<'de> for IpNetwork {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl IpNetwork {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }
}

/// One entry of `authInternalUsers`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct InternalUser {
    /// `any` is everyone, anonymous included.
    pub user: Credential,
    #[serde(default)]
    pub pass: Credential,
    /// Networks the user may come from; empty: any.
    #[serde(default)]
    pub ips: Vec<IpNetwork>,
    #[serde(default)]
    pub permissions: Vec<Permission>,
}

impl InternalUser {
    pub fn is_any(&self) -> bool {
        self.user == Credential::Plain("any".into())
    }

    fn allows(&self, ip: IpAddr, action: Action, path: &str) -> bool {
        (self.ips.is_empty() || self.ips.iter().any(|n| n.contains(ip)))
            && self.permissions.iter().any(|p| p.matches(action, path))
    }
}

/// MediaMTX's default users: anyone may publish, read and play back; the API, metrics
/// and pprof answer localhost only.
pub fn default_users() -> Vec<InternalUser> {
    let perms = |actions: &[Action]| {
        actions
            .iter()
            .map(|a| Permission {
                action: *a,
                path: PathRule::Any,
            })
            .collect()
    };
    vec![
        InternalUser {
            user: Credential::Plain("any".into()),
            pass: Credential::Empty,
            ips: Vec::new(),
            permissions: perms(&[Action::Publish, Action::Read, Action::Playback]),
        },
        InternalUser {
            user: Credential::Plain("any".into()),
            pass: Credential::Empty,
            ips: ["127.0.0.1", "::1"]
                .iter()
                .map(|s| s.parse().unwrap())
                .collect(),
            permissions: perms(&[Action::Api, Action::Metrics, Action::Pprof]),
        },
    ]
}

/// What a client presented.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Credentials {
    #[default]
    None,
    Basic {
        user: String,
        pass: String,
    },
    /// An RTSP Digest response, checked against the plain password.
    Digest(header::DigestResponse),
    /// `Authorization: Bearer <token>` (a JWT, or whatever an auth server takes).
    Token(String),
}

impl Credentials {
    /// User and password as an auth server is sent them (empty when not Basic).
    pub fn user_pass(&self) -> (&str, &str) {
        match self {
            Credentials::Basic { user, pass } => (user, pass),
            _ => ("", ""),
        }
    }
}

/// The token `authMethod: http` and `jwt` check, found as MediaMTX finds it: a Bearer
/// token, else the password, else (RTSP and RTMP, which have nowhere else to put one,
/// and HTTP when `query_allowed`) the query's `token` or the older `jwt`.
pub fn token(req: &Request<'_>, query_allowed: bool) -> String {
    match req.creds {
        Credentials::Token(t) if !t.is_empty() => return t.clone(),
        Credentials::Basic { pass, .. } if !pass.is_empty() => return pass.clone(),
        _ => {}
    }
    if matches!(req.protocol, "rtsp" | "rtmp") || query_allowed {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(req.query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        for key in ["token", "jwt"] {
            let mut found = pairs.iter().filter(|(k, _)| k == key);
            if let (Some((_, v)), None) = (found.next(), found.next()) {
                return v.clone();
            }
        }
    }
    String::new()
}

/// Why an external method (auth server, JWT) said no: the client's fault, or its
/// own (unreachable, timed out, a 5xx, no key set), which must not count against the
/// client's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Denied(String),
    Unavailable(String),
}

/// `user=`/`pass=` of a URL query (MediaMTX's way for protocols without their own
/// authentication: RTMP's URL, SRT's stream id).
pub fn query_credentials(query: &str) -> Credentials {
    let (mut user, mut pass) = (None, None);
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "user" => user = Some(v.into_owned()),
            "pass" => pass = Some(v.into_owned()),
            _ => {}
        }
    }
    if user.is_none() && pass.is_none() {
        return Credentials::None;
    }
    Credentials::Basic {
        user: user.unwrap_or_default(),
        pass: pass.unwrap_or_default(),
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No credentials came and some user could allow it with them: ask for them.
    AskCredentials,
    /// Credentials came and matched no user allowed to do this.
    Wrong,
    /// Nobody may do this from there, whatever the credentials.
    Forbidden,
}

/// Runs the internal user list over a request: the first user whose networks,
/// permissions and credentials all match allows it. `method` is the RTSP method a
/// Digest response was computed for.
pub fn authenticate(
    users: &[InternalUser],
    ip: IpAddr,
    action: Action,
    path: &str,
    creds: &Credentials,
    method: &str,
) -> Result<Option<String>, Denied> {
    let mut could = false;
    for u in users.iter().filter(|u| u.allows(ip, action, path)) {
        if u.is_any() {
            return Ok(None);
        }
        could = true;
        let ok = match creds {
            Credentials::None | Credentials::Token(_) => false,
            // Both compared, in constant time each: no early exit on the user name.
            Credentials::Basic { user, pass } => u.user.check(user) & u.pass.check(pass),
            Credentials::Digest(d) => match (u.user.plain(), u.pass.plain()) {
                (Some(user), Some(pass)) => d.verify(user, pass, method),
                (Some(user), None) if u.pass.is_empty() => d.verify(user, "", method),
                _ => false,
            },
        };
        if ok {
            return Ok(Some(match creds {
                Credentials::Basic { user, .. } => user.clone(),
                Credentials::Digest(d) => d.username.clone(),
                Credentials::None | Credentials::Token(_) => String::new(),
            }));
        }
    }
    Err(match (could, creds) {
        (false, _) => Denied::Forbidden,
        (true, Credentials::None) => Denied::AskCredentials,
        (true, _) => Denied::Wrong,
    })
}

#[cfg(test)]
mod tests;
