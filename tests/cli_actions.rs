//! `vmshift start|shutdown|reboot|poweroff VM` and `vmshift cordon|uncordon
//! NODE` on the built-in simulated cluster.

use assert_cmd::Command;

fn vmshift(args: &[&str], state: &std::path::Path) -> (i32, String, String) {
    let out = Command::cargo_bin("vmshift")
        .unwrap()
        .args(args)
        .env("VMSHIFT_STATE_DIR", state)
        .env("VMSHIFT_CONFIG", "")
        .env("HOME", state)
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn a_cordon_outlives_the_process_and_refuses_moves_with_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (code, out, _) = vmshift(&["cordon", "hv-02"], d);
    assert_eq!(code, 0);
    assert!(out.starts_with("node hv-02 is cordoned"), "{out}");
    assert!(d.join("cordons.json").exists());

    let (_, out, _) = vmshift(&["status"], d);
    assert!(
        out.contains("⊘ cordoned (since ") && out.contains("by this vmshift install)"),
        "{out}"
    );
    let (code, _, err) = vmshift(&["migrate", "web-01", "hv-02", "--speed", "max"], d);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("node hv-02 is cordoned") && err.contains("vmshift uncordon hv-02"),
        "{err}"
    );
    let (code, out, _) = vmshift(&["uncordon", "hv-02"], d);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), "node hv-02 is uncordoned: it takes VMs again");
    let (code, _, err) = vmshift(&["cordon", "hv-99"], d);
    assert_eq!(code, 2);
    assert!(err.contains("there is no node named \"hv-99\""), "{err}");
}

#[test]
fn vm_actions_say_what_they_did_and_force_off_wants_yes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (code, out, _) = vmshift(&["shutdown", "web-01"], d);
    assert_eq!(code, 0);
    assert!(out.contains("shutdown (ACPI) of web-01 requested"), "{out}");
    let (code, _, err) = vmshift(&["poweroff", "web-01"], d);
    assert_eq!(code, 2);
    assert!(err.contains("add --yes"), "{err}");
    let (code, out, _) = vmshift(&["poweroff", "web-01", "--yes"], d);
    assert_eq!((code, out.trim()), (0, "web-01 forced off on hv-01"));
    // Each run is a fresh simulated cluster: web-01 runs again there.
    let (code, _, err) = vmshift(&["start", "web-01"], d);
    assert_eq!(code, 3);
    assert!(err.contains("web-01 is running already"), "{err}");
    let (code, _, err) = vmshift(&["--read-only", "reboot", "web-01"], d);
    assert_eq!(code, 2);
    assert!(err.contains("read-only"), "{err}");
}
