//! The domain model, and what a backend is asked and answers.

mod backend;
mod inventory;
mod manager;
mod migration;
mod model;
mod recovery;
mod refusal;
mod storage_move;
pub mod text;
pub mod units;

pub use backend::{BackendError, MigrationRequest, cordon_sentence};
pub use inventory::*;
pub use manager::*;
pub use migration::*;
pub use model::*;
pub use recovery::*;
pub use refusal::Refusal;
pub use storage_move::*;
