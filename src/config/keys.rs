//! The key and action names of `[keys]` in config.toml: what a key can
//! do, and a key as written there (`q`, `ctrl-c`, `shift-tab`, `f1`). The
//! bindings built from them are in `app::keymap`.

use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Deserialize;

/// Everything a key can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Quit,
    Help,
    About,
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Top,
    Bottom,
    NextView,
    PrevView,
    ViewCluster,
    ViewVms,
    ViewNodes,
    ViewVolumes,
    ViewMigrations,
    ViewEvents,
    ViewHistory,
    Move,
    Confirm,
    Cancel,
    Filter,
    Problems,
    SortNext,
    SortReverse,
    Command,
    Abort,
    Postcopy,
    DowntimeUp,
    DowntimeDown,
    BandwidthUp,
    BandwidthDown,
    ToggleMouse,
    Refresh,
    StartVm,
    ShutdownVm,
    RebootVm,
    PowerOffVm,
    Console,
    MoveDisk,
    Redraw,
    Copy,
    Yes,
    No,
}

impl Action {
    pub fn description(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::Help => "help",
            Action::About => "about vmshift (its own CPU and memory)",
            Action::Up => "up",
            Action::Down => "down",
            Action::Left => "left / previous node",
            Action::Right => "right / next node",
            Action::PageUp => "page up",
            Action::PageDown => "page down",
            Action::Top => "first",
            Action::Bottom => "last",
            Action::NextView => "next view",
            Action::PrevView => "previous view",
            Action::ViewCluster => "cluster view",
            Action::ViewVms => "VM table",
            Action::ViewNodes => "nodes (triage: one row per node, sortable)",
            Action::ViewVolumes => "volumes",
            Action::ViewMigrations => "migrations",
            Action::ViewEvents => "event log",
            Action::ViewHistory => "history: past migrations (Enter shows one as it ran)",
            Action::Move => "move the selected VM (pick a node, Enter drops)",
            Action::Confirm => "confirm / drop / open in full (event, VM, migration)",
            Action::Cancel => "cancel / close",
            Action::Filter => "filter VMs",
            Action::Problems => "show only problems, in every view (again: show all)",
            Action::SortNext => "nodes view: sort by the next column",
            Action::SortReverse => "nodes view: reverse the order",
            Action::Command => "command line (commands below; Tab completes, ↑↓ history)",
            Action::Abort => "abort the selected migration (in a VM's detail: its disk move)",
            Action::Postcopy => "switch the selected migration to post-copy",
            Action::DowntimeUp => "raise max downtime",
            Action::DowntimeDown => "lower max downtime",
            Action::BandwidthUp => "raise bandwidth limit",
            Action::BandwidthDown => "lower bandwidth limit",
            Action::ToggleMouse => "mouse capture on/off",
            Action::Refresh => "poll the cluster now",
            Action::StartVm => "start the selected VM",
            Action::ShutdownVm => "shut the selected VM down (ACPI; asks first)",
            Action::RebootVm => "reboot the selected VM (asks first)",
            Action::PowerOffVm => "force the selected VM off (type its name to confirm)",
            Action::Console => {
                "serial console of the selected VM (virsh console; ctrl-] comes back)"
            }
            Action::MoveDisk => {
                "move a disk of the selected VM to another volume while it runs (block copy, then pivot)"
            }
            Action::Redraw => "redraw the whole screen",
            Action::Yes => "yes, in a question (post-copy takes only this key)",
            Action::No => "no, in a question",
            Action::Copy => {
                "detail view: copy its text to the clipboard (OSC 52; in tmux: set -g set-clipboard on)"
            }
        }
    }

    /// A short word for the footer.
    pub fn hint(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::Help => "help",
            Action::About => "about",
            Action::Move => "move",
            Action::Confirm => "ok",
            Action::Cancel => "cancel",
            Action::Filter => "filter",
            Action::Problems => "problems",
            Action::SortNext => "sort",
            Action::SortReverse => "reverse",
            Action::Command => "cmd",
            Action::Abort => "abort",
            Action::Postcopy => "post-copy",
            Action::DowntimeUp => "downtime+",
            Action::DowntimeDown => "downtime-",
            Action::BandwidthUp => "bw+",
            Action::BandwidthDown => "bw-",
            Action::ToggleMouse => "mouse",
            Action::NextView => "view",
            Action::Refresh => "refresh",
            Action::StartVm => "start",
            Action::ShutdownVm => "shutdown",
            Action::RebootVm => "reboot",
            Action::PowerOffVm => "force off",
            Action::Console => "console",
            Action::MoveDisk => "move disk",
            Action::Redraw => "redraw",
            Action::Copy => "copy",
            Action::Yes => "yes",
            Action::No => "no",
            _ => self.description(),
        }
    }

    /// Whether the action changes the cluster (hidden in read-only mode).
    pub fn mutates(self) -> bool {
        matches!(
            self,
            Action::Move
                | Action::Abort
                | Action::Postcopy
                | Action::DowntimeUp
                | Action::DowntimeDown
                | Action::BandwidthUp
                | Action::BandwidthDown
                | Action::StartVm
                | Action::ShutdownVm
                | Action::RebootVm
                | Action::PowerOffVm
                | Action::Console
                | Action::MoveDisk
        )
    }
}

