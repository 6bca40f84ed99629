//! `mediarouter.yml` text with environment overrides: the bytes before the first NUL
//! are the YAML, the lines after it `NAME=value` variables (`MTX_…`, `MEDIAROUTER_…`).
//! Loading returns a config or an error, never panics; what loads renders back.
#![no_main]
use mediarouter::config::Config;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (yaml, env) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let (Ok(yaml), Ok(env)) = (std::str::from_utf8(yaml), std::str::from_utf8(env)) else {
        return;
    };
    let vars: Vec<(String, String)> = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let _ = Config::load_text(yaml, "fuzz.yml", vars);
});
