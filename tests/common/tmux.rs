//! Drives the real binary inside a private tmux server: keys with
//! `send-keys`, SGR mouse sequences with `send-keys -l`, the screen with
//! `capture-pane -p`.
#![allow(dead_code)]

use std::process::Command;
use std::time::{Duration, Instant};

pub struct Tmux {
    socket: String,
    pub target: String,
}

impl Tmux {
    /// Starts `command` (a shell command line) in a detached w×h session.
    pub fn start(name: &str, w: u16, h: u16, command: &str) -> Tmux {
        let t = Tmux {
            socket: format!("vmshift-{name}-{}", std::process::id()),
            target: "e2e".into(),
        };
        let status = Command::new("tmux")
            .args([
                "-L",
                &t.socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                "e2e",
            ])
            .args(["-x", &w.to_string(), "-y", &h.to_string(), command])
            .status()
            .expect("tmux must be installed (scripts/test.sh installs it)");
        assert!(status.success(), "tmux new-session failed");
        t
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("run tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.target];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Any tmux command on this server, e.g. `["set-option", "-g", ...]`.
    pub fn command(&self, args: &[&str]) -> String {
        self.tmux(args)
    }

    pub fn literal(&self, text: &str) {
        self.tmux(&["send-keys", "-t", &self.target, "-l", text]);
    }

    /// Mouse with SGR encoding; x and y are 0-based screen cells.
    pub fn mouse_press(&self, x: usize, y: usize) {
        self.literal(&format!("\x1b[<0;{};{}M", x + 1, y + 1));
    }
    pub fn mouse_drag(&self, x: usize, y: usize) {
        self.literal(&format!("\x1b[<32;{};{}M", x + 1, y + 1));
    }
    pub fn mouse_release(&self, x: usize, y: usize) {
        self.literal(&format!("\x1b[<0;{};{}m", x + 1, y + 1));
    }

    /// Appends every byte the program writes to the pane to `file`.
    pub fn pipe_to(&self, file: &std::path::Path) {
        std::fs::write(file, b"").unwrap();
        self.tmux(&[
            "pipe-pane",
            "-o",
            "-t",
            &self.target,
            &format!("cat >> '{}'", file.display()),
        ]);
    }

    /// Drags `vm`'s row (found on `screen`) onto `node`'s card with the
    /// mouse — press, move, hover until the VM is allowed there, release —
    /// and waits for the confirm dialog.
    pub fn drag_vm_onto(&self, screen: &str, vm: &str, node: &str, timeout: Duration) {
        let (vy, vx) =
            find_vm_row(screen, vm).unwrap_or_else(|| panic!("{vm} on screen:\n{screen}"));
        let (ny, nx) = find(screen, &format!("● {node} "))
            .unwrap_or_else(|| panic!("{node}'s card:\n{screen}"));
        self.mouse_press(vx + 1, vy);
        self.mouse_drag(vx + 3, vy + 1);
        self.mouse_drag(nx + 2, ny + 2);
        self.wait_text(&format!("→ {node}: allowed"), timeout);
        self.mouse_release(nx + 2, ny + 2);
        self.wait_text(&format!("Move {vm} from "), timeout);
    }

    pub fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", &self.target])
    }

    /// The screen with its SGR attributes (as tmux keeps them).
    pub fn styled_screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-e", "-t", &self.target])
    }

    /// tmux's view of the pane's terminal modes, e.g. `#{alternate_on}`.
    pub fn format(&self, f: &str) -> String {
        self.tmux(&["display-message", "-p", "-t", &self.target, f])
            .trim()
            .to_string()
    }

    /// Waits until the screen satisfies `ok`, or fails with the screen.
    pub fn wait_for(&self, what: &str, timeout: Duration, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            if start.elapsed() > timeout {
                panic!("timed out waiting for {what}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn wait_text(&self, text: &str, timeout: Duration) -> String {
        self.wait_for(text, timeout, |s| s.contains(text))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

/// (row, column in chars) of the first occurrence of `needle`.
pub fn find(screen: &str, needle: &str) -> Option<(usize, usize)> {
    screen.lines().enumerate().find_map(|(row, line)| {
        line.find(needle)
            .map(|byte| (row, line[..byte].chars().count()))
    })
}

/// (row, column) of `vm`'s row in a node card or list (its state glyph,
/// name and padding), not a mention of it elsewhere ("● vm on node").
pub fn find_vm_row(screen: &str, vm: &str) -> Option<(usize, usize)> {
    ["●", "⇄", "‖", "↻", "■"]
        .iter()
        .find_map(|g| find(screen, &format!("{g} {vm}  ")))
}

/// Whether the node card titled `node` lists `vm`: the card is the box whose
/// top border holds "<glyph> node", and `vm` must appear between its left
/// and right borders before its bottom border.
pub fn card_lists(screen: &str, node: &str, vm: &str) -> bool {
    let lines: Vec<Vec<char>> = screen.lines().map(|l| l.chars().collect()).collect();
    // A card title is "<state glyph> <node> <state>".
    let Some((row, col)) = ["●", "◐", "✖", "?"]
        .iter()
        .find_map(|g| find(screen, &format!("{g} {node} ")))
    else {
        return false;
    };
    // The card's left border is the corner left of the title.
    let line = &lines[row];
    let Some(left) = (0..col).rev().find(|&c| matches!(line[c], '┌' | '┏' | '╔')) else {
        return false;
    };
    let right = (col..line.len())
        .find(|&c| matches!(line[c], '┐' | '┓' | '╗'))
        .unwrap_or(line.len());
    for l in lines.iter().skip(row + 1) {
        if l.get(left).is_some_and(|c| matches!(c, '└' | '┗' | '╚')) {
            return false;
        }
        let inside: String = l
            .iter()
            .skip(left + 1)
            .take(right.saturating_sub(left + 1))
            .collect();
        if inside.split_whitespace().any(|w| w == vm) {
            return true;
        }
    }
    false
}
