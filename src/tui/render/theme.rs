//! Styles by screen role. Colour only decorates: state is always carried by
//! a glyph or a word, and selection by reverse video, so NO_COLOR works.

use ratatui::style::{Color, Modifier, Style};

use crate::cluster::{NodeState, VmState};

pub fn title() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}
pub fn dim() -> Style {
    Style::new().fg(Color::DarkGray)
}
pub fn selected() -> Style {
    Style::new().add_modifier(Modifier::REVERSED)
}
pub fn good() -> Style {
    Style::new().fg(Color::Green)
}
pub fn warn() -> Style {
    Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)
}
pub fn bad() -> Style {
    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
}
pub fn key() -> Style {
    Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
}
pub fn accent() -> Style {
    Style::new().fg(Color::Cyan)
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
