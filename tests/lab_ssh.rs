//! A node over `qemu+ssh://` to an sshd on 127.0.0.1 whose host key is not
//! known yet: the view shows that node's error with the ssh line that
//! accepts the key, never ssh's prompt; after the key is accepted it
//! connects. A lab test (`#[ignore = "lab: ..."]`, counted by
//! scripts/test.sh; see the top of tests/lab.rs): it needs the lab's sshd
//! and `VMSHIFT_LAB_SSH=1`, which test.sh sets once the lab is up:
//!
//!   VMSHIFT_LAB_SSH_PORT  sshd port on 127.0.0.1 (default 2222)
//!   VMSHIFT_LAB_SSH_USER  login (default root), with a key the running
//!                         user's ssh offers without a prompt
//!   VMSHIFT_LAB_SSH_URI   the whole URI, when the default
//!                         qemu+ssh://USER@127.0.0.1:PORT/system?socket=$VMSHIFT_LAB_DIR/nodes/a/run/libvirt/libvirt-sock
//!                         does not fit
//!
//! It removes `[127.0.0.1]:PORT` from the user's known_hosts first (that is
//! the point of the test) and accepts it again with the line vmshift gives.
#![cfg(feature = "libvirt")]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

struct Ssh {
    port: String,
    user: String,
    uri: String,
}

/// The lab's sshd; panics with the reason when it is not there (a lab
/// test never passes unchecked).
fn ssh_lab() -> Ssh {
    if std::env::var("VMSHIFT_LAB_SSH").as_deref() != Ok("1") {
        panic!(
            "VMSHIFT_LAB_SSH is not 1: this test needs the lab's sshd; run it through ./scripts/test.sh, or `eval \"$(tests/lab/lab.sh env)\"` with the lab up and set VMSHIFT_LAB_SSH=1"
        );
    }
    let port = std::env::var("VMSHIFT_LAB_SSH_PORT").unwrap_or_else(|_| "2222".into());
    let user = std::env::var("VMSHIFT_LAB_SSH_USER").unwrap_or_else(|_| "root".into());
    let dir = std::env::var("VMSHIFT_LAB_DIR").unwrap_or_else(|_| "/var/tmp/vmshift-lab".into());
    let uri = std::env::var("VMSHIFT_LAB_SSH_URI").unwrap_or_else(|_| {
        format!("qemu+ssh://{user}@127.0.0.1:{port}/system?socket={dir}/nodes/a/run/libvirt/libvirt-sock")
    });
    Ssh { port, user, uri }
}

/// What ssh says when it asks; none of it may ever reach the screen.
const PROMPTS: &[&str] = &[
    "authenticity of host",
    "(yes/no",
    "Are you sure you want to continue connecting",
    "password:",
    "Enter passphrase",
];

fn forget_host_key(port: &str) {
    let _ = Command::new("ssh-keygen")
        .args(["-R", &format!("[127.0.0.1]:{port}")])
        .output();
}

#[test]
#[ignore = "lab: needs the lab's sshd on 127.0.0.1 (tests/lab/lab.sh); ./scripts/test.sh brings it up and runs this"]
fn an_unknown_host_key_is_the_nodes_error_with_the_fix_never_a_prompt() {
    let lab = ssh_lab();
    forget_host_key(&lab.port);
    let state = tempfile::tempdir().unwrap();
    let fix = format!(
        "ssh -o StrictHostKeyChecking=accept-new -p {} {}@127.0.0.1 true",
        lab.port, lab.user
    );

    // The CLI says the same as the view.
    let out = Command::new(env!("CARGO_BIN_EXE_vmshift"))
        .args(["status", "--connect", &lab.uri])
        .env("VMSHIFT_CONFIG", "")
        .env("VMSHIFT_STATE_DIR", state.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(
        err.contains("ssh does not know the host key of 127.0.0.1"),
        "{err}"
    );
    assert!(err.contains(&format!("`{fix}`")), "{err}");

    // The view: everything the terminal receives is recorded.
    let cmd = format!(
        "env VMSHIFT_CONFIG= VMSHIFT_STATE_DIR={} {} --connect '{}'; echo VMSHIFT-EXIT=$?; sleep 600",
        state.path().display(),
        env!("CARGO_BIN_EXE_vmshift"),
        lab.uri
    );
    let t = common::tmux::Tmux::start("ssh", 120, 40, &cmd);
    let raw = state.path().join("pane.raw");
    t.pipe_to(&raw);
    let long = Duration::from_secs(30);
    let s = t.wait_text("ssh does not know the host key", long);
    assert!(s.contains("StrictHostKeyChecking=accept-new"), "{s}");
    // Several polls (with back-off) while the key is unknown: no prompt.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(8) {
        let s = t.screen();
        for p in PROMPTS {
            assert!(!s.contains(p), "ssh's prompt {p:?} on the screen:\n{s}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    // Accept the key with the line vmshift gave; it connects by itself.
    let ok = Command::new("sh").args(["-c", &fix]).status().unwrap();
    assert!(ok.success(), "{fix}");
    t.keys(&["r"]);
    let s = t.wait_text("nodes 1/1 up", Duration::from_secs(90));
    // ctrl-l repaints the whole screen: the header and tabs are whole.
    t.keys(&["C-l"]);
    let s2 = t.wait_text("1 Cluster", long);
    assert!(s2.contains("nodes 1/1 up"), "{s}\n{s2}");
    t.keys(&["q"]);
    t.wait_text("VMSHIFT-EXIT=0", long);
    let bytes = std::fs::read(&raw).unwrap_or_default();
    let all = String::from_utf8_lossy(&bytes);
    for p in PROMPTS {
        assert!(!all.contains(p), "ssh's prompt {p:?} reached the terminal");
    }
}
