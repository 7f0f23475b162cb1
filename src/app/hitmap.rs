//! The hit map: which screen rectangle shows what. `render` returns it;
//! mouse handling reads it. Tests build one by hand.

use ratatui::layout::{Position, Rect};

use super::View;
use crate::cluster::MigrationId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A VM's row (in a node card or the VM table).
    Vm(String),
    /// A node card (the whole card).
    Node(String),
    /// A tab in the header.
    Tab(View),
    /// A migration in the migrations list.
    Migration(MigrationId),
    /// A column header of the nodes view (a click sorts by it).
    Column(super::NodeCol),
    /// A scrollable list: cluster cards, VM table, events...
    List(View),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct HitMap {
    areas: Vec<(Rect, Target)>,
}

impl HitMap {
    pub fn push(&mut self, area: Rect, target: Target) {
        if area.width > 0 && area.height > 0 {
            self.areas.push((area, target));
        }
    }

    /// The most specific target at a cell: later (inner) areas win.
    pub fn at(&self, x: u16, y: u16) -> Option<&Target> {
        self.areas
            .iter()
            .rev()
            .find(|(r, _)| r.contains(Position { x, y }))
            .map(|(_, t)| t)
    }

    /// The node card at a cell, even when a VM row inside it is hit.
    pub fn node_at(&self, x: u16, y: u16) -> Option<&str> {
        self.areas.iter().rev().find_map(|(r, t)| match t {
            Target::Node(n) if r.contains(Position { x, y }) => Some(n.as_str()),
            _ => None,
        })
    }

    pub fn areas(&self) -> &[(Rect, Target)] {
        &self.areas
    }

    pub fn rect_of(&self, target: &Target) -> Option<Rect> {
        self.areas
            .iter()
            .find(|(_, t)| t == target)
            .map(|(r, _)| *r)
    }
}
