//! The `mediarouter` command line: parse arguments, load the config, run until a signal.

use mediarouter::config::watch::ConfigWatch;
use mediarouter::config::{self, Config, ConfigOrigin};
use mediarouter::server::Server;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: mediarouter [CONFIG.yml]
       mediarouter --check CONFIG.yml
       mediarouter --hash-password   (reads the password from stdin)
       mediarouter --version

Without CONFIG, uses ./mediarouter.yml, else /etc/mediarouter/mediarouter.yml,
else the embedded default configuration.";

/// Prints the `argon2:` form of the password on stdin's first line, for `pass:`. Not
/// an argument: arguments end up in shell history and `ps`.
fn hash_password() -> ExitCode {
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err()
        || line.trim_end_matches(['\r', '\n']).is_empty()
    {
        eprintln!("--hash-password reads the password from stdin");
        return ExitCode::from(2);
    }
    println!(
        "{}",
        mediarouter::auth::hash_password(line.trim_end_matches(['\r', '\n']))
    );
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut explicit: Option<PathBuf> = None;
    let mut check = false;
    for a in &args {
        match a.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "-V" | "--version" => {
                println!("mediarouter {}", env!("CARGO_PKG_VERSION"));
                println!("{}", mediarouter::transcode::build_info());
                return ExitCode::SUCCESS;
            }
            "--check" => check = true,
            "--hash-password" => return hash_password(),
            s if s.starts_with('-') => {
                eprintln!("unknown option {s}\n{USAGE}");
                return ExitCode::from(2);
            }
            s if explicit.is_none() => explicit = Some(PathBuf::from(s)),
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    // Warnings the config load gives (a deprecated key, a misspelt variable) are
    // printed; the file's logLevel takes over once it is read.
    mediarouter::logging::init(mediarouter::config::LogLevel::Warn);
    if check {
        let Some(file) = explicit else {
            eprintln!("--check needs a file\n{USAGE}");
            return ExitCode::from(2);
        };
        return match config::load_file(&file) {
            Ok(_) => {
                println!("{}: ok", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    let (cfg, origin, text) = match config::load(explicit.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    mediarouter::logging::set_level(cfg.log_level);
    tracing::info!(
        "mediarouter {} using config {origin}",
        env!("CARGO_PKG_VERSION")
    );
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("can't start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = rt.block_on(run(cfg, origin, text));
    // Connections still closing must not hold the process past the signal.
    rt.shutdown_timeout(std::time::Duration::from_millis(500));
    code
}

async fn run(cfg: Config, origin: ConfigOrigin, text: String) -> ExitCode {
    // Thousands of readers need more descriptors than the usual soft limit of 1024.
    if let Some(files) = mediarouter::limits::raise_fd_limit() {
        let want = cfg.max_connections as u64 + 256;
        if cfg.max_connections == 0 || files < want {
            tracing::warn!(
                "open files are limited to {files}: connections past about {} fail to open instead of being refused at maxConnections ({}); raise LimitNOFILE / ulimit -n",
                files.saturating_sub(256),
                cfg.max_connections
            );
        }
    }
    let server = match Server::start(cfg).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let file = match origin {
        ConfigOrigin::File(p) => Some(p),
        ConfigOrigin::Embedded => None,
    };
    server.set_config_source(file.clone(), text, true).await;
    let mut watch = file.as_deref().and_then(|f| match ConfigWatch::new(f) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!("can't watch {}: {e}; reload with SIGHUP", f.display());
            None
        }
    });
    let mut signals = match Signals::new() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("can't install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    loop {
        let changed = async {
            match watch.as_mut() {
                Some(w) => w.changed().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            s = signals.next() => match s {
                Signal::Stop(name) => {
                    tracing::info!("received {name}, shutting down");
                    break;
                }
                Signal::Hangup => server.reload_file("SIGHUP").await,
            },
            _ = changed => server.reload_file("the file changed").await,
        }
    }
    server.stop().await;
    ExitCode::SUCCESS
}

#[cfg(unix)]
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::Stop("SIGTERM"),
            _ = self.int.recv() => Signal::Stop("SIGINT"),
            _ = self.hup.recv() => Signal::Hangup,
        }
    }
}

enum Signal {
    Stop(&'static str),
    #[cfg_attr(not(unix), allow(dead_code))]
    Hangup,
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn new() -> std::io::Result<Signals> {
        Ok(Signals)
    }

    async fn next(&mut self) -> Signal {
        let _ = tokio::signal::ctrl_c().await;
        Signal::Stop("Ctrl-C")
    }
}
