//! `mediarouter-load`: opens N readers of one stream (RTSP over TCP or UDP, RTMP,
//! HTTP-FLV, HLS, WebRTC over WHEP) against any server, optionally with M RTMP or RTSP publishers of an FLV clip,
//! ramps them up, holds for a measurement window and reports frames, gaps, time to
//! first frame and bytes per reader, as text and JSON.

mod flv;
mod hls;
mod latency;

mod publish;
mod rtmp;
mod rtsp;
mod rtsp_publish;
mod stats;
mod whep;

use anyhow::{bail, Result};
use clap::Parser;
use stats::{Counter, ReaderStats, RunInfo, DONE, MEASURE, RAMP};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Load generator for live media servers (RTSP, RTMP, HTTP-FLV, HLS, WHEP)"
)]
struct Args {
    /// Stream to read: rtsp://…, rtmp://host/app/stream, http://….flv, http://….m3u8 or
    /// http://…/<path>/whep.
    /// `{i}` is replaced by the reader's index modulo --publishers.
    url: String,
    /// Number of readers.
    #[arg(short = 'n', long, default_value_t = 1)]
    readers: usize,
    /// Readers started per second.
    #[arg(long, default_value_t = 200.0)]
    ramp: f64,
    /// Seconds to wait after every reader connected, before measuring.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Seconds of the measurement window.
    #[arg(short, long, default_value_t = 10.0)]
    duration: f64,
    /// RTSP lower transport.
    #[arg(long, default_value = "tcp", value_parser = ["tcp", "udp"])]
    rtsp_transport: String,
    /// Frame rate of the stream for the delivery ratio (default: from timestamps).
    #[arg(long)]
    fps: Option<f64>,
    /// A decode-timestamp step larger than this (ms) counts as a gap (RTMP, HTTP-FLV).
    #[arg(long, default_value_t = 250)]
    gap_ms: u64,
    /// Seconds a connect or a silence may last before the reader counts as failed.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Write the JSON summary (and per-reader figures) here; `-` for stdout.
    #[arg(long)]
    json: Option<PathBuf>,
    /// rtmp:// or rtsp:// URL to publish --clip to before reading (`{i}` = publisher
    /// index); RTSP publishers send RTP interleaved on TCP.
    #[arg(long, requires = "clip")]
    publish: Option<String>,
    /// FLV file the publishers send in a loop, in real time.
    #[arg(long)]
    clip: Option<PathBuf>,
    /// Number of publishers.
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    /// Print `window-start` and `window-end` lines on stdout as the window opens and
    /// closes, so a driver can sample the server's CPU over the same interval.
    #[arg(long)]
    markers: bool,
    /// WHEP readers drop this share (0–1) of the datagrams they receive once connected,
    /// as a lossy link would (NACKs bring packets back; the server sees the loss in
    /// reports).
    #[arg(long, default_value_t = 0.0)]
    drop: f64,
    /// Runtime worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

#[derive(Clone, Copy, Debug)]
enum Proto {
    RtspTcp,
    RtspUdp,
    Rtmp,
    Flv,
    Hls,
    Whep,
}

impl Proto {
    fn of(url: &str, rtsp_transport: &str) -> Result<Proto> {
        let path = url.split('?').next().unwrap_or(url);
        Ok(if url.starts_with("rtsp://") {
            if rtsp_transport == "udp" {
                Proto::RtspUdp
            } else {
                Proto::RtspTcp
            }
        } else if url.starts_with("rtmp://") {
            Proto::Rtmp
        } else if url.starts_with("http://") && path.ends_with(".flv") {
            Proto::Flv
        } else if url.starts_with("http://") && path.ends_with(".m3u8") {
            Proto::Hls
        } else if url.starts_with("http://") && path.ends_with("/whep") {
            Proto::Whep
        } else {
            bail!("don't know how to read {url} (rtsp://, rtmp://, http://….flv, http://….m3u8, http://…/whep)")
        })
    }

