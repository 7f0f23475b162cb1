//! vmshift: see a virtualization cluster and live-migrate VMs between its
//! nodes. Layers, top to bottom: `cli` → `app` → `plan` → `cluster` ←
//! `backends`; `record` keeps the flight recorder, `config` the settings,
//! `output` writes to stdout/stderr without panicking or passing control
//! characters through.

pub mod app;
pub mod backends;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod input;
pub mod logging;
#[cfg(feature = "libvirt")]
pub mod manager;
pub mod output;
pub mod plan;
pub mod record;
pub mod tui;
