//! Pure planning logic: can this VM go there, and how will the migration go?
//!
//! Nothing here does I/O; everything works on a [`ClusterSnapshot`].
//!
//! [`ClusterSnapshot`]: crate::cluster::ClusterSnapshot

mod actions;
pub mod advice;
pub mod cpu;
mod drain;
mod inputs;
mod live;
mod placement;
pub mod precopy;
mod predict;
mod recover;
pub mod rules;
pub mod stall;

pub use actions::check_vm_action;
pub use drain::{DiskMovePlan, DrainMove, DrainPlan, Stuck, plan_drain, plan_drain_with};
pub use inputs::{inputs_for, switchover_fit};
pub use live::live;
pub use placement::{
    Placement, Refusal, check, check_disk_move, check_disk_move_vm, check_request, check_with,
    cordon_check, csv_for, disk_move_sentence, manager_hold, manager_note, move_path, targets,
};
pub use predict::{Advice, Prediction, Span, predict, range_text};
pub use recover::{NotRecoverable, RecoverPlan, Restart, plan_recover, plan_recover_with};

use crate::cluster::{ClusterSnapshot, Migration, MigrationOptions, Node, Vm};

/// The prediction for moving `vm` to `node` with `options`, from what the
/// backend measured and the cluster's past migrations (`history`).
pub fn predict_for(
    snap: &ClusterSnapshot,
    vm: &Vm,
    node: &Node,
    options: &MigrationOptions,
    storage_bytes: u64,
    history: &[Migration],
) -> Prediction {
    predict(
        &inputs_for(snap, vm, node, options, storage_bytes, history),
        options,
    )
}
