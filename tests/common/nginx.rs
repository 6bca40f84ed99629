//! nginx-rtmp (Debian `nginx` + `libnginx-mod-rtmp`) for tests that compare with it or
//! push to it: started with its own prefix on free ports, `application live`.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

/// Whether nginx with the RTMP module is installed (under `CI=true`, it must be).
pub fn have_nginx_rtmp() -> bool {
    let ok = Path::new(MODULE).exists()
        && Command::new("nginx")
            .arg("-v")
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    super::present(
        ok,
        "these tests need nginx and libnginx-mod-rtmp (.ci/run installs them)",
        "skipping: nginx with the RTMP module not installed",
    )
}

/// nginx-rtmp listening for RTMP on `port`; with `stat_port`, `rtmp_stat all` at
/// `http://127.0.0.1:<stat_port>/stat`.
pub fn start_nginx(prefix: &Path, port: u16, stat_port: Option<u16>) -> Child {
    std::fs::create_dir_all(prefix.join("logs")).unwrap();
    let p = prefix.display();
    let http = stat_port.map_or(String::new(), |s| {
        let temp: String = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
            .iter()
            .map(|t| format!("{t}_temp_path {p}/{t};\n"))
            .collect();
        format!("http {{\n  access_log off;\n{temp}  server {{\n    listen 127.0.0.1:{s};\n    location /stat {{ rtmp_stat all; }}\n  }}\n}}\n")
    });
    let conf = prefix.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "load_module {MODULE};\ndaemon off;\nmaster_process off;\nworker_processes 1;\npid {p}/nginx.pid;\nerror_log {p}/logs/error.log warn;\nevents {{ worker_connections 256; }}\nrtmp {{\n  server {{\n    listen 127.0.0.1:{port};\n    application live {{ live on; }}\n  }}\n}}\n{http}"
        ),
    )
    .unwrap();
    let child = Command::new("nginx")
        .arg("-p")
        .arg(prefix)
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .spawn()
        .expect("start nginx");
    super::wait_until(Duration::from_secs(10), "nginx to listen", || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
            && stat_port.is_none_or(|s| TcpStream::connect(("127.0.0.1", s)).is_ok())
    });
    child
}
