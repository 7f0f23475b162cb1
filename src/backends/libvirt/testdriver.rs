//! Node definitions for libvirt's own test driver (`test:///PATH.xml`):
//! a node with its domains, no daemon needed. The scale bench and the
//! pool's tests poll hundreds of them.

use std::io;
use std::path::{Path, PathBuf};

/// Writes `node-N.xml` for N in `0..nodes` into `dir`, each a node with
/// `domains` running domains of 1 GiB and a directory pool; returns their
/// `test://` URIs.
pub fn write_nodes(dir: &Path, nodes: usize, domains: usize) -> io::Result<Vec<String>> {
    (0..nodes)
        .map(|i| {
            let path = dir.join(format!("node-{i}.xml"));
            std::fs::write(&path, node_xml(i, domains))?;
            Ok(uri(&path))
        })
        .collect()
}

/// `test:///ABS/PATH.xml`
pub fn uri(path: &Path) -> String {
    let abs: PathBuf = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    format!("test://{}", abs.display())
}

/// One node's XML: `domains` running domains named `nI-vmJJ`.
pub fn node_xml(i: usize, domains: usize) -> String {
    let mut x = String::from(
        "<node>\n  <cpu><mhz>2600</mhz><model>x86_64</model><active>32</active><nodes>1</nodes><sockets>2</sockets><cores>8</cores><threads>2</threads></cpu>\n  <memory>268435456</memory>\n",
    );
    for j in 0..domains {
        x += &format!(
            "  <domain type='test'><name>n{i}-vm{j:02}</name><memory unit='MiB'>1024</memory><vcpu>2</vcpu><os><type>hvm</type></os><devices><disk type='file' device='disk'><source file='/guests/n{i}-vm{j:02}.img'/><target dev='vda' bus='virtio'/></disk></devices></domain>\n"
        );
    }
    x += "  <pool type='dir'><name>guests</name><capacity unit='GiB'>1000</capacity><allocation unit='GiB'>100</allocation><available unit='GiB'>900</available><target><path>/guests</path></target></pool>\n</node>\n";
    x
}
