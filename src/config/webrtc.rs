//! `webrtcICEServers2`: the STUN and TURN servers handed to WebRTC clients.

use serde::{Deserialize, Serialize};

/// One ICE server as MediaMTX writes it. `username: AUTH_SECRET` makes the password
/// a shared secret from which each client gets short-lived TURN credentials.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IceServer {
    pub url: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    /// Given to clients only; the server itself gathers no candidates through it.
    #[serde(default)]
    pub client_only: bool,
}

/// Without the password: configs end up in debug logs.
impl std::fmt::Debug for IceServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceServer")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("client_only", &self.client_only)
            .finish_non_exhaustive()
    }
}

impl IceServer {
    pub(super) fn validate(&self) -> Result<(), String> {
        let scheme = self.url.split(':').next().unwrap_or_default();
        if !matches!(scheme, "stun" | "stuns" | "turn" | "turns") || !self.url.contains(':') {
            return Err(format!(
                "webrtcICEServers2: {:?} is not a stun:, stuns:, turn: or turns: URL",
                self.url
            ));
        }
        Ok(())
    }
}
