//! End to end: the real binary in tmux, moved by keyboard and by mouse.

mod common;

use std::time::Duration;

use common::tmux::{Tmux, card_lists};

const T: Duration = Duration::from_secs(20);

fn launch(name: &str, w: u16, h: u16, args: &str) -> (Tmux, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cmd = format!(
        "env VMSHIFT_CONFIG= VMSHIFT_STATE_DIR={} {} {args}; echo VMSHIFT-EXIT=$?; sleep 600",
        dir.path().display(),
        env!("CARGO_BIN_EXE_vmshift")
    );
    let t = Tmux::start(name, w, h, &cmd);
    t.wait_text("hv-04", T);
    (t, dir)
}

#[test]
fn move_by_keyboard_and_by_mouse_then_quit_restores_the_terminal() {
    let (t, dir) = launch("move", 120, 40, "--speed 20");
    assert_eq!(
        t.format("#{alternate_on} #{mouse_any_flag}"),
        "1 1",
        "alt screen and mouse capture on"
    );
    let s = t.screen();
    assert!(card_lists(&s, "hv-01", "web-01"), "{s}");

    // Keyboard: web-01 is selected; m lists the targets ranked by the
    // prediction; typing narrows to hv-02; Enter, y.
    t.keys(&["m"]);
    let s = t.wait_text("move web-01 from hv-01", T);
    assert!(s.contains("allowed") && s.contains("converges"), "{s}");
    t.literal("hv-02");
    t.wait_text("1 of 4 match", T);
    t.wait_text("web-01 → hv-02: converges", T);
    t.keys(&["Enter"]);
    t.wait_text("Move web-01 from hv-01 to hv-02?", T);
    t.keys(&["y"]);
    let s = t.wait_text("✓ done", T);
    assert!(
        s.contains("downtime actual"),
        "the gauge shows the actual downtime:\n{s}"
    );
    let lines: Vec<&str> = s.lines().collect();
    let header = lines
        .iter()
        .position(|l| l.contains("still dirty") && l.contains("throttle"))
        .expect("round table");
    let rounds = lines[header + 1..]
        .iter()
        .take_while(|l| l.matches("/s").count() >= 2)
        .count();
    assert!(rounds >= 2, "at least two rounds in the table:\n{s}");
    t.keys(&["1"]);
    // On hv-02 alone (while it moves, both cards can list it).
    let s = t.wait_for("web-01 on hv-02 alone", T, |s| {
        card_lists(s, "hv-02", "web-01") && !card_lists(s, "hv-01", "web-01")
    });
    assert!(card_lists(&s, "hv-02", "web-01"));

    // Mouse: press on web-02, drag, release on hv-03's card.
    t.drag_vm_onto(&s, "web-02", "hv-03", T);
    t.wait_text("Move web-02 from hv-02 to hv-03?", T);
    t.keys(&["y"]);
    t.wait_text("✓ done", T);
    t.keys(&["1"]);
    t.wait_for("web-02 on hv-03", T, |s| card_lists(s, "hv-03", "web-02"));

    // Quit: nothing runs, so it leaves at once and restores the terminal.
    t.keys(&["q"]);
    t.wait_text("VMSHIFT-EXIT=0", T);
    assert_eq!(
        t.format("#{alternate_on} #{mouse_any_flag} #{mouse_sgr_flag} #{cursor_flag}"),
        "0 0 0 1"
    );
    // Both migrations are in the flight recorder.
    let rec = std::fs::read_to_string(dir.path().join("migrations.jsonl")).unwrap();
    let recs: Vec<serde_json::Value> = rec
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let vms: Vec<&str> = recs
        .iter()
        .map(|r| r["migration"]["vm"].as_str().unwrap())
        .collect();
    assert_eq!(vms, ["web-01", "web-02"]);
    assert!(
        recs.iter()
            .all(|r| r["cluster"] == "prod-east"
                && r["migration"]["outcome"]["result"] == "completed")
    );
}

