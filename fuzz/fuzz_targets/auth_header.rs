//! `Authorization` values (Basic, Bearer, Digest with quoting and escapes) and the
//! permission matcher: parsing never panics, and a parsed Digest response verifies
//! without panicking whatever its fields hold.
#![no_main]
use mediarouter::auth::{header, Action, PathRule};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(header::Authorization::Digest(d)) = header::parse(text) {
        let _ = d.verify("user", "pass", "DESCRIBE");
    }
    // The first line as a permission path, the rest as a requested path.
    let (rule, path) = text.split_once('\n').unwrap_or((text, ""));
    if let Ok(rule) = rule.parse::<PathRule>() {
        let _ = rule.matches(path);
    }
    let _ = Action::Read.as_str();
});
