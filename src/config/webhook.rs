//! `webhooks:` entries of a path: where path events are POSTed, which ones, and
//! whether the reply decides publish and read requests.

use serde::Deserialize;

/// A path event a webhook can be told of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Event {
    /// A publisher took the path (or a source started filling it).
    Publish,
    Unpublish,
    /// The stream became readable / stopped being readable.
    Ready,
    NotReady,
    /// A reader started / stopped reading.
    Read,
    Unread,
    /// A recording segment's file was created / is complete.
    RecordSegmentCreate,
    RecordSegmentComplete,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Webhook {
    /// `http://` or `https://`.
    #[serde(deserialize_with = "http_url")]
    pub url: String,
    /// Which events; all when left out.
    #[serde(default)]
    pub events: Vec<Event>,
    /// The reply to `publish` events decides them: 2xx allows, anything else (or no
    /// answer within readTimeout) refuses the publisher, before it gets the path.
    #[serde(default)]
    pub allow: bool,
    /// SHA-256 of a self-signed `https://` receiver's certificate.
    #[serde(default)]
    pub fingerprint: Option<crate::tls::Fingerprint>,
}

impl Webhook {
    pub fn wants(&self, e: Event) -> bool {
        self.events.is_empty() || self.events.contains(&e)
    }

    /// Whether this webhook decides `e` (a publish).
    pub fn decides(&self, e: Event) -> bool {
        self.allow && e == Event::Publish && self.wants(e)
    }
}

fn http_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    match url::Url::parse(&s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(s),
        _ => Err(serde::de::Error::custom(format!(
            "webhook url {:?}: want http://host/… or https://host/…",
            crate::auth::redact_url(&s)
        ))),
    }
}
