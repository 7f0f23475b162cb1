//! Styles by screen role. Colour only decorates: state is always carried by
//! a glyph or a word, and selection by reverse video, so NO_COLOR works.
//!
//! With `NO_COLOR` set, no style here has a colour at all. (crossterm's own
//! NO_COLOR handling writes an empty SGR for each colour change, which the
//! terminal reads as "reset everything" — reverse video included — so
//! vmshift drops colours itself and tells crossterm not to.)

use std::sync::OnceLock;

use ratatui::style::{Color, Modifier, Style};

use crate::cluster::{NodeState, Vm, VmState};

/// Whether colours are off (`NO_COLOR` set and not empty).
pub fn plain() -> bool {
    static PLAIN: OnceLock<bool> = OnceLock::new();
    *PLAIN.get_or_init(|| std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()))
}

fn fg(c: Color) -> Style {
    if plain() {
        Style::new()
    } else {
        Style::new().fg(c)
    }
}

pub fn title() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}
pub fn dim() -> Style {
    fg(Color::DarkGray)
}
pub fn selected() -> Style {
    Style::new().add_modifier(Modifier::REVERSED)
}
pub fn good() -> Style {
    fg(Color::Green)
}
pub fn warn() -> Style {
    fg(Color::Yellow).add_modifier(Modifier::BOLD)
}
pub fn bad() -> Style {
    fg(Color::Red).add_modifier(Modifier::BOLD)
}
pub fn key() -> Style {
    fg(Color::Cyan).add_modifier(Modifier::BOLD)
}
pub fn accent() -> Style {
    fg(Color::Cyan)
}

pub fn node_state(s: NodeState) -> Style {
    match s {
        NodeState::Up => good(),
        NodeState::Maintenance => warn(),
        NodeState::Down | NodeState::Unreachable => bad(),
    }
}

pub fn vm_state(s: VmState) -> Style {
    match s {
        VmState::Running => Style::new(),
        VmState::Migrating => accent(),
        VmState::Paused | VmState::Restarting => warn(),
        VmState::Stopped => bad(),
    }
}

/// A glyph for a VM state (works without colour).
pub fn vm_glyph(s: VmState) -> &'static str {
    match s {
        VmState::Running => "●",
        VmState::Migrating => "⇄",
        VmState::Paused => "‖",
        VmState::Restarting => "↻",
        VmState::Stopped => "■",
    }
}

/// A VM's glyph: `✖` when its node is lost (it is shown as last seen),
/// else its state's.
pub fn vm_mark(v: &Vm) -> &'static str {
    if v.lost.is_some() {
        "✖"
    } else {
        vm_glyph(v.state)
    }
}

/// A VM's style: bad when its node is lost, else its state's.
pub fn vm_style(v: &Vm) -> Style {
    if v.lost.is_some() {
        bad()
    } else {
        vm_state(v.state)
    }
}
