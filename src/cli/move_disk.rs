//! `vmshift move-disk VM DISK VOLUME`: move a running VM's disk to another
//! volume (block copy, then pivot) — the way off a plain LUN shared with
//! other VMs. DISK names the disk by the volume it is on now.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::json;

use super::migrate::{Control, Out, backend_error, may_change};
use super::{CliError, MoveDiskArgs, exit};
use crate::backends::Backend;
use crate::cluster::{Outcome, StorageMove, units};
use crate::config::Config;
use crate::plan;

/// How often the copy's progress is read.
const POLL: Duration = Duration::from_millis(500);

pub fn run(
    backend: &mut dyn Backend,
    cfg: &Config,
    args: &MoveDiskArgs,
) -> Result<ExitCode, CliError> {
    let out = Out { json: args.json };
    may_change(&out, cfg, args.dry_run, "move a disk")?;
    let snap = backend.snapshot().map_err(|e| backend_error(&out, e))?;
    let vm = snap
        .require_vm(&args.vm)
        .map_err(|e| backend_error(&out, e))?;
    let bytes = plan::check_disk_move(&snap, vm, &args.disk, &args.volume)
        .map_err(|why| out.fail(exit::REFUSED, "refused", why))?;
    out.line(
        format!(
            "plan     {}",
            plan::disk_move_sentence(vm, &args.disk, bytes, &args.volume)
        ),
        json!({"event": "plan", "vm": vm.name, "from": args.disk, "to": args.volume, "bytes": bytes}),
    );
    if args.dry_run {
        return Ok(ExitCode::SUCCESS);
    }
    let mut control = Control::new(false);
    control.before_start(&out)?;
    let id = backend
        .move_disk(&args.vm, &args.disk, &args.volume)
        .map_err(|e| backend_error(&out, e))?;
    let m = follow(backend, &out, id, &mut control)?;
    finish(&out, &m)
}

/// Follows a storage move to its end, printing progress every tenth of the
/// copy; Ctrl-C aborts it (before the pivot the VM stays where it was).
pub(super) fn follow(
    backend: &mut dyn Backend,
    out: &Out,
    id: u64,
    control: &mut Control,
) -> Result<StorageMove, CliError> {
    let mut shown_tenth = 0;
    loop {
        let m = backend
            .storage_move(id)
            .map_err(|e| backend_error(out, e))?;
        if m.is_finished() {
            return Ok(m);
        }
        let tenth = (m.copied_bytes * 10)
            .checked_div(m.total_bytes)
            .unwrap_or(0);
        if tenth > shown_tenth {
            shown_tenth = tenth;
            out.line(
                format!("copy     {}", m.line()),
                json!({"event": "progress", "storage_move": m}),
            );
        }
        if let Some(sig) = control.signals.take() {
            let _ = backend.abort_storage_move(id);
            out.text(format!(
                "abort    {} asked: the storage move stops before its pivot",
                super::signals::name(sig)
            ));
        }
        backend.wait(POLL);
    }
}

/// The last line, and the exit code.
pub(super) fn finish(out: &Out, m: &StorageMove) -> Result<ExitCode, CliError> {
    match &m.outcome {
        Some(Outcome::Completed) => {
            out.line(
                format!(
                    "done     {}'s disk is on {} now ({} copied in {}), pivoted while it ran",
                    m.vm,
                    m.to,
                    units::bytes(m.total_bytes),
                    units::millis(m.elapsed_ms)
                ),
                json!({"event": "done", "storage_move": m}),
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(Outcome::Aborted { reason } | Outcome::Failed { reason }) => Err(out.fail(
            exit::NOT_COMPLETED,
            "not_completed",
            format!(
                "the disk of {} did not move ({reason}); it stays on {}",
                m.vm, m.from
            ),
        )),
        None => Err(out.fail(
            exit::NOT_COMPLETED,
            "not_completed",
            format!("the storage move of {}'s disk has not ended", m.vm),
        )),
    }
}
