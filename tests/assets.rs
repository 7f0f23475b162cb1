//! What the package installs besides the binary, made by the binary itself:
//! `--version`, the man pages, the shell completions (and the names they
//! complete), on the simulated cluster.

use std::path::Path;

use assert_cmd::Command;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn vmshift(args: &[&str], home: &Path) -> Run {
    let out = Command::cargo_bin("vmshift")
        .unwrap()
        .args(args)
        .env("HOME", home)
        .env_remove("VMSHIFT_CONFIG")
        .env_remove("VMSHIFT_STATE_DIR")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_STATE_HOME")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

/// The commands people use (the README's usage), none of the internal ones.
const COMMANDS: &[&str] = &[
    "status",
    "migrate",
    "drain",
    "maintenance",
    "move-disk",
    "recover",
    "history",
    "start",
    "shutdown",
    "reboot",
    "poweroff",
    "cordon",
    "uncordon",
    "completions",
];

#[test]
fn version_names_the_backends_and_where_config_and_state_are() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path().display();
    let r = vmshift(&["--version"], home.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines[0],
        format!("vmshift {}", env!("CARGO_PKG_VERSION")),
        "{}",
        r.stdout
    );
    let backends = lines
        .iter()
        .find(|l| l.starts_with("backends:"))
        .expect("a backends line");
    assert!(backends.contains("simulator"), "{backends}");
    if cfg!(feature = "libvirt") {
        assert!(backends.contains("libvirt (libvirt library "), "{backends}");
    } else {
        assert!(backends.contains("built without libvirt"), "{backends}");
    }
    assert!(
        r.stdout.contains(&format!(
            "config:   {h}/.config/vmshift/config.toml (not there: built-in defaults)"
        )),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains(&format!("state:    {h}/.local/state/vmshift")),
        "{}",
        r.stdout
    );

    // The paths follow VMSHIFT_CONFIG and VMSHIFT_STATE_DIR, as the commands do.
    let out = Command::cargo_bin("vmshift")
        .unwrap()
        .arg("--version")
        .env("HOME", home.path())
        .env("VMSHIFT_CONFIG", "/etc/somewhere/vmshift.toml")
        .env("VMSHIFT_STATE_DIR", "/var/lib/somewhere")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("config:   /etc/somewhere/vmshift.toml (not there"),
        "{text}"
    );
    assert!(text.contains("state:    /var/lib/somewhere\n"), "{text}");

    // -V stays one line.
    let r = vmshift(&["-V"], home.path());
    assert_eq!(r.stdout, format!("vmshift {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn completion_scripts_offer_every_command() {
    let home = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let r = vmshift(&["completions", shell], home.path());
        assert_eq!(r.code, 0, "{shell}: {}", r.stderr);
        for c in COMMANDS {
            assert!(r.stdout.contains(c), "{shell}: no {c}");
        }
        assert!(r.stdout.contains("max-downtime"), "{shell}");
        // The internal commands are not offered.
        assert!(!r.stdout.contains("Write the man pages"), "{shell}");
    }
    let r = vmshift(&["completions", "bash"], home.path());
    assert!(
        r.stdout.contains(
            "complete -F _vmshift_with_names -o nosort -o bashdefault -o default vmshift"
        ),
        "{}",
        r.stdout
    );
    let r = vmshift(&["completions", "tcsh"], home.path());
    assert_eq!(r.code, 2, "{}", r.stderr);
}

/// Runs the bash completion for `line` (its last word is completed) with
/// the binary under test on PATH; returns what it offers.
fn bash_complete(line: &[&str], home: &Path) -> Vec<String> {
    let bin = assert_cmd::cargo::cargo_bin("vmshift");
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("vmshift.bash");
    let r = vmshift(&["completions", "bash"], home);
    std::fs::write(&script, r.stdout).unwrap();
    let words: Vec<String> = line.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        r#"source '{}'
COMP_WORDS=({})
COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))
_vmshift_with_names vmshift "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}""#,
        script.display(),
        words.join(" ")
    );
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program])
        .env("PATH", path)
        .env("HOME", home)
        .env_remove("VMSHIFT_CONFIG")
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn bash_completes_commands_options_and_names_from_the_cluster() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    assert_eq!(bash_complete(&["vmshift", "mig"], h), ["migrate"]);
    assert_eq!(
        bash_complete(&["vmshift", "migrate", "web-01", "--max-d"], h),
        ["--max-downtime"]
    );
    // The default simulated cluster's VMs and nodes.
    assert_eq!(
        bash_complete(&["vmshift", "migrate", "web"], h),
        ["web-01", "web-02", "web-03"]
    );
    assert_eq!(
        bash_complete(&["vmshift", "migrate", "web-01", ""], h),
        ["hv-01", "hv-02", "hv-03", "hv-04"]
    );
    // The cluster the line names.
    assert_eq!(
        bash_complete(&["vmshift", "--scenario", "small", "drain", ""], h),
        ["node-a", "node-b"]
    );
    assert_eq!(
        bash_complete(&["vmshift", "start", "--scenario=small", "w"], h),
        ["web"]
    );
}

#[test]
fn complete_names_gives_nothing_where_no_name_goes() {
    let home = tempfile::tempdir().unwrap();
    for line in [
        &["status"][..],
        &["migrate", "web-01", "hv-02"],
        &["maintenance"],
        &["nonsense"],
    ] {
        let mut args = vec!["complete-names", "--"];
        args.extend_from_slice(line);
        let r = vmshift(&args, home.path());
        assert_eq!(r.code, 0, "{line:?}: {}", r.stderr);
        assert_eq!(r.stdout, "", "{line:?}");
    }
}

#[test]
fn man_pages_are_written_for_vmshift_and_each_command() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("man");
    let r = vmshift(&["man", dir.to_str().unwrap()], home.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let main = std::fs::read_to_string(dir.join("vmshift.1")).unwrap();
    assert!(main.starts_with(".ie"), "not roff: {main}");
    assert!(main.contains(".TH vmshift 1"), "{main}");
    assert!(main.contains("live\\-migrate VMs"), "{main}");
    for c in COMMANDS {
        let page = dir.join(format!("vmshift-{c}.1"));
        assert!(page.exists(), "no {}", page.display());
    }
    let migrate = std::fs::read_to_string(dir.join("vmshift-migrate.1")).unwrap();
    assert!(migrate.contains("\\-\\-max\\-downtime"), "{migrate}");
    // Nothing for the internal commands.
    assert!(!dir.join("vmshift-man.1").exists());
    assert!(!dir.join("vmshift-complete-names.1").exists());
}
