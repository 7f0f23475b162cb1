//! Signals while `migrate` or `drain` runs, as virsh users expect: SIGINT
//! (Ctrl-C) aborts a migration still in pre-copy (a drain first stops after
//! the current move); SIGHUP (the SSH session dropped) and SIGTERM end
//! vmshift but never a libvirt migration, which goes on on its source's
//! daemon. The handlers only raise flags; the follow loop reads them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// The signals a CLI run reacts to, with their names.
pub const WATCHED: [(i32, &str); 3] =
    [(SIGTERM, "SIGTERM"), (SIGHUP, "SIGHUP"), (SIGINT, "SIGINT")];

/// Flags raised by SIGTERM, SIGHUP and SIGINT from now until the process
/// ends (their default actions no longer apply).
pub struct Signals {
    flags: Vec<(i32, Arc<AtomicBool>)>,
}

impl Signals {
    pub fn watch() -> Signals {
        let flags = WATCHED
            .iter()
            .filter_map(|(sig, _)| {
                let flag = Arc::new(AtomicBool::new(false));
                signal_hook::flag::register(*sig, flag.clone())
                    .ok()
                    .map(|_| (*sig, flag))
            })
            .collect();
        Signals { flags }
    }

    /// The pending signal, if any (SIGTERM and SIGHUP before SIGINT), and clears it.
    pub fn take(&self) -> Option<i32> {
        self.flags
            .iter()
            .find(|(_, f)| f.swap(false, Ordering::SeqCst))
            .map(|(sig, _)| *sig)
    }
}

pub fn name(sig: i32) -> &'static str {
    WATCHED
        .iter()
        .find(|(s, _)| *s == sig)
        .map_or("a signal", |(_, n)| n)
}

pub const INTERRUPT: i32 = SIGINT;
