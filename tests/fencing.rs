//! The fencing guards, each reached at the layer where it lives, on
//! libvirt's own test driver (`test:///PATH.xml`: no daemon, no lab):
//! the libvirt backend's `confirm_fenced` refuses a node that is not lost,
//! its `restart_vm` refuses a VM whose node answers or was not confirmed
//! fenced, and `vmshift recover NODE --confirm-fenced OTHER` refuses a
//! confirmation that names another node. A VM started twice on shared
//! storage corrupts its disks: each of these is the last word before that.
//!
//! A node is made lost the way it happens: it answered once (its VMs'
//! definitions and the time are kept in the state dir), then its libvirt
//! cannot be reached (its test-driver file is gone).
#![cfg(feature = "libvirt")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use vmshift::backends::Backend;
use vmshift::backends::libvirt::{LibvirtCluster, LibvirtConfig, NodeSpec, testdriver};
use vmshift::cluster::{NodeState, RecoveryStep, VmState};

/// The state dir of this test process (VMSHIFT_STATE_DIR, set once before
/// any backend reads it); each test uses a cluster name of its own, so its
/// own files in it.
fn state_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        // SAFETY: set once, under the OnceLock, before any backend (or
        // libvirt thread) of this process exists to read the environment.
        unsafe { std::env::set_var("VMSHIFT_STATE_DIR", &dir) };
        dir
    })
}

/// Two nodes on libvirt's test driver: n0 (a file of its own) runs
/// `lost-vm` (1 MiB) with its disk on the directory pool `default-pool`, and
/// n1 is `test:///default` (one `test` VM, a few MiB free, the same pool
/// directory: one shared volume). Once n0's file is gone its libvirt cannot
/// be reached.
struct Nodes {
    dir: tempfile::TempDir,
    n0: String,
}

const N1: &str = "test:///default";

impl Nodes {
    fn new() -> Nodes {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node-0.xml");
        std::fs::write(
            &path,
            "<node>\n\
             <cpu><mhz>1400</mhz><model>i686</model><active>16</active><nodes>2</nodes><sockets>2</sockets><cores>2</cores><threads>2</threads></cpu>\n\
             <memory>3145728</memory>\n\
             <domain type='test'><name>lost-vm</name><memory unit='KiB'>1024</memory><vcpu>1</vcpu><os><type>hvm</type></os><devices><disk type='file' device='disk'><source file='/default-pool/lost-vm.img'/><target dev='vda' bus='virtio'/></disk></devices></domain>\n\
             <pool type='dir'><name>default-pool</name><capacity unit='GiB'>100</capacity><allocation unit='GiB'>1</allocation><available unit='GiB'>99</available><target><path>/default-pool</path></target></pool>\n\
             </node>\n",
        )
        .unwrap();
        Nodes {
            n0: testdriver::uri(&path),
            dir,
        }
    }

    /// n0's libvirt can no longer be reached.
    fn lose_n0(&self) {
        std::fs::remove_file(self.dir.path().join("node-0.xml")).unwrap();
    }

    fn backend(&self, cluster: &str, lost_after: Duration) -> LibvirtCluster {
        state_dir();
        LibvirtCluster::connect(LibvirtConfig {
            cluster: cluster.into(),
            nodes: [&self.n0, N1]
                .iter()
                .enumerate()
                .map(|(i, uri)| NodeSpec {
                    name: Some(format!("n{i}")),
                    uri: uri.to_string(),
                    migrate_host: None,
                    labels: Vec::new(),
                })
                .collect(),
            shared: Vec::new(),
            timeout: Duration::from_secs(10),
            lost_after,
            manager: None,
            rules: Vec::new(),
        })
        .unwrap()
    }
}

