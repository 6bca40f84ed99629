use super::*;

fn users(yaml: &str) -> Vec<InternalUser> {
    serde_saphyr::from_str(yaml).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn basic(user: &str, pass: &str) -> Credentials {
    Credentials::Basic {
        user: user.into(),
        pass: pass.into(),
    }
}

const LOCKED: &str = r#"
- user: alice
  pass: wonderland
  permissions:
    - action: publish
    - action: read
- user: viewer
  pass: sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=
  ips: [10.0.0.0/8]
  permissions:
    - action: read
      path: ~^cam[0-9]+$
- user: any
  ips: [127.0.0.1]
  permissions:
    - action: api
"#;

#[test]
fn users_networks_permissions_and_credentials() {
    let u = users(LOCKED);
    let lan = ip("10.1.2.3");
    let auth =
        |ip, action, path, c: &Credentials| authenticate(&u, ip, action, path, c, "DESCRIBE");
    assert_eq!(
        auth(lan, Action::Publish, "cam1", &Credentials::None),
        Err(Denied::AskCredentials)
    );
    assert_eq!(
        auth(lan, Action::Publish, "cam1", &basic("alice", "wonderland")),
        Ok(Some("alice".into()))
    );
    assert_eq!(
        auth(lan, Action::Publish, "cam1", &basic("alice", "Wonderland")),
        Err(Denied::Wrong)
    );
    // viewer: read only, matching paths only, from 10/8 only; its password is "".
    assert_eq!(
        auth(lan, Action::Read, "cam12", &basic("viewer", "")),
        Ok(Some("viewer".into()))
    );
    assert_eq!(
        auth(lan, Action::Read, "lobby", &basic("viewer", "")),
        Err(Denied::Wrong)
    );
    assert_eq!(
        auth(lan, Action::Publish, "cam12", &basic("viewer", "")),
        Err(Denied::Wrong)
    );
    assert_eq!(
        auth(
            ip("192.168.1.1"),
            Action::Read,
            "cam12",
            &basic("viewer", "")
        ),
        Err(Denied::Wrong),
        "alice could still read there"
    );
    // The API: anyone from localhost (IPv4-mapped too), nobody else.
    assert_eq!(
        auth(ip("127.0.0.1"), Action::Api, "", &Credentials::None),
        Ok(None)
    );
    assert_eq!(
        auth(ip("::ffff:127.0.0.1"), Action::Api, "", &Credentials::None),
        Ok(None)
    );
    assert_eq!(
        auth(lan, Action::Api, "", &basic("alice", "wonderland")),
        Err(Denied::Forbidden)
    );
}

#[test]
fn default_users_let_anyone_publish_and_read_and_localhost_use_the_api() {
    let u = default_users();
    let far = ip("203.0.113.9");
    for a in [Action::Publish, Action::Read, Action::Playback] {
        assert_eq!(
            authenticate(&u, far, a, "x", &Credentials::None, ""),
            Ok(None)
        );
    }
    for a in [Action::Api, Action::Metrics, Action::Pprof] {
        assert_eq!(
            authenticate(&u, far, a, "", &Credentials::None, ""),
            Err(Denied::Forbidden)
        );
        assert_eq!(
            authenticate(&u, ip("::1"), a, "", &Credentials::None, ""),
            Ok(None)
        );
    }
}

#[test]
fn permission_paths_match_exactly_by_regex_or_all() {
    let p = |action: &str, path: &str| -> Permission {
        serde_saphyr::from_str(&format!("action: {action}\npath: '{path}'\n")).unwrap()
    };
    assert!(p("read", "").matches(Action::Read, "anything/at/all"));
    assert!(p("read", "cam").matches(Action::Read, "cam"));
    assert!(!p("read", "cam").matches(Action::Read, "cam2"));
    assert!(!p("read", "cam").matches(Action::Publish, "cam"));
    assert!(p("read", "~^live/").matches(Action::Read, "live/room"));
    assert!(!p("read", "~^live/").matches(Action::Read, "vod/live/x"));
    // Paths mean nothing to the API.
    assert!(p("api", "whatever").matches(Action::Api, ""));
    assert!(serde_saphyr::from_str::<Permission>("action: read\npath: '~('\n").is_err());
    assert!(serde_saphyr::from_str::<Permission>("action: delete\n").is_err());
}

#[test]
fn networks_parse_as_cidrs_or_addresses() {
    let n: IpNetwork = "192.168.0.0/16".parse().unwrap();
    assert!(n.contains(ip("192.168.44.1")) && !n.contains(ip("192.169.0.1")));
    let one: IpNetwork = "10.0.0.1".parse().unwrap();
    assert!(one.contains(ip("10.0.0.1")) && !one.contains(ip("10.0.0.2")));
    let v6: IpNetwork = "fd00::/8".parse().unwrap();
    assert!(v6.contains(ip("fd12::1")));
    assert!("10.0.0.0/33".parse::<IpNetwork>().is_err());
    assert!("camera".parse::<IpNetwork>().is_err());
}

#[test]
fn urls_in_logs_lose_their_password_and_query() {
    assert_eq!(
        redact_url("rtsp://admin:hunter2@cam.local:554/live"),
        "rtsp://admin:***@cam.local:554/live"
    );
    assert_eq!(
        redact_url("rtmp://host/live/cam?user=u&pass=hunter2"),
        "rtmp://host/live/cam"
    );
    assert_eq!(redact_url("not a url?pass=x"), "not a url");
}

#[test]
fn tokens_from_bearer_password_or_query_as_mediamtx() {
    let req = |creds: &'static Credentials, protocol: &'static str, query: &'static str| Request {
        ip: ip("10.0.0.1"),
        action: Action::Read,
        path: "cam",
        creds,
        method: "",
        protocol,
        query,
        id: None,
        user_agent: "",
    };
    static BEARER: std::sync::LazyLock<Credentials> =
        std::sync::LazyLock::new(|| Credentials::Token("tb".into()));
    static PASS: std::sync::LazyLock<Credentials> = std::sync::LazyLock::new(|| basic("", "tp"));
    static NONE: Credentials = Credentials::None;
    assert_eq!(token(&req(&BEARER, "hls", "token=tq"), false), "tb");
    assert_eq!(token(&req(&PASS, "rtsp", "token=tq"), false), "tp");
    assert_eq!(token(&req(&NONE, "rtsp", "a=1&token=tq"), false), "tq");
    assert_eq!(token(&req(&NONE, "rtmp", "jwt=tj"), false), "tj");
    // HTTP takes the query only when configured to; a repeated key is ambiguous.
    assert_eq!(token(&req(&NONE, "hls", "token=tq"), false), "");
    assert_eq!(token(&req(&NONE, "hls", "token=tq"), true), "tq");
    assert_eq!(token(&req(&NONE, "rtsp", "token=a&token=b"), false), "");
}

#[test]
fn external_methods_are_validated_at_load() {
    let parse = |extra: &str| {
        crate::config::Config::parse(extra, "t")
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    assert!(parse("authMethod: http\n")
        .unwrap_err()
        .contains("authHTTPAddress"));
    assert!(parse("authMethod: http\nauthHTTPAddress: ftp://x/\n").is_err());
    parse("authMethod: http\nauthHTTPAddress: http://127.0.0.1:9/auth\n").unwrap();
    assert!(parse("authMethod: jwt\n")
        .unwrap_err()
        .contains("authJWTJWKS"));
    parse("authMethod: jwt\nauthJWTJWKS: https://idp.test/jwks\n").unwrap();
    let digest = "authMethod: jwt\nauthJWTJWKS: https://idp.test/jwks\nrtspAuthMethods: [digest]\n";
    assert!(parse(digest).unwrap_err().contains("digest"));
}

#[test]
fn ids_are_version_4_uuids() {
    let id = new_id();
    assert_eq!(id.len(), 36);
    assert_eq!(&id[14..15], "4");
    assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
    assert_ne!(id, new_id());
}
