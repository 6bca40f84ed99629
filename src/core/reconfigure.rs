//! Applying a reloaded config to the live paths: paths whose settings are the same
//! keep streaming untouched, removed ones close, changed ones restart only their source.

use super::path::Path;
use super::PathManager;
use crate::config::{Config, PathConf, Source};
use std::sync::Arc;

/// What a reload did to the `paths:` entries and the live paths, for its log line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PathsDiff {
    pub added: usize,
    pub removed: usize,
    /// Changed entries, each with the keys that changed.
    pub changed: Vec<(String, Vec<&'static str>)>,
    /// Live paths closed because no entry matches them any more.
    pub closed: Vec<String>,
    /// Live paths whose source restarted (or stopped, or took over from publishers).
    pub restarted: Vec<String>,
}

/// The keys whose values differ. Destructured without `..`, so a new key can't be
/// forgotten here.
pub fn changed_keys(a: &PathConf, b: &PathConf) -> Vec<&'static str> {
    let PathConf {
        source,
        max_readers,
        override_publisher,
        rtsp_transport,
        source_fingerprint,
        source_on_demand,
        source_on_demand_start_timeout,
        source_on_demand_close_after,
        push,
        transcode,
        publish_user,
        publish_pass,
        publish_ips,
        read_user,
        read_pass,
        read_ips,
        srt_publish_passphrase,
        srt_read_passphrase,
        run_on_init,
        run_on_init_restart,
        run_on_demand,
        run_on_demand_restart,
        run_on_demand_start_timeout,
        run_on_demand_close_after,
        run_on_un_demand,
        run_on_available,
        run_on_available_restart,
        run_on_unavailable,
        run_on_online,
        run_on_online_restart,
        run_on_offline,
        run_on_read,
        run_on_read_restart,
        run_on_unread,
        webhooks,
        record,
        record_path,
        record_format,
        record_part_duration,
        record_max_part_size,
        record_segment_duration,
        record_delete_after,
        run_on_record_segment_create,
        run_on_record_segment_complete,
    } = a;
    let mut out = Vec::new();
    let mut check = |differs: bool, key: &'static str| {
        if differs {
            out.push(key);
        }
    };
    check(*source != b.source, "source");
    check(*max_readers != b.max_readers, "maxReaders");
    check(
        *override_publisher != b.override_publisher,
        "overridePublisher",
    );
    check(*rtsp_transport != b.rtsp_transport, "rtspTransport");
    check(
        *source_fingerprint != b.source_fingerprint,
        "sourceFingerprint",
    );
    check(*source_on_demand != b.source_on_demand, "sourceOnDemand");
    check(
        *source_on_demand_start_timeout != b.source_on_demand_start_timeout,
        "sourceOnDemandStartTimeout",
    );
    check(
        *source_on_demand_close_after != b.source_on_demand_close_after,
        "sourceOnDemandCloseAfter",
    );
    check(*push != b.push, "push");
    check(*transcode != b.transcode, "transcode");
    // Converted into authInternalUsers, which every request reads: nothing restarts.
    check(
        (publish_user, publish_pass, publish_ips)
            != (&b.publish_user, &b.publish_pass, &b.publish_ips),
        "publishUser/Pass/IPs",
    );
    check(
        (read_user, read_pass, read_ips) != (&b.read_user, &b.read_pass, &b.read_ips),
        "readUser/Pass/IPs",
    );
    // Read by each new SRT connection; open ones keep the passphrase they met.
    check(
        (srt_publish_passphrase, srt_read_passphrase)
            != (&b.srt_publish_passphrase, &b.srt_read_passphrase),
        "srtPassphrase",
    );
    // Hooks: runOnInit and runOnDemand restart with the new command (Hooks::set_init,
    // OnDemand::retain); the others apply from the next time they fire.
    check(
        (run_on_init, run_on_init_restart) != (&b.run_on_init, &b.run_on_init_restart),
        "runOnInit",
    );
    check(
        (run_on_demand, run_on_demand_restart, run_on_un_demand)
            != (
                &b.run_on_demand,
                &b.run_on_demand_restart,
                &b.run_on_un_demand,
            )
            || (run_on_demand_start_timeout, run_on_demand_close_after)
                != (&b.run_on_demand_start_timeout, &b.run_on_demand_close_after),
        "runOnDemand",
    );
    check(
        (
            run_on_available,
            run_on_available_restart,
            run_on_unavailable,
        ) != (
            &b.run_on_available,
            &b.run_on_available_restart,
            &b.run_on_unavailable,
        ) || (run_on_online, run_on_online_restart, run_on_offline)
            != (
                &b.run_on_online,
                &b.run_on_online_restart,
                &b.run_on_offline,
            ),
        "runOnAvailable/Online",
    );
    check(
        (run_on_read, run_on_read_restart, run_on_unread)
            != (&b.run_on_read, &b.run_on_read_restart, &b.run_on_unread),
        "runOnRead",
    );
    check(*webhooks != b.webhooks, "webhooks");
    // The recorders follow (record::Recorders::reconcile); the stream goes on.
    check(
        (record, record_path, record_format, record_part_duration)
            != (
                &b.record,
                &b.record_path,
                &b.record_format,
                &b.record_part_duration,
            )
            || (
                record_max_part_size,
                record_segment_duration,
                record_delete_after,
            ) != (
                &b.record_max_part_size,
                &b.record_segment_duration,
                &b.record_delete_after,
            ),
        "record",
    );
    check(
        (run_on_record_segment_create, run_on_record_segment_complete)
            != (
                &b.run_on_record_segment_create,
                &b.run_on_record_segment_complete,
            ),
        "runOnRecordSegment",
    );
    out
}

