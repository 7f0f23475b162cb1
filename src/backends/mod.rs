//! Backends: the embedded simulated cluster and (feature `libvirt`) real
//! clusters through libvirt. Both implement [`Backend`].

mod backend;
pub mod sim;

#[cfg(feature = "libvirt")]
pub mod libvirt;

pub use backend::{Backend, set_local_cordon};
