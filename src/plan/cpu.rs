//! CPU model compatibility: a guest configured with one named model can run
//! on a host whose model is of the same vendor and at least as new.

/// Known named CPU models (libvirt/QEMU names), oldest first per vendor.
const MODELS: &[(&str, &str, u32)] = &[
    ("Westmere", "intel", 1),
    ("SandyBridge", "intel", 2),
    ("IvyBridge", "intel", 3),
    ("Haswell", "intel", 4),
    ("Broadwell", "intel", 5),
    ("Skylake-Server", "intel", 6),
    ("Cascadelake-Server", "intel", 7),
    ("Cooperlake", "intel", 8),
    ("Icelake-Server", "intel", 9),
    ("SapphireRapids", "intel", 10),
    ("Opteron_G5", "amd", 1),
    ("EPYC", "amd", 2),
    ("EPYC-Rome", "amd", 3),
    ("EPYC-Milan", "amd", 4),
    ("EPYC-Genoa", "amd", 5),
];

fn lookup(model: &str) -> Option<(&'static str, u32)> {
    MODELS
        .iter()
        .find(|(name, _, _)| name.eq_ignore_ascii_case(model))
        .map(|&(_, vendor, generation)| (vendor, generation))
}

/// Whether a guest configured with `guest` can run on a host of model `host`.
/// `host-passthrough`/unknown models must match exactly; an empty guest model
/// (not known) is accepted everywhere.
pub fn compatible(guest: &str, host: &str) -> bool {
    if guest.is_empty() || guest == "qemu64" || guest == "host-model" {
        return true;
    }
    match (lookup(guest), lookup(host)) {
        (Some((gv, gg)), Some((hv, hg))) => gv == hv && hg >= gg,
        _ => guest.eq_ignore_ascii_case(host),
    }
}

#[cfg(test)]
mod tests {
    use super::compatible;

    #[test]
    fn newer_host_of_same_vendor_runs_older_model() {
        assert!(compatible("Skylake-Server", "Icelake-Server"));
        assert!(compatible("Icelake-Server", "Icelake-Server"));
        assert!(!compatible("Icelake-Server", "Cascadelake-Server"));
        assert!(!compatible("EPYC", "Icelake-Server"));
    }

    #[test]
    fn unknown_models_must_match_exactly() {
        assert!(compatible("MyCustom", "mycustom"));
        assert!(!compatible("MyCustom", "Icelake-Server"));
        assert!(compatible("", "anything"));
    }
}
