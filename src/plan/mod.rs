//! Pure planning logic: can this VM go there, and how will the migration go?
//!
//! Nothing here does I/O; everything works on a [`ClusterSnapshot`].
//!
//! [`ClusterSnapshot`]: crate::cluster::ClusterSnapshot

pub mod cpu;
mod drain;
mod placement;
mod predict;
pub mod rules;

pub use drain::{DrainMove, DrainPlan, Stuck, plan_drain};
pub use placement::{Placement, Refusal, check};
pub use predict::{Advice, PredictInput, Prediction, predict, predict_for};
