//! The domain model and the one trait every backend implements.

mod backend;
mod manager;
mod model;
mod refusal;
pub mod text;
pub mod units;

pub use backend::{Backend, BackendError, MigrationRequest, cordon_sentence, set_local_cordon};
pub use manager::*;
pub use model::*;
pub use refusal::Refusal;
