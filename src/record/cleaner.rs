//! Retention: deletes recorded segments older than their path's `recordDeleteAfter`
//! (by the time of their last write), only files the path's `recordPath` could have
//! named, and then the directories the pattern made that are left empty.

use super::pattern::RecordPattern;
use crate::config::{Config, PathPattern};
use crate::core::PathManager;
use std::path::Path;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// Deepest directory walked below a pattern's fixed part.
const MAX_DEPTH: usize = 16;

/// One recorded entry's rule.
struct Rule {
    pattern: RecordPattern,
    /// The exact path, or `None` for a regex entry (files of paths it matches).
    exact: Option<String>,
    /// The entry's name as written.
    entry: String,
    delete_after: Duration,
}

fn rules(config: &Config) -> Vec<Rule> {
    config
        .paths
        .iter()
        .filter_map(|(p, conf)| {
            let conf = conf.clone().unwrap_or_default();
            if !conf.record || conf.record_delete_after.0.is_zero() {
                return None;
            }
            Some(Rule {
                pattern: RecordPattern::new(&conf.record_path, conf.record_format.extension()),
                exact: match p {
                    PathPattern::Exact(n) => Some(n.clone()),
                    PathPattern::Regex(_) => None,
                },
                entry: p.entry_name(),
                delete_after: conf.record_delete_after.0,
            })
        })
        .collect()
}

/// How often the cleaner looks: a fraction of the shortest retention.
fn period(rules: &[Rule]) -> Duration {
    rules
        .iter()
        .map(|r| r.delete_after / 4)
        .min()
        .unwrap_or(Duration::from_secs(60))
        .clamp(Duration::from_millis(500), Duration::from_secs(60))
}

pub async fn run(manager: PathManager, stop: CancellationToken) {
    loop {
        let config = manager.config();
        let rules = rules(&config);
        let wait = period(&rules);
        if !rules.is_empty() {
            let c = config.clone();
            let removed = tokio::task::spawn_blocking(move || clean(&c, &rules, SystemTime::now()))
                .await
                .unwrap_or(0);
            if removed > 0 {
                tracing::info!("recordings: {removed} segments past recordDeleteAfter deleted");
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// One pass over every rule; returns the files deleted.
fn clean(config: &Config, rules: &[Rule], now: SystemTime) -> usize {
    let mut removed = 0;
    for rule in rules {
        let top = rule.pattern.base_dir(None);
        let base = rule.pattern.base_dir(rule.exact.as_deref());
        for f in super::pattern::files_under(&base, MAX_DEPTH) {
            let Some(s) = f.to_str() else { continue };
            let Some((name, _)) = rule.pattern.parse(rule.exact.as_deref(), s) else {
                continue;
            };
            // A regex entry's files: only of the paths that entry is the one for.
            if rule.exact.is_none()
                && config
                    .find_path(&name)
                    .is_none_or(|m| m.entry != rule.entry)
            {
                continue;
            }
            let old = std::fs::symlink_metadata(&f)
                .and_then(|m| m.modified())
                .is_ok_and(|t| {
                    now.duration_since(t)
                        .is_ok_and(|age| age > rule.delete_after)
                });
            if old && std::fs::remove_file(&f).is_ok() {
                removed += 1;
                remove_empty_parents(&f, &top);
            }
        }
    }
    removed
}

/// Removes `file`'s parent directories while they are empty, up to `top` (kept).
fn remove_empty_parents(file: &Path, top: &Path) {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == top || !d.starts_with(top) || std::fs::remove_dir(d).is_err() {
            return;
        }
        dir = d.parent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn deletes_old_segments_of_the_pattern_and_nothing_else() {
        let root = std::env::temp_dir().join(format!("mr-clean-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let rp = format!("{}/%path/%Y-%m-%d/%H-%M-%S-%f", root.display());
        let yaml = format!(
            "paths:\n  cam:\n    record: yes\n    recordPath: {rp}\n    recordDeleteAfter: 1h\n"
        );
        let config = Config::parse(&yaml, "t").unwrap();
        let rules = rules(&config);
        assert_eq!(rules.len(), 1);
        let p = &rules[0].pattern;
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000);
        let seg = PathBuf::from(p.render("cam", t));
        std::fs::create_dir_all(seg.parent().unwrap()).unwrap();
        std::fs::write(&seg, b"x").unwrap();
        let stray = root.join("cam").join("notes.txt");
        std::fs::write(&stray, b"keep").unwrap();
        let other = PathBuf::from(p.render("other", t));
        std::fs::create_dir_all(other.parent().unwrap()).unwrap();
        std::fs::write(&other, b"x").unwrap();
        // Not old yet: kept.
        assert_eq!(clean(&config, &rules, SystemTime::now()), 0);
        let later = SystemTime::now() + Duration::from_secs(7200);
        assert_eq!(clean(&config, &rules, later), 1);
        assert!(
            !seg.exists() && !seg.parent().unwrap().exists(),
            "the segment and its emptied day directory go"
        );
        assert!(stray.exists(), "a file the pattern can't have made stays");
        assert!(other.exists(), "another path's segment stays");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
