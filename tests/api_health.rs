//! `GET /v3/health` (issue 24, for Kubernetes probes): answered without credentials
//! while the rest of the API asks for them; 200 while every enabled listener is open,
//! 503 naming the one a reload could not open, 200 again once the next reload (even
//! one that changes nothing) opens it.

mod common;

use common::*;
use mediarouter::config::{Config, ListenAddress};

#[test]
fn health_answers_probes_without_credentials_and_names_a_listener_down() {
    let srv = TestServer::start(
        "api: yes\nauthInternalUsers:\n  - user: admin\n    pass: admin-Secret-9\n    permissions: [{action: api}]\npaths:\n  all_others:\n",
    );
    let api = srv.server.api_addr().unwrap();
    let (st, _) = common::http::get(api, "/v3/paths/list");
    assert_eq!(st, 401, "the rest of the API asks for credentials");
    let (st, body) = common::http::get(api, "/v3/health");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((st, v["status"].as_str()), (200, Some("ok")), "{v}");

    // A reload turns the metrics listener on, on a port someone else holds.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut cfg: Config = (*srv.server.manager.config()).clone();
    cfg.metrics = true;
    cfg.metrics_address = ListenAddress(taken.local_addr().unwrap());
    let line = srv.rt.block_on(srv.server.reload(cfg.clone())).to_string();
    assert!(line.contains("metrics listener NOT restarted"), "{line}");
    let (st, body) = common::http::get(api, "/v3/health");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(st, 503, "{v}");
    assert_eq!(v["status"], "degraded");
    assert_eq!(v["listenersDown"], serde_json::json!(["metrics"]));

    // The port is free again: the next reload, even one that changes nothing, opens it.
    drop(taken);
    let line = srv.rt.block_on(srv.server.reload(cfg)).to_string();
    assert!(line.contains("listeners restarted: metrics"), "{line}");
    let (st, body) = common::http::get(api, "/v3/health");
    assert_eq!(st, 200, "{line}: {}", String::from_utf8_lossy(&body));
}
