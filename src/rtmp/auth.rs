//! RTMP credentials, MediaMTX's way: `?user=U&pass=P` (or `?token=<jwt>`) on the stream
//! key or the app, since RTMP has no authentication of its own.

use crate::auth::Credentials;

/// The credentials in the query of `name` or, failing that, of `app`.
pub(crate) fn credentials(app: &str, name: &str) -> Credentials {
    [name, app]
        .into_iter()
        .filter_map(|part| part.split_once('?'))
        .map(|(_, query)| crate::auth::query_credentials(query))
        .find(|c| *c != Credentials::None)
        .unwrap_or(Credentials::None)
}

/// The query that carries them: the stream key's, else the app's.
pub(crate) fn query<'a>(app: &'a str, name: &'a str) -> &'a str {
    [name, app]
        .into_iter()
        .find_map(|p| p.split_once('?').map(|(_, q)| q))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_credentials_on_the_key_or_the_app() {
        let basic = |u: &str, p: &str| Credentials::Basic {
            user: u.into(),
            pass: p.into(),
        };
        assert_eq!(
            credentials("live", "cam?user=a&pass=b%26c"),
            basic("a", "b&c")
        );
        assert_eq!(credentials("live?user=a&pass=b", "cam"), basic("a", "b"));
        assert_eq!(credentials("live", "cam?pass=x"), basic("", "x"));
        assert_eq!(credentials("live", "cam?key=1"), Credentials::None);
        assert_eq!(credentials("live", "cam"), Credentials::None);
        assert_eq!(query("live", "cam?token=t"), "token=t");
        assert_eq!(query("live?jwt=j", "cam"), "jwt=j");
        assert_eq!(query("live", "cam"), "");
    }
}