/// Every signal that ends the view restores the terminal (alternate
/// screen, mouse capture, cursor) and exits 128 + its number.
#[test]
fn every_ending_signal_restores_the_terminal_and_exits_128_plus_its_number() {
    for (signal, code) in [("-TERM", 143), ("-HUP", 129), ("-INT", 130), ("-QUIT", 131)] {
        let (t, _dir) = launch(&format!("sig{}", &signal[1..]), 80, 24, "");
        assert_eq!(t.format("#{alternate_on} #{mouse_any_flag}"), "1 1");
        let pid = t.format("#{pane_pid}");
        // The pane runs a shell; vmshift is its child.
        let out = std::process::Command::new("pkill")
            .args([signal, "-P", &pid, "-x", "vmshift"])
            .status()
            .unwrap();
        assert!(out.success(), "vmshift was running");
        t.wait_text(&format!("VMSHIFT-EXIT={code}"), T);
        assert_eq!(
            t.format("#{alternate_on} #{mouse_any_flag} #{cursor_flag}"),
            "0 0 1",
            "after {signal}"
        );
    }
}

#[test]
fn a_config_error_is_reported_before_the_screen_switches() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, "[ui]\npoll_interval_ms = 5\n").unwrap();
    let cmd = format!(
        "{} --config {}; echo VMSHIFT-EXIT=$?; sleep 600",
        env!("CARGO_BIN_EXE_vmshift"),
        cfg.display()
    );
    let t = Tmux::start("cfg", 80, 24, &cmd);
    let s = t.wait_text("VMSHIFT-EXIT=2", T);
    assert!(s.contains(&format!("{}:2:20", cfg.display())), "{s}");
    assert_eq!(t.format("#{alternate_on}"), "0");
}

/// NO_COLOR: no colour at all, and the selection still in reverse video.
#[test]
fn no_color_keeps_reverse_video_and_drops_colours() {
    let dir = tempfile::tempdir().unwrap();
    let cmd = format!(
        "env NO_COLOR=1 VMSHIFT_CONFIG= VMSHIFT_STATE_DIR={} {}; sleep 600",
        dir.path().display(),
        env!("CARGO_BIN_EXE_vmshift")
    );
    let t = Tmux::start("nocolor", 100, 30, &cmd);
    t.wait_text("hv-04", T);
    let styled = t.styled_screen();
    let row = styled
        .lines()
        .find(|l| l.contains("web-01"))
        .expect("web-01 on screen");
    assert!(
        row.contains("\x1b[7m"),
        "the selected VM is in reverse video: {row:?}"
    );
    for code in [
        "\x1b[38;", "\x1b[48;", "\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[36m",
    ] {
        assert!(!styled.contains(code), "colour {code:?} with NO_COLOR");
    }
}

/// Idle cost: with the simulated clock frozen, polls return the same
/// cluster, and vmshift writes nothing to the terminal.
#[test]
fn nothing_is_written_while_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, "[ui]\npoll_interval_ms = 100\n").unwrap();
    let (t, _state) = launch(
        "idle",
        120,
        40,
        &format!("--speed 0 --config {}", cfg.display()),
    );
    // The first frame is drawn; from now on every byte is counted.
    let log = dir.path().join("pane.bytes");
    t.pipe_to(&log);
    // Twenty poll intervals of an unchanged cluster (this test measures
    // silence, so it has to let time pass).
    std::thread::sleep(Duration::from_secs(2));
    let idle = std::fs::metadata(&log).map_or(0, |m| m.len());
    assert_eq!(idle, 0, "bytes written while idle");
    // And a key that changes the screen does write: the counter works.
    t.keys(&["2"]);
    t.wait_text("VMs (14)", T);
    let after = std::fs::metadata(&log).map_or(0, |m| m.len());
    assert!(after > 0, "a redraw is seen by the byte counter");
}

