//! Network namespaces and veth pairs for fault, topology and multicast tests (root,
//! iproute2). Each is named after the test process, made by the test and removed on
//! drop; tests route nothing off the machine.

use std::process::{Command, Stdio};

/// Runs `ip` with `args`; whether it succeeded.
pub fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A namespace with `lo` up, deleted on drop.
pub struct Netns(pub String);

impl Netns {
    /// `mr-<prefix>-<pid>`; `None` (after saying why) where namespaces can't be made,
    /// which fails under `CI=true`.
    pub fn new(prefix: &str) -> Option<Netns> {
        let name = format!("mr-{prefix}-{}", std::process::id());
        if !super::present(
            ip(&["netns", "add", &name]),
            "this test needs `ip netns` (iproute2, root)",
            "skipping: can't create a network namespace (needs root and iproute2)",
        ) {
            return None;
        }
        let ns = Netns(name);
        assert!(ip(&["-n", &ns.0, "link", "set", "lo", "up"]), "lo up");
        Some(ns)
    }

    /// `program` run inside the namespace.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0, program]);
        c.stdin(Stdio::null());
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        ip(&["netns", "del", &self.0]);
    }
}

/// A veth pair: `host` stays in this namespace, `peer` goes into `ns`; both up.
/// Deleted (both ends) on drop.
pub struct Veth {
    pub host: String,
    pub peer: String,
}

impl Veth {
    pub fn new(ns: &Netns, host: &str, peer: &str) -> Veth {
        let v = Veth {
            host: host.to_string(),
            peer: peer.to_string(),
        };
        for args in [
            &["link", "add", host, "type", "veth", "peer", "name", peer][..],
            &["link", "set", peer, "netns", &ns.0],
            &["link", "set", host, "up"],
            &["-n", &ns.0, "link", "set", peer, "up"],
        ] {
            assert!(ip(args), "ip {args:?}");
        }
        v
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        ip(&["link", "del", &self.host]);
    }
}