#[track_caller]
fn refusal(r: Result<impl std::fmt::Debug, vmshift::cluster::BackendError>) -> String {
    match r {
        Ok(v) => panic!("not refused: {v:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_backend_restarts_nothing_of_a_node_that_is_not_lost_or_not_confirmed_fenced() {
    let nodes = Nodes::new();
    // Both answer: their VMs' definitions are kept.
    let mut first = nodes.backend("fence-backend", Duration::from_secs(3600));
    let s = first.snapshot().unwrap();
    assert_eq!(s.nodes_up(), 2, "{:?}", s.nodes);
    drop(first);
    nodes.lose_n0();

    // Not answering, but not for long enough to count as lost.
    let mut b = nodes.backend("fence-backend", Duration::from_secs(3600));
    let s = b.snapshot().unwrap();
    assert_eq!(s.node("n0").unwrap().state, NodeState::Unreachable);
    let e = refusal(b.confirm_fenced("n0"));
    assert!(
        e.starts_with("n0 is unreachable, not lost: nothing is restarted elsewhere"),
        "{e}"
    );
    let e = refusal(b.restart_vm("lost-vm", "n1"));
    assert!(
        e.starts_with("n0 has not been confirmed powered off or fenced"),
        "{e}"
    );
    drop(b);

    // Lost (it has not answered for longer than lost_after).
    let mut b = nodes.backend("fence-backend", Duration::ZERO);
    let s = b.snapshot().unwrap();
    assert_eq!(s.node("n0").unwrap().state, NodeState::Down);
    assert_eq!(s.node("n1").unwrap().state, NodeState::Up);
    let lost = s.vm("lost-vm").expect("n0's VM, as last seen");
    assert!(lost.lost.is_some(), "{lost:?}");
    // A node that answers is never confirmed fenced, nor are its VMs restarted.
    let e = refusal(b.confirm_fenced("n1"));
    assert!(e.starts_with("n1 is up, not lost"), "{e}");
    let e = refusal(b.restart_vm("test", "n0"));
    assert!(
        e.starts_with("n1 answers, so test is not lost; it is never started a second time"),
        "{e}"
    );
    // Lost but not confirmed fenced: the backend refuses on its own, whatever
    // its caller checked.
    let e = refusal(b.restart_vm("lost-vm", "n1"));
    assert!(
        e.starts_with("n0 has not been confirmed powered off or fenced")
            && e.contains("--confirm-fenced n0"),
        "{e}"
    );
    // Confirmed: it restarts, with its timeline.
    b.confirm_fenced("n0").unwrap();
    let rec = b.restart_vm("lost-vm", "n1").unwrap();
    assert_eq!((rec.from.as_str(), rec.to.as_str()), ("n0", "n1"));
    let steps: Vec<RecoveryStep> = rec.steps.iter().map(|s| s.0).collect();
    assert_eq!(
        steps,
        [
            RecoveryStep::Lost,
            RecoveryStep::FenceConfirmed,
            RecoveryStep::Defined,
            RecoveryStep::Started
        ],
        "{rec:?}"
    );
    assert_eq!(rec.error, None);
    let s = b.snapshot().unwrap();
    assert!(
        s.vms
            .iter()
            .any(|v| v.name == "lost-vm" && v.node == "n1" && v.state == VmState::Running),
        "{:?}",
        s.vms
    );
}

/// The config naming both nodes (lost after 60 s without an answer).
fn cli_config(nodes: &Nodes, dir: &Path) -> PathBuf {
    let cfg = format!(
        "[backend]\nkind = \"libvirt\"\n\n[libvirt]\ncluster = \"fence-cli\"\nlost_after_s = 60\n\n\
         [[libvirt.node]]\nname = \"n0\"\nuri = \"{}\"\n\n[[libvirt.node]]\nname = \"n1\"\nuri = \"{N1}\"\n",
        nodes.n0
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}

fn vmshift(config: &Path, state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vmshift"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("VMSHIFT_STATE_DIR", state)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// stderr without libxml's complaint about the test driver's missing file
/// (a real node has no such file).
fn said(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| !l.starts_with("I/O warning : failed to load external entity"))
        .map(str::to_string)
        .collect()
}

#[test]
fn recover_restarts_nothing_until_the_lost_nodes_own_name_is_typed() {
    let nodes = Nodes::new();
    let state = tempfile::tempdir().unwrap();
    let config = cli_config(&nodes, state.path());
    let o = vmshift(&config, state.path(), &["status", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    nodes.lose_n0();
    // n0 last answered ten minutes ago (lost_after_s is 60): what vmshift
    // keeps of when each node last answered says so.
    let seen = state.path().join("libvirt-seen-fence-cli.json");
    let kept = std::fs::read_to_string(&seen).unwrap_or_else(|e| panic!("{}: {e}", seen.display()));
    assert!(kept.contains(&nodes.n0), "{kept}");
    let ten_minutes_ago = vmshift::record::now_ms() - 600_000;
    std::fs::write(
        &seen,
        serde_json::json!({ &nodes.n0: ten_minutes_ago }).to_string(),
    )
    .unwrap();

    // The plan restarts lost-vm on n1.
    let o = vmshift(
        &config,
        state.path(),
        &["recover", "n0", "--dry-run", "--json"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(r#""restarts":[{"memory":1048576,"to":"n1","vm":"lost-vm"}]"#),
        "{}",
        text(&o)
    );

    let restarted = |out: &str| {
        ["fence_confirmed", "defined", "started", "running"]
            .into_iter()
            .filter(|step| out.contains(&format!("\"event\":\"{step}\"")))
            .collect::<Vec<_>>()
    };
    // Another node's name, a near miss, a name of no node: refused, one
    // sentence, nothing confirmed or started.
    for wrong in ["n1", "n0 ", "hv-01"] {
        let o = vmshift(
            &config,
            state.path(),
            &["recover", "n0", "--confirm-fenced", wrong, "--json"],
        );
        let out = text(&o);
        assert_eq!(o.status.code(), Some(2), "{wrong:?}: {out}");
        assert!(
            out.contains(&format!(
                "--confirm-fenced names {wrong}, but the node to recover is n0; type the lost node's name"
            )),
            "{wrong:?}: {out}"
        );
        assert_eq!(restarted(&out), Vec::<&str>::new(), "{wrong:?}: {out}");
    }
    let o = vmshift(
        &config,
        state.path(),
        &["recover", "n0", "--confirm-fenced", "n1"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(
        said(&o),
        [
            "vmshift: --confirm-fenced names n1, but the node to recover is n0; type the lost node's name"
        ],
        "{}",
        text(&o)
    );
    // No name at all: refused, saying what to type.
    let o = vmshift(&config, state.path(), &["recover", "n0", "--json"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("--confirm-fenced n0"), "{}", text(&o));
    assert_eq!(restarted(&text(&o)), Vec::<&str>::new(), "{}", text(&o));
    // Its own name: confirmed, and lost-vm restarts on n1.
    let o = vmshift(
        &config,
        state.path(),
        &["recover", "n0", "--confirm-fenced", "n0", "--json"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        restarted(&text(&o)),
        ["fence_confirmed", "defined", "started", "running"],
        "{}",
        text(&o)
    );
}
