//! `mediarouter-transcode-bench`: runs an MPEG-TS recording's video through the
//! transcode stage as fast as it goes and reports the decision, frames per second and
//! CPU time (for scripts/transcode-bench.sh and scripts/gpu-check.sh).

use clap::Parser;
use mediarouter::config::transcode::TranscodeConf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(version, about = "Transcode stage throughput on a .ts recording")]
struct Args {
    /// MPEG-TS file with H.264 or H.265 video.
    input: std::path::PathBuf,
    /// The stage's settings, as the `transcode:` value of a path (YAML flow style).
    #[arg(
        long,
        default_value = "{video: {height: 720, bitrate: 1500k}, fallback: software}"
    )]
    conf: String,
    /// Plays the recording this many times over (a short clip, a long run).
    #[arg(long, default_value_t = 1)]
    repeat: u32,
    /// Decodes only (on the GPU when `hwaccel` allows): the decoder's own throughput.
    #[arg(long)]
    decode_only: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let conf: TranscodeConf = match serde_saphyr::from_str(&args.conf) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("--conf: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = conf.validate() {
        eprintln!("--conf: {e}");
        return ExitCode::from(2);
    }
    let data = match std::fs::read(&args.input) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{}: {e}", args.input.display());
            return ExitCode::FAILURE;
        }
    };
    let (track, units) = match mediarouter::transcode::bench::units_from_ts(&data) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{}: {e}", args.input.display());
            return ExitCode::FAILURE;
        }
    };
    let bench = match args.decode_only {
        true => mediarouter::transcode::bench::decode,
        false => mediarouter::transcode::bench::run,
    };
    match bench(&conf, track, units, args.repeat) {
        Ok(r) => {
            let wall = r.wall.as_secs_f64();
            println!("{}", r.decision);
            println!("at the end: {}", r.encoder);
            println!(
                "frames in {} out {}, wall {wall:.2} s, {:.1} fps, cpu {:.2} s ({:.2} cores)",
                r.frames_in,
                r.frames_out,
                r.frames_out as f64 / wall.max(1e-9),
                r.cpu.as_secs_f64(),
                r.cpu.as_secs_f64() / wall.max(1e-9)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