/// A key with modifiers, parsed from strings like `q`, `ctrl-c`, `shift-tab`, `f1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub code: KeyCodeOrd,
    pub ctrl: bool,
    pub alt: bool,
}

/// `KeyCode` with an order, for a stable map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyCodeOrd {
    Char(char),
    F(u8),
    Named(u8),
}

const NAMED: &[(&str, KeyCode)] = &[
    ("enter", KeyCode::Enter),
    ("esc", KeyCode::Esc),
    ("tab", KeyCode::Tab),
    ("backtab", KeyCode::BackTab),
    ("backspace", KeyCode::Backspace),
    ("up", KeyCode::Up),
    ("down", KeyCode::Down),
    ("left", KeyCode::Left),
    ("right", KeyCode::Right),
    ("pageup", KeyCode::PageUp),
    ("pagedown", KeyCode::PageDown),
    ("home", KeyCode::Home),
    ("end", KeyCode::End),
    ("delete", KeyCode::Delete),
    ("insert", KeyCode::Insert),
];

impl Key {
    pub fn from_event(ev: &KeyEvent) -> Option<Key> {
        let code = match ev.code {
            KeyCode::Char(' ') => KeyCodeOrd::Char(' '),
            KeyCode::Char(c) => KeyCodeOrd::Char(if ev.modifiers.contains(KeyModifiers::CONTROL) {
                c.to_ascii_lowercase()
            } else {
                c
            }),
            KeyCode::F(n) => KeyCodeOrd::F(n),
            other => KeyCodeOrd::Named(NAMED.iter().position(|(_, k)| *k == other)? as u8),
        };
        Some(Key {
            code,
            ctrl: ev.modifiers.contains(KeyModifiers::CONTROL),
            alt: ev.modifiers.contains(KeyModifiers::ALT),
        })
    }

    pub fn parse(s: &str) -> Result<Key, String> {
        let mut ctrl = false;
        let mut alt = false;
        let mut rest = s;
        loop {
            if let Some(r) = rest.strip_prefix("ctrl-") {
                ctrl = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("alt-") {
                alt = true;
                rest = r;
            } else {
                break;
            }
        }
        let code = if rest == "space" {
            KeyCodeOrd::Char(' ')
        } else if rest == "shift-tab" {
            KeyCodeOrd::Named(NAMED.iter().position(|(n, _)| *n == "backtab").unwrap() as u8)
        } else if let Some(i) = NAMED.iter().position(|(n, _)| *n == rest) {
            KeyCodeOrd::Named(i as u8)
        } else if let Some(n) = rest.strip_prefix('f').and_then(|n| n.parse::<u8>().ok()) {
            KeyCodeOrd::F(n)
        } else {
            let mut chars = rest.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => KeyCodeOrd::Char(if ctrl { c.to_ascii_lowercase() } else { c }),
                _ => {
                    return Err(format!(
                        "unknown key {s:?}; write a character, a name ({}, space, f1…f12) with optional ctrl- or alt-",
                        NAMED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                    ));
                }
            }
        };
        Ok(Key { code, ctrl, alt })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            write!(f, "ctrl-")?;
        }
        if self.alt {
            write!(f, "alt-")?;
        }
        match self.code {
            KeyCodeOrd::Char(' ') => write!(f, "space"),
            KeyCodeOrd::Char(c) => write!(f, "{c}"),
            KeyCodeOrd::F(n) => write!(f, "f{n}"),
            KeyCodeOrd::Named(i) => match NAMED[i as usize].0 {
                "up" => write!(f, "↑"),
                "down" => write!(f, "↓"),
                "left" => write!(f, "←"),
                "right" => write!(f, "→"),
                "backtab" => write!(f, "shift-tab"),
                n => write!(f, "{n}"),
            },
        }
    }
}