    fn name(self) -> &'static str {
        match self {
            Proto::RtspTcp => "rtsp-tcp",
            Proto::RtspUdp => "rtsp-udp",
            Proto::Rtmp => "rtmp",
            Proto::Flv => "http-flv",
            Proto::Hls => "hls",
            Proto::Whep => "webrtc",
        }
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    raise_fd_limit();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if args.threads > 0 {
        rt.worker_threads(args.threads);
    }
    let rt = match rt.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mediarouter-load: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Thousands of sockets need more than the usual soft limit of 1024 descriptors.
fn raise_fd_limit() {
    // SAFETY: plain get/setrlimit on a local struct.
    unsafe {
        let mut l = std::mem::zeroed::<libc::rlimit>();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

async fn run(args: Args) -> Result<()> {
    let proto = Proto::of(&args.url, &args.rtsp_transport)?;
    let timeout = Duration::from_secs_f64(args.timeout);
    let stop = CancellationToken::new();

    let mut publishers = 0;
    if let (Some(url), Some(clip)) = (&args.publish, &args.clip) {
        let clip = Arc::new(publish::load_clip(clip)?);
        let (tx, mut rx) = tokio::sync::mpsc::channel(args.publishers.max(1));
        for i in 0..args.publishers {
            let url = url.replace("{i}", &i.to_string());
            let (clip, stop, tx) = (clip.clone(), stop.clone(), tx.clone());
            tokio::spawn(async move {
                let r = if url.starts_with("rtsp://") {
                    rtsp_publish::publish(url.clone(), clip, stop, tx.clone()).await
                } else {
                    publish::publish(url.clone(), clip, stop, tx.clone()).await
                };
                if let Err(e) = r {
                    eprintln!("publisher {url}: {e:#}");
                    let _ = tx.send(Err(e)).await;
                }
            });
        }
        for _ in 0..args.publishers {
            match tokio::time::timeout(timeout, rx.recv()).await {
                Ok(Some(Ok(()))) => {}
                Ok(Some(Err(e))) => return Err(e.context("publisher failed")),
                _ => bail!("publishers did not start within {timeout:?}"),
            }
        }
        publishers = args.publishers;
    }

    let phase = Arc::new(AtomicU8::new(RAMP));
    let settled = Arc::new(AtomicUsize::new(0));
    let gap = Duration::from_millis(args.gap_ms);
    let mut tasks = Vec::with_capacity(args.readers);
    let ramp_step = Duration::from_secs_f64(1.0 / args.ramp.max(0.001));
    let mut tick = tokio::time::interval(ramp_step);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for i in 0..args.readers {
        tick.tick().await;
        let url = if publishers > 0 {
            args.url.replace("{i}", &(i % publishers).to_string())
        } else {
            args.url.clone()
        };
        let (phase, settled, stop) = (phase.clone(), settled.clone(), stop.clone());
        let drop = args.drop;
        tasks.push(tokio::spawn(async move {
            let mut c = Counter::new(phase, gap, settled);
            // The tool's own publishers are sending, but the server may not have made
            // their paths readable yet: a reader refused before it connected tries
            // again until the timeout.
            let retry_until = (publishers > 0).then(|| tokio::time::Instant::now() + timeout);
            let r = tokio::select! {
                _ = stop.cancelled() => Ok(()),
                r = async {
                    loop {
                        let r = read(proto, &url, &mut c, timeout, drop).await;
                        match retry_until {
                            Some(t) if r.is_err() && !c.stats.connected && tokio::time::Instant::now() < t => {
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                            _ => return r,
                        }
                    }
                } => r,
            };
            if let Err(e) = r {
                c.fail(format!("{e:#}"));
            }
            c.settle();
            c.stats
        }));
    }
    let deadline = tokio::time::Instant::now() + timeout;
    while settled.load(Ordering::Relaxed) < args.readers && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;

    let marker = |m: &str| {
        if args.markers {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{m}");
            let _ = out.flush();
        }
    };
    marker("window-start");
    let cpu0 = stats::self_cpu_seconds();
    let t0 = tokio::time::Instant::now();
    phase.store(MEASURE, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    phase.store(DONE, Ordering::Relaxed);
    let window = t0.elapsed();
    marker("window-end");
    let cpu = stats::self_cpu_seconds() - cpu0;
    stop.cancel();

    let mut readers: Vec<ReaderStats> = Vec::with_capacity(tasks.len());
    for t in tasks {
        readers.push(t.await.unwrap_or_else(|e| ReaderStats {
            error: Some(format!("reader task: {e}")),
            ..Default::default()
        }));
    }
    let summary = stats::summarise(
        RunInfo {
            protocol: proto.name().into(),
            url: args.url.clone(),
            window,
            window_start: t0.into_std(),
            fps: args.fps,
            tool_cpu_s: cpu,
            publishers,
        },
        &mut readers,
    );
    print_summary(&summary);
    if let Some(p) = &args.json {
        let doc = serde_json::json!({ "summary": summary, "readers": readers });
        let text = serde_json::to_string_pretty(&doc)?;
        if p.as_os_str() == "-" {
            println!("{text}");
        } else {
            std::fs::write(p, text)?;
        }
    }
    Ok(())
}

async fn read(
    proto: Proto,
    url: &str,
    c: &mut Counter,
    timeout: Duration,
    drop: f64,
) -> Result<()> {
    match proto {
        Proto::RtspTcp => rtsp::read(url, false, c, timeout).await,
        Proto::RtspUdp => rtsp::read(url, true, c, timeout).await,
        Proto::Rtmp => rtmp::read(rtmp::parse_url(url)?, c, timeout).await,
        Proto::Flv => flv::read(url, c, timeout).await,
        Proto::Hls => hls::read(url, c, timeout).await,
        Proto::Whep => whep::read(url, c, timeout, drop).await,
    }
}

fn print_summary(s: &stats::Summary) {
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1} ms"));
    eprintln!(
        "{} {}: {}/{} readers connected, {} failed{}",
        s.protocol,
        s.url,
        s.connected,
        s.readers,
        s.failed,
        if s.first_errors.is_empty() {
            String::new()
        } else {
            format!(" ({})", s.first_errors.join("; "))
        }
    );
    eprintln!(
        "window {:.1} s at {:.2} fps: frames/reader min {} median {} max {}; delivery min {:.4} mean {:.4}",
        s.window_s, s.fps, s.frames_min, s.frames_median, s.frames_max, s.delivery_min, s.delivery_mean
    );
    if s.latency_samples > 0 {
        eprintln!(
            "server-added latency median {} p95 {} ({} frames)",
            ms(s.latency_median_ms),
            ms(s.latency_p95_ms),
            s.latency_samples
        );
    }
    eprintln!(
        "gaps {} (readers with gaps {}); time to first frame median {} p95 {}; {:.1} MB/s in; load tool CPU {:.2} s/s",
        s.gaps_total,
        s.readers_with_gaps,
        ms(s.ttff_median_ms),
        ms(s.ttff_p95_ms),
        s.bytes_per_s / 1e6,
        s.tool_cpu_per_s
    );
}
