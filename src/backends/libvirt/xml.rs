//! The few facts vmshift reads from libvirt's XML: a domain's disks and CPU
//! model, a pool's type, source and target, the host's CPU model.

use roxmltree::{Document, Node};

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DomainXml {
    pub disks: Vec<DiskXml>,
    /// Named CPU model, `host-model`/`host-passthrough`, or empty.
    pub cpu_model: String,
    /// `<domain type='qemu'>`: emulated (TCG), not KVM.
    pub tcg: bool,
    /// vmshift's mark in `<metadata>`: the cluster manager that owns it.
    pub managed: Option<MarkXml>,
}

/// vmshift's own XML namespace in a domain's `<metadata>`.
pub const VMSHIFT_NS: &str = "urn:vmshift:metadata:1";
/// The prefix (libvirt's metadata key) it is written with.
pub const VMSHIFT_KEY: &str = "vmshift";

/// `<managed manager='pacemaker' resource='vm-ha' since='…'/>` under
/// vmshift's element in `<metadata>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct MarkXml {
    pub manager: String,
    pub resource: String,
    pub since_ms: u64,
}

impl MarkXml {
    /// vmshift's element, as `virDomainSetMetadata` takes it.
    pub fn element(&self) -> String {
        format!(
            "<vmshift><managed manager=\"{}\" resource=\"{}\" since=\"{}\"/></vmshift>",
            xml_attr(&self.manager),
            xml_attr(&self.resource),
            self.since_ms
        )
    }
}

