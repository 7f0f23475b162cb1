//! Backends: the embedded simulated cluster and (feature `libvirt`) real
//! clusters through libvirt. Both implement [`crate::cluster::Backend`].

pub mod sim;

#[cfg(feature = "libvirt")]
pub mod libvirt;
