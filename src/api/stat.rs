//! `GET /stat`: nginx-rtmp's `rtmp_stat all` XML (rtmp → server → application → live
//! → stream → client, meta), so scripts and stat.xsl pages written for nginx-rtmp keep
//! working. A path `app/rest` is application `app`, stream `rest` (as an RTMP URL
//! maps); clients of every protocol are listed, with `<protocol>` added.

use super::ApiState;
use crate::core::{Codec, PathInfo, SessionState};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;
use std::collections::BTreeMap;
use std::io;
use std::time::SystemTime;

type W = Writer<Vec<u8>>;

fn text(w: &mut W, name: &str, value: impl ToString) -> io::Result<()> {
    w.create_element(name)
        .write_text_content(BytesText::new(&value.to_string()))?;
    Ok(())
}

fn flag(w: &mut W, name: &str) -> io::Result<()> {
    w.create_element(name).write_empty()?;
    Ok(())
}

fn ms_since(t: SystemTime) -> u128 {
    t.elapsed().unwrap_or_default().as_millis()
}

fn meta(w: &mut W, info: &PathInfo) -> io::Result<()> {
    let video = info.tracks.iter().find(|t| t.codec.is_video());
    let audio = info.tracks.iter().find(|t| !t.codec.is_video());
    w.create_element("meta").write_inner_content(|w| {
        if let Some(t) = video {
            let d = super::tracks::describe(t);
            w.create_element("video").write_inner_content(|w| {
                let p = &d.codec_props;
                if let (Some(width), Some(height)) = (p["width"].as_u64(), p["height"].as_u64()) {
                    text(w, "width", width)?;
                    text(w, "height", height)?;
                }
                text(w, "codec", &d.codec)?;
                if let Some(profile) = p["profile"].as_str() {
                    text(w, "profile", profile)?;
                }
                if let Some(level) = p["level"].as_str() {
                    // nginx-rtmp writes H.264 levels with a decimal: `3.0`.
                    let level = if level.contains('.') {
                        level.to_string()
                    } else {
                        format!("{level}.0")
                    };
                    text(w, "level", level)?;
                }
                Ok(())
            })?;
        }
        if let Some(t) = audio {
            w.create_element("audio").write_inner_content(|w| {
                match &t.codec {
                    Codec::Aac {
                        sample_rate,
                        channels,
                        ..
                    } => {
                        text(w, "codec", "AAC")?;
                        text(w, "channels", channels)?;
                        text(w, "sample_rate", sample_rate)?;
                    }
                    Codec::Opus { channels } => {
                        text(w, "codec", "Opus")?;
                        text(w, "channels", channels)?;
                        text(w, "sample_rate", t.clock_rate)?;
                    }
                    other => {
                        text(w, "codec", other.name())?;
                        text(w, "sample_rate", t.clock_rate)?;
                    }
                }
                Ok(())
            })?;
        }
        Ok(())
    })?;
    Ok(())
}

fn stream(w: &mut W, s: &ApiState, name: &str, info: &PathInfo) -> io::Result<usize> {
    let clients = s.manager.sessions().on_path(&info.name);
    w.create_element("stream").write_inner_content(|w| {
        text(w, "name", name)?;
        text(w, "time", info.ready_time.map_or(0, ms_since))?;
        text(w, "bw_in", info.inbound_bitrate)?;
        text(w, "bytes_in", info.bytes_received)?;
        text(w, "bw_out", info.outbound_bitrate)?;
        text(w, "bytes_out", info.bytes_sent)?;
        for c in &clients {
            let d = c.detail();
            w.create_element("client").write_inner_content(|w| {
                text(w, "id", c.id)?;
                text(w, "address", c.remote.ip())?;
                text(w, "time", ms_since(c.created))?;
                text(w, "protocol", c.kind.api_name())?;
                if !d.user_agent.is_empty() {
                    text(w, "flashver", &d.user_agent)?;
                }
                text(w, "bytes_in", c.bytes_in.get())?;
                text(w, "bytes_out", c.bytes_out.get())?;
                if d.state == SessionState::Publish {
                    flag(w, "publishing")?;
                }
                flag(w, "active")
            })?;
        }
        meta(w, info)?;
        text(w, "nclients", clients.len())?;
        if info.source.is_some() {
            flag(w, "publishing")?;
        }
        if info.ready_time.is_some() {
            flag(w, "active")?;
        }
        Ok(())
    })?;
    Ok(clients.len())
}

fn document(s: &ApiState) -> io::Result<Vec<u8>> {
    let mut infos: Vec<PathInfo> = s
        .manager
        .path_names()
        .iter()
        .filter_map(|n| s.manager.path(n))
        .map(|p| p.info())
        .collect();
    infos.sort_by(|a, b| a.name.cmp(&b.name));
    let mut apps: BTreeMap<String, Vec<(String, &PathInfo)>> = BTreeMap::new();
    for i in &infos {
        let (app, name) = i.name.split_once('/').unwrap_or((&i.name, ""));
        apps.entry(app.to_string())
            .or_default()
            .push((name.to_string(), i));
    }
    let sum = |f: fn(&PathInfo) -> u64| infos.iter().map(f).sum::<u64>();
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 1);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))?;
    w.create_element("rtmp").write_inner_content(|w| {
        text(w, "mediarouter_version", env!("CARGO_PKG_VERSION"))?;
        text(w, "pid", std::process::id())?;
        text(
            w,
            "uptime",
            s.started.elapsed().unwrap_or_default().as_secs(),
        )?;
        text(w, "naccepted", s.manager.sessions().opened())?;
        text(w, "bw_in", sum(|i| i.inbound_bitrate))?;
        text(w, "bytes_in", sum(|i| i.bytes_received))?;
        text(w, "bw_out", sum(|i| i.outbound_bitrate))?;
        text(w, "bytes_out", sum(|i| i.bytes_sent))?;
        w.create_element("server").write_inner_content(|w| {
            for (app, streams) in &apps {
                w.create_element("application").write_inner_content(|w| {
                    text(w, "name", app)?;
                    w.create_element("live").write_inner_content(|w| {
                        let mut n = 0;
                        for (name, info) in streams {
                            n += stream(w, s, name, info)?;
                        }
                        text(w, "nclients", n)
                    })?;
                    Ok(())
                })?;
            }
            Ok(())
        })?;
        Ok(())
    })?;
    Ok(w.into_inner())
}

pub(super) async fn stat(State(s): State<ApiState>) -> Response {
    match document(&s) {
        Ok(xml) => ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], xml).into_response(),
        Err(e) => super::paths::error(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            &format!("can't write the stat XML: {e}"),
        ),
    }
}
