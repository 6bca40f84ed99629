//! A permission of `authInternalUsers`: an action, and for publish/read/playback the
//! paths it covers (empty: all; a name; `~regex`).

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Publish,
    Read,
    Playback,
    Api,
    Metrics,
    Pprof,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Publish => "publish",
            Action::Read => "read",
            Action::Playback => "playback",
            Action::Api => "api",
            Action::Metrics => "metrics",
            Action::Pprof => "pprof",
        }
    }

    fn has_path(self) -> bool {
        matches!(self, Action::Publish | Action::Read | Action::Playback)
    }
}

#[derive(Debug, Clone)]
pub enum PathRule {
    Any,
    Exact(String),
    /// The expression as written (after `~`), compiled once at load.
    Regex(String, regex::Regex),
}

impl PartialEq for PathRule {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (PathRule::Any, PathRule::Any) => true,
            (PathRule::Exact(a), PathRule::Exact(b)) => a == b,
            (PathRule::Regex(a, _), PathRule::Regex(b, _)) => a == b,
            _ => false,
        }
    }
}

impl Eq for PathRule {}

impl std::str::FromStr for PathRule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.strip_prefix('~') {
            _ if s.is_empty() => Ok(PathRule::Any),
            Some(re) => regex::Regex::new(re)
                .map(|r| PathRule::Regex(re.to_string(), r))
                .map_err(|e| format!("invalid permission path {s:?}: {e}")),
            None => Ok(PathRule::Exact(s.trim_start_matches('/').to_string())),
        }
    }
}

impl PathRule {
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathRule::Any => true,
            PathRule::Exact(p) => p == path,
            PathRule::Regex(_, r) => r.is_match(path),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Permission {
    pub action: Action,
    #[serde(default = "any_path", deserialize_with = "path_rule")]
    pub path: PathRule,
}

fn any_path() -> PathRule {
    PathRule::Any
}

fn path_rule<'de, D: serde::Deserializer<'de>>(d: D) -> Result<PathRule, D::Error> {
    Option::<String>::deserialize(d)?
        .unwrap_or_default()
        .parse()
        .map_err(serde::de::Error::custom)
}

impl Permission {
    /// Whether this permission covers `action` on `path` (paths count only for
    /// publish, read and playback).
    pub fn matches(&self, action: Action, path: &str) -> bool {
        self.action == action && (!action.has_path() || self.path.matches(path))
    }
}
