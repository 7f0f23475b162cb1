//! Why a stalled migration was stopped and what would have made it
//! converge: the stall rule's sentence (see [`super::rules`]), with the
//! predictor's advice for the migration as it started.

use super::predict::Advice;
use crate::cluster::{Migration, MigrationOptions, OnStall, PostcopyMode, units};

/// What would have made `m` converge from its start: pre-copy alone, with
/// its options as they are now.
pub fn advice_for(m: &Migration) -> Vec<Advice> {
    m.inputs
        .as_ref()
        .map(|i| {
            super::predict(
                i,
                &MigrationOptions {
                    postcopy: PostcopyMode::Off,
                    on_stall: OnStall::Abort,
                    ..m.options.clone()
                },
            )
            .advice
        })
        .unwrap_or_default()
}

/// Why the stalled migration `m` was stopped after `rounds` rounds with
/// `last_dirty` bytes left against a threshold of `threshold_bytes`, and
/// what would have made it converge.
pub fn stall_sentence(
    m: &Migration,
    rounds: usize,
    last_dirty: u64,
    threshold_bytes: u64,
) -> String {
    let fixes: Vec<String> = advice_for(m).iter().map(|a| a.to_string()).collect();
    format!(
        "pre-copy stalled: after {rounds} rounds {} was still dirty, more than the {} that the {} ms downtime limit lets through; the VM keeps running on {}; to make it converge: {}",
        units::bytes(last_dirty),
        units::bytes(threshold_bytes),
        m.options.max_downtime_ms,
        m.from,
        if fixes.is_empty() {
            "raise max downtime or bandwidth, turn on auto-converge, or use post-copy".to_string()
        } else {
            fixes.join("; or ")
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stall_sentence_says_where_the_vm_runs_and_what_fixes_it() {
        let m = Migration::starting(
            1,
            "vm",
            "hv-01",
            "hv-02",
            MigrationOptions::default(),
            1 << 30,
            0,
            0,
        );
        let s = stall_sentence(&m, 5, 64 << 20, 12 << 20);
        assert!(s.contains("after 5 rounds 64 MiB"), "{s}");
        assert!(
            s.contains("keeps running on hv-01") && s.contains("auto-converge"),
            "{s}"
        );
    }
}