/// Keys a running source was started with: a change restarts it.
const SOURCE_KEYS: [&str; 6] = [
    "source",
    "rtspTransport",
    "sourceFingerprint",
    "sourceOnDemand",
    "sourceOnDemandStartTimeout",
    "sourceOnDemandCloseAfter",
];

fn entries(c: &Config) -> impl Iterator<Item = (String, PathConf)> + '_ {
    c.paths
        .iter()
        .map(|(p, conf)| (p.entry_name(), conf.clone().unwrap_or_default()))
}

impl PathManager {
    /// Makes `new` the running config and brings the live paths in line with it.
    pub async fn reconfigure(&self, new: Arc<Config>) -> PathsDiff {
        let old = self.config();
        let mut diff = PathsDiff::default();
        let old_entries: Vec<_> = entries(&old).collect();
        let new_entries: Vec<_> = entries(&new).collect();
        for (name, conf) in &new_entries {
            match old_entries.iter().find(|(n, _)| n == name) {
                None => diff.added += 1,
                Some((_, was)) => {
                    let keys = changed_keys(was, conf);
                    if !keys.is_empty() {
                        diff.changed.push((name.clone(), keys));
                    }
                }
            }
        }
        diff.removed = old_entries
            .iter()
            .filter(|(n, _)| !new_entries.iter().any(|(m, _)| m == n))
            .count();

        *self.inner.config.write().unwrap_or_else(|e| e.into_inner()) = new.clone();
        // Users may have changed: earlier successes prove nothing now.
        self.inner.auth.forget();
        let live: Vec<Arc<Path>> = self.inner.paths().values().cloned().collect();
        for path in live {
            self.reconfigure_path(&old, &new, &path, &mut diff).await;
            self.forget_if_idle(&path);
        }
        self.start_sources();
        self.start_hooks();
        let hooks = &self.inner.hooks;
        hooks.on_demand.retain(|name, spec| {
            new.find_path(name).is_some_and(|m| {
                self.demand_spec(name, &m)
                    .is_some_and(|(s, _)| (&s.cmd, s.restart) == (&spec.cmd, spec.restart))
            })
        });
        diff
    }

    async fn reconfigure_path(
        &self,
        old: &Config,
        new: &Config,
        path: &Arc<Path>,
        diff: &mut PathsDiff,
    ) {
        let name = path.name().to_string();
        let Some(m) = new.find_path(&name) else {
            self.inner.sources.stop(&name).await;
            path.close("the path was removed from the config");
            tracing::info!(path = %name, "path closed: no entry of the reloaded config matches it");
            diff.closed.push(name);
            return;
        };
        let was = path.conf();
        let old_url = old
            .find_path(&name)
            .and_then(|o| o.conf.source.urls_for(&o.captures));
        let new_url = m.conf.source.urls_for(&m.captures);
        let keys = changed_keys(&was, &m.conf);
        path.set_conf(m.entry.clone(), m.conf.clone(), m.captures.clone());
        // Turning transcode on or off moves where publishers write (`<path>/source`).
        let moved =
            cfg!(feature = "transcode") && was.transcode.is_some() != m.conf.transcode.is_some();
        if moved && new_url.is_none() {
            path.close("the path's transcode setting changed (config reloaded)");
        }
        let source_changed = moved
            || old_url != new_url
            || keys
                .iter()
                .any(|k| SOURCE_KEYS.contains(k) && *k != "source");
        if !source_changed {
            return;
        }
        let was_running = self.inner.sources.stop(&name).await;
        if matches!(was.source, Source::Publisher) && new_url.is_some() {
            // The path now pulls: a client publishing to it has to go.
            path.close("the path now pulls from a source (config reloaded)");
        }
        if let Some(url) = new_url {
            let wanted = !m.conf.source_on_demand || (was_running && path.demanding_readers() > 0);
            if wanted {
                crate::source::ensure(self, &name, url, m.conf.clone());
            }
        }
        tracing::info!(path = %name, "path's source restarted by the reload");
        diff.restarted.push(name);
    }
}
