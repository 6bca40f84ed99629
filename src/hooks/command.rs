//! One hook command: split like a shell would (quotes; shlex) but run without one,
//! `$VAR`/`${VAR}` expanded in each word, in a process group of its own. Stopping it
//! sends the group SIGINT, then SIGKILL after a grace period, so nothing it started
//! outlives it; the direct child also gets SIGKILL if the server dies (PDEATHSIG).

use std::collections::HashMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a stopped hook has to exit after SIGINT (ffmpeg finishing a file).
pub const GRACE: Duration = Duration::from_secs(5);
/// Wait before a `*Restart` hook that exited runs again (MediaMTX's pause).
pub const RESTART_PAUSE: Duration = Duration::from_secs(5);

/// What to run, with what environment, for which hook (named in logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub hook: &'static str,
    pub cmd: String,
    pub env: Vec<(String, String)>,
    pub restart: bool,
}

/// The command's words, `$VAR` expanded from `env` first, then the server's own
/// environment (unknown names expand to nothing, as in MediaMTX).
pub fn argv(cmd: &str, env: &[(String, String)]) -> Result<Vec<String>, String> {
    let words = shlex::split(cmd).ok_or_else(|| format!("unbalanced quotes in {cmd:?}"))?;
    let vars: HashMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let words: Vec<String> = words.iter().map(|w| expand(w, &vars)).collect();
    match words.first() {
        Some(w) if !w.is_empty() => Ok(words),
        _ => Err("empty command".into()),
    }
}

fn expand(word: &str, vars: &HashMap<&str, &str>) -> String {
    let lookup = |name: &str| -> String {
        vars.get(name)
            .map(|v| v.to_string())
            .or_else(|| std::env::var(name).ok())
            .unwrap_or_default()
    };
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::new();
    let mut rest = word;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(braced) = after.strip_prefix('{') {
            if let Some(end) = braced.find('}') {
                out.push_str(&lookup(&braced[..end]));
                rest = &braced[end + 1..];
                continue;
            }
        }
        let len = after.find(|c| !is_name(c)).unwrap_or(after.len());
        if len == 0 {
            out.push('$');
        } else {
            out.push_str(&lookup(&after[..len]));
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// How one run of the command ended.
#[derive(Debug)]
enum Outcome {
    /// Told to stop; the group is gone.
    Stopped,
    Exited(std::process::ExitStatus),
    Failed(String),
}

/// Runs `spec` until `stop` (restarting it after `RESTART_PAUSE` when it exits and
/// `spec.restart` says so). Returns once nothing of it runs.
pub async fn supervise(spec: Spec, stop: CancellationToken) {
    loop {
        let outcome = run_once(&spec, &stop).await;
        let why = match &outcome {
            Outcome::Stopped => return,
            Outcome::Exited(s) if s.success() => "exited".to_string(),
            Outcome::Exited(s) => format!("exited with {s}"),
            Outcome::Failed(e) => format!("couldn't start: {e}"),
        };
        if !spec.restart {
            match outcome {
                Outcome::Exited(s) if s.success() => {
                    tracing::debug!(hook = spec.hook, "{why}")
                }
                _ => tracing::warn!(hook = spec.hook, "{:?} {why}", spec.cmd),
            }
            return;
        }
        tracing::warn!(
            hook = spec.hook,
            "{:?} {why}; restarting in {}s",
            spec.cmd,
            RESTART_PAUSE.as_secs()
        );
        tokio::select! {
            _ = tokio::time::sleep(RESTART_PAUSE) => {}
            _ = stop.cancelled() => return,
        }
    }
}

async fn run_once(spec: &Spec, stop: &CancellationToken) -> Outcome {
    let argv = match argv(&spec.cmd, &spec.env) {
        Ok(a) => a,
        Err(e) => return Outcome::Failed(e),
    };
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .process_group(0);
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(format!("{}: {e}", argv[0])),
    };
    let Some(pgid) = child.id().map(|p| p as libc::pid_t) else {
        return Outcome::Failed("no pid".into());
    };
    tracing::debug!(hook = spec.hook, pid = pgid, "started {:?}", spec.cmd);
    let outcome = tokio::select! {
        status = child.wait() => match status {
            Ok(s) => Outcome::Exited(s),
            Err(e) => Outcome::Failed(e.to_string()),
        },
        _ = stop.cancelled() => {
            signal_group(pgid, libc::SIGINT);
            if tokio::time::timeout(GRACE, child.wait()).await.is_err() {
                tracing::warn!(hook = spec.hook, pid = pgid, "still running {}s after SIGINT; killed", GRACE.as_secs());
                signal_group(pgid, libc::SIGKILL);
                let _ = child.wait().await;
            }
            Outcome::Stopped
        }
    };
    // What the command left running in its group goes with it.
    signal_group(pgid, libc::SIGKILL);
    outcome
}

fn signal_group(pgid: libc::pid_t, sig: libc::c_int) {
    // SAFETY: kill has no memory effects; a group that is gone gives ESRCH.
    unsafe {
        libc::kill(-pgid, sig);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn words_are_split_like_a_shell_and_variables_expand() {
        let e = env(&[("MTX_PATH", "cam/1"), ("RTSP_PORT", "8554")]);
        assert_eq!(
            argv(
                "ffmpeg -i 'a b.mp4' -f rtsp rtsp://localhost:$RTSP_PORT/$MTX_PATH",
                &e
            )
            .unwrap(),
            [
                "ffmpeg",
                "-i",
                "a b.mp4",
                "-f",
                "rtsp",
                "rtsp://localhost:8554/cam/1"
            ]
        );
        assert_eq!(
            argv("echo \"${MTX_PATH}_x\" $ $NOPE_NOT_SET. ;", &e).unwrap(),
            ["echo", "cam/1_x", "$", ".", ";"]
        );
        assert!(argv("echo 'open", &e).is_err());
        assert!(argv("  ", &e).is_err());
    }
}
