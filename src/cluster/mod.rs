//! The domain model, and what a backend is asked and answers.

mod backend;
mod inventory;
mod manager;
mod migration;
mod model;
mod recovery;
mod refusal;
pub mod rules;
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
pub use rules::{BrokenRule, NodeSet, Rule, RuleKind, RuleOrigin, RuleOverrides, Strength};
pub use storage_move::*;
