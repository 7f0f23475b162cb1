//! Pure planning logic: can this VM go there, and how will the migration go?
//!
//! Nothing here does I/O; everything works on a [`ClusterSnapshot`].
//!
//! [`ClusterSnapshot`]: crate::cluster::ClusterSnapshot

pub mod cpu;
mod placement;
mod predict;
pub mod rules;

pub use placement::{check, Placement, Refusal};
pub use predict::{predict, predict_for, Advice, PredictInput, Prediction};