/// Ctrl-L repaints the whole screen after something else wrote over it (a
/// `wall` message, a stray write to the tty): every cell as it was, though
/// nothing in the cluster changed (the clock is frozen, so only the
/// repaint can bring the view back).
#[test]
fn ctrl_l_redraws_the_whole_screen() {
    let (t, _dir) = launch("ctrl-l", 120, 40, "--speed 0");
    let before = t.wait_text("hv-04", T);
    // Another program clears the terminal and writes on it.
    let tty = t.format("#{pane_tty}");
    let mut w = std::fs::OpenOptions::new().write(true).open(&tty).unwrap();
    std::io::Write::write_all(
        &mut w,
        b"\x1b[H\x1b[2J\x1b[12;30HBroadcast message: STRAY-TEXT",
    )
    .unwrap();
    let spoiled = t.wait_text("STRAY-TEXT", T);
    assert!(!spoiled.contains("hv-04"), "the view is gone:\n{spoiled}");
    t.keys(&["C-l"]);
    let after = t.wait_for("the whole view again", T, |s| s == before);
    assert!(!after.contains("STRAY-TEXT"));
}

/// The bug: a scripted `:` command with a backspace on the empty
/// line. The line stays open, so no key of the command runs as a
/// normal-mode action (space used to start a move and Enter to open its
/// confirm dialog).
#[test]
fn backspace_on_the_empty_command_line_runs_no_keys_as_actions() {
    let (t, _dir) = launch("cmdbs", 80, 24, "");
    t.keys(&[":", "BSpace"]);
    t.literal("filter web");
    t.keys(&["Enter"]);
    // The tab row marks the filter (`/web` at 80 columns).
    let s = t.wait_for("the filter or a dialog", T, |s| {
        s.contains("/web") || s.contains("Move ") || s.contains("a-z narrow")
    });
    assert!(s.contains("/web"), "the command ran:\n{s}");
    assert!(
        !s.contains("Move ") && !s.contains("a-z narrow") && !s.contains("about"),
        "no move dialog, no drag, no about panel:\n{s}"
    );
    // Editing keys reach the line: ctrl-u clears what was typed.
    t.keys(&[":"]);
    t.literal("drain hv-01");
    t.keys(&["C-u"]);
    t.literal("vm cache");
    t.keys(&["Tab", "Enter"]);
    t.wait_text("cache-01 on hv-04", T);
    let s = t.screen();
    assert!(!s.contains("drain node?"), "{s}");
}

/// A refusal read in full in the detail view at 80×24 and copied with
/// OSC 52: the escape sequence is read from what the pane received, and
/// tmux (with `set-clipboard on`) holds the text in its paste buffer.
#[test]
fn a_refusal_opens_in_full_and_is_copied_with_osc_52() {
    use base64::Engine;
    let (t, dir) = launch("osc52", 80, 24, "");
    t.command(&["set-option", "-g", "set-clipboard", "on"]);
    t.keys(&[":"]);
    t.literal("migrate batch-etl hv-04");
    t.keys(&["Enter"]);
    t.wait_text("needs 32.0 GiB", T);
    t.keys(&["6"]);
    t.wait_text("Events (newest first", T);
    t.keys(&["Enter"]);
    let s = t.wait_text("c copies", T);
    assert!(s.contains("pick another node"), "the whole reason:\n{s}");
    let log = dir.path().join("pane.bytes");
    t.pipe_to(&log);
    t.keys(&["c"]);
    t.wait_text("copied", T);
    // The pipe's reader writes the file on its own time: wait until the
    // whole sequence is in it (the screen already says it was sent).
    let deadline = std::time::Instant::now() + T;
    let text = loop {
        let bytes = std::fs::read(&log).unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let whole = text
            .find("\x1b]52;c;")
            .is_some_and(|i| text[i..].contains('\x07'));
        if whole || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let start = text
        .find("\x1b]52;c;")
        .expect("an OSC 52 sequence was written")
        + 7;
    let end = start + text[start..].find('\x07').expect("ended by BEL");
    let copied = base64::engine::general_purpose::STANDARD
        .decode(&text[start..end])
        .unwrap();
    let copied = String::from_utf8(copied).unwrap();
    assert!(
        copied.contains("cannot move batch-etl to hv-04")
            && copied.contains("free memory there or pick another node"),
        "{copied}"
    );
    let buffer = t.command(&["show-buffer"]);
    assert!(buffer.contains("needs 32.0 GiB"), "tmux buffer: {buffer:?}");
}