/// vmshift's mark in a domain's `<metadata>`, if it carries one.
fn managed_mark(root: Node) -> Option<MarkXml> {
    let ours = child(root, "metadata")?
        .children()
        .find(|c| c.is_element() && c.tag_name().namespace() == Some(VMSHIFT_NS))?;
    let m = ours
        .children()
        .find(|c| c.is_element() && c.tag_name().name() == "managed")?;
    let manager = m.attribute("manager")?.trim();
    let resource = m.attribute("resource")?.trim();
    // Only names a manager could have given; anything else is not a mark.
    let fits = |s: &str| !s.is_empty() && s.len() <= 256 && !s.chars().any(char::is_control);
    if !fits(manager) || !fits(resource) {
        return None;
    }
    Some(MarkXml {
        manager: manager.to_string(),
        resource: resource.to_string(),
        since_ms: m
            .attribute("since")
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|s| *s <= crate::cluster::units::MAX_DATE_MS)
            .unwrap_or(0),
    })
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DiskXml {
    /// Target device name (vda...).
    pub target: String,
    /// Where it lives: a file/device path, `pool/volume`, or a network name.
    pub source: DiskSource,
    pub readonly: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum DiskSource {
    Path(String),
    PoolVolume { pool: String, volume: String },
    Network { protocol: String, name: String },
    None,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PoolXml {
    pub kind: String,
    /// Identity of the backing storage for pools that can be shared:
    /// host + dir/device/name. Empty for plain dir pools.
    pub source: String,
    pub target: String,
}

fn child<'a>(n: Node<'a, 'a>, name: &str) -> Option<Node<'a, 'a>> {
    n.children().find(|c| c.has_tag_name(name))
}

pub fn parse_domain(xml: &str) -> Result<DomainXml, String> {
    let doc = Document::parse(xml).map_err(|e| format!("cannot read domain XML: {e}"))?;
    let root = doc.root_element();
    let mut out = DomainXml {
        tcg: root.attribute("type") == Some("qemu"),
        managed: managed_mark(root),
        ..Default::default()
    };
    if let Some(cpu) = child(root, "cpu") {
        out.cpu_model = match cpu.attribute("mode") {
            Some(m @ ("host-model" | "host-passthrough" | "maximum")) => m.to_string(),
            _ => child(cpu, "model")
                .and_then(|m| m.text())
                .unwrap_or("")
                .trim()
                .to_string(),
        };
    }
    if let Some(devices) = child(root, "devices") {
        for disk in devices.children().filter(|c| c.has_tag_name("disk")) {
            if !matches!(disk.attribute("device"), None | Some("disk") | Some("lun")) {
                continue;
            }
            let target = child(disk, "target")
                .and_then(|t| t.attribute("dev"))
                .unwrap_or("")
                .to_string();
            let source = match child(disk, "source") {
                Some(s) => {
                    if let Some(p) = s
                        .attribute("file")
                        .or(s.attribute("dev"))
                        .or(s.attribute("dir"))
                    {
                        DiskSource::Path(p.to_string())
                    } else if let (Some(pool), Some(volume)) =
                        (s.attribute("pool"), s.attribute("volume"))
                    {
                        DiskSource::PoolVolume {
                            pool: pool.into(),
                            volume: volume.into(),
                        }
                    } else if let Some(name) = s.attribute("name") {
                        DiskSource::Network {
                            protocol: s.attribute("protocol").unwrap_or("").into(),
                            name: name.into(),
                        }
                    } else {
                        DiskSource::None
                    }
                }
                None => DiskSource::None,
            };
            out.disks.push(DiskXml {
                target,
                source,
                readonly: child(disk, "readonly").is_some(),
            });
        }
    }
    Ok(out)
}

pub fn parse_pool(xml: &str) -> Result<PoolXml, String> {
    let doc = Document::parse(xml).map_err(|e| format!("cannot read pool XML: {e}"))?;
    let root = doc.root_element();
    let kind = root.attribute("type").unwrap_or("").to_string();
    let target = child(root, "target")
        .and_then(|t| child(t, "path"))
        .and_then(|p| p.text())
        .unwrap_or("")
        .trim()
        .to_string();
    let mut parts = Vec::new();
    if let Some(src) = child(root, "source") {
        for h in src.children().filter(|c| c.has_tag_name("host")) {
            parts.push(format!("host={}", h.attribute("name").unwrap_or("")));
        }
        for tag in ["dir", "device", "adapter"] {
            for d in src.children().filter(|c| c.has_tag_name(tag)) {
                parts.push(format!(
                    "{tag}={}",
                    d.attribute("path").or(d.attribute("name")).unwrap_or("")
                ));
            }
        }
        if let Some(n) = child(src, "name").and_then(|n| n.text()) {
            parts.push(format!("name={}", n.trim()));
        }
    }
    Ok(PoolXml {
        kind,
        source: parts.join(","),
        target,
    })
}

/// The host CPU model from the capabilities XML.
pub fn host_cpu_model(caps: &str) -> String {
    Document::parse(caps)
        .ok()
        .and_then(|doc| {
            let host = child(doc.root_element(), "host")?;
            let cpu = child(host, "cpu")?;
            child(cpu, "model")?.text().map(|t| t.trim().to_string())
        })
        .unwrap_or_default()
}

/// A disk that a copy-storage migration puts somewhere else on the target.
#[derive(Debug, Clone, PartialEq)]
pub struct DiskMove {
    /// Target device (vda...).
    pub dev: String,
    pub from: DiskSource,
    pub to: DiskSource,
}

fn xml_attr(v: &str) -> String {
    v.replace('&', "&amp;")
        .replace('\'', "&apos;")
        .replace('<', "&lt;")
        .replace('"', "&quot;")
}

/// The domain XML with each moved disk's source rewritten (the destination
/// XML of a copy-storage migration). Each source must appear exactly once.
pub fn retarget_disks(xml: &str, moves: &[DiskMove]) -> Result<String, String> {
    let mut out = xml.to_string();
    for m in moves {
        let attrs = |s: &DiskSource| -> Result<Vec<String>, String> {
            let a = match s {
                DiskSource::Path(p) => format!("file=@{}@", xml_attr(p)),
                DiskSource::PoolVolume { pool, volume } => {
                    format!("pool=@{}@ volume=@{}@", xml_attr(pool), xml_attr(volume))
                }
                _ => {
                    return Err(format!(
                        "disk {} is neither a file nor a pool volume; vmshift copies only those",
                        m.dev
                    ));
                }
            };
            Ok(vec![a.replace('@', "'"), a.replace('@', "\"")])
        };
        let (from, to) = (attrs(&m.from)?, attrs(&m.to)?);
        let Some((i, _)) = from
            .iter()
            .enumerate()
            .find(|(_, f)| out.matches(f.as_str()).count() == 1)
        else {
            return Err(format!(
                "the source of disk {} is not found once in the domain's XML",
                m.dev
            ));
        };
        out = out.replace(&from[i], &to[i]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As libvirt 9.0 dumps what `virDomainSetMetadata` wrote (seen on the
    /// lab): vmshift's element and its children under vmshift's prefix.
    #[test]
    fn the_managed_mark_is_read_from_vmshifts_namespace_only() {
        let mark = MarkXml {
            manager: "pacemaker".into(),
            resource: "vm-ha".into(),
            since_ms: 1_765_000_000_000,
        };
        assert_eq!(
            mark.element(),
            r#"<vmshift><managed manager="pacemaker" resource="vm-ha" since="1765000000000"/></vmshift>"#
        );
        let dumped = format!(
            "<domain type='qemu'><name>ha</name><metadata>\
             <other:x xmlns:other='urn:other'><managed manager='evil' resource='r'/></other:x>\
             <vmshift:vmshift xmlns:vmshift='{VMSHIFT_NS}'><vmshift:managed manager='pacemaker' resource='vm-ha' since='1765000000000'/></vmshift:vmshift>\
             </metadata></domain>"
        );
        assert_eq!(parse_domain(&dumped).unwrap().managed, Some(mark));
        let foreign = "<domain><metadata><other:x xmlns:other='urn:other'><managed manager='pacemaker' resource='r'/></other:x></metadata></domain>";
        assert_eq!(parse_domain(foreign).unwrap().managed, None);
        let absurd = format!(
            "<domain><metadata><v:vmshift xmlns:v='{VMSHIFT_NS}'><managed manager='pacemaker' resource='r' since='99999999999999999'/></v:vmshift></metadata></domain>"
        );
        assert_eq!(
            parse_domain(&absurd).unwrap().managed.map(|m| m.since_ms),
            Some(0),
            "a date past year 9999 is not kept"
        );
        let empty = format!(
            "<domain><metadata><v:vmshift xmlns:v='{VMSHIFT_NS}'><managed manager='' resource='r'/></v:vmshift></metadata></domain>"
        );
        assert_eq!(parse_domain(&empty).unwrap().managed, None);
    }

    #[test]
    fn copied_disks_get_their_path_on_the_target() {
        let xml = "<domain><devices><disk type='file' device='disk'><source file='/lab/nodes/a/local/lg.img'/><target dev='vda'/></disk>\
                   <disk type='volume'><source pool='local-a' volume='d2'/><target dev='vdb'/></disk></devices></domain>";
        let moves = [
            DiskMove {
                dev: "vda".into(),
                from: DiskSource::Path("/lab/nodes/a/local/lg.img".into()),
                to: DiskSource::Path("/lab/nodes/b/local/lg.img".into()),
            },
            DiskMove {
                dev: "vdb".into(),
                from: DiskSource::PoolVolume {
                    pool: "local-a".into(),
                    volume: "d2".into(),
                },
                to: DiskSource::PoolVolume {
                    pool: "local-b".into(),
                    volume: "d2".into(),
                },
            },
        ];
        let out = retarget_disks(xml, &moves).unwrap();
        assert!(
            out.contains("<source file='/lab/nodes/b/local/lg.img'/>"),
            "{out}"
        );
        assert!(
            out.contains("<source pool='local-b' volume='d2'/>"),
            "{out}"
        );
        assert!(!out.contains("nodes/a"), "{out}");
        let d = parse_domain(&out).unwrap();
        assert_eq!(d.disks.len(), 2);
        let missing = retarget_disks("<domain/>", &moves[..1]).unwrap_err();
        assert!(missing.contains("disk vda"), "{missing}");
        let net = DiskMove {
            dev: "vdc".into(),
            from: DiskSource::None,
            to: DiskSource::None,
        };
        assert!(
            retarget_disks(xml, &[net])
                .unwrap_err()
                .contains("neither a file")
        );
    }

    #[test]
    fn domain_disks_and_cpu() {
        let d = parse_domain(
            "<domain><cpu mode='custom'><model fallback='allow'>qemu64</model></cpu><devices>\
             <disk type='file' device='disk'><source file='/s/a.img'/><target dev='vda'/><readonly/></disk>\
             <disk type='volume' device='disk'><source pool='p' volume='v'/><target dev='vdb'/></disk>\
             <disk type='network' device='disk'><source protocol='rbd' name='pool/img'/><target dev='vdc'/></disk>\
             <disk type='file' device='cdrom'><target dev='hdc'/></disk></devices></domain>",
        )
        .unwrap();
        assert_eq!(d.cpu_model, "qemu64");
        assert_eq!(d.disks.len(), 3, "the cdrom is no disk");
        assert_eq!(d.disks[0].source, DiskSource::Path("/s/a.img".into()));
        assert!(d.disks[0].readonly);
        assert_eq!(
            d.disks[1].source,
            DiskSource::PoolVolume {
                pool: "p".into(),
                volume: "v".into()
            }
        );
        assert_eq!(
            d.disks[2].source,
            DiskSource::Network {
                protocol: "rbd".into(),
                name: "pool/img".into()
            }
        );
        let d = parse_domain("<domain><cpu mode='host-passthrough'/></domain>").unwrap();
        assert_eq!(d.cpu_model, "host-passthrough");
    }

    #[test]
    fn pools_and_capabilities() {
        let p = parse_pool("<pool type='netfs'><name>n</name><source><host name='nas'/><dir path='/export'/></source><target><path>/mnt/n</path></target></pool>").unwrap();
        assert_eq!(
            (p.kind.as_str(), p.source.as_str(), p.target.as_str()),
            ("netfs", "host=nas,dir=/export", "/mnt/n")
        );
        let p = parse_pool(
            "<pool type='dir'><name>d</name><target><path>/srv/x</path></target></pool>",
        )
        .unwrap();
        assert_eq!((p.source.as_str(), p.target.as_str()), ("", "/srv/x"));
        assert_eq!(
            host_cpu_model(
                "<capabilities><host><cpu><arch>x86_64</arch><model>Skylake-Client</model></cpu></host></capabilities>"
            ),
            "Skylake-Client"
        );
        assert!(parse_pool("<pool").is_err());
    }
}
