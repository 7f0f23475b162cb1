//! Pacemaker + Corosync: the cluster manager of the Linux HA stacks
//! (Debian, SUSE, RHEL), where each VM is an `ocf:heartbeat:VirtualDomain`
//! resource. vmshift reads `crm_mon --output-as=xml` (nodes, resources,
//! operation history) and the CIB's configuration (each resource's domain,
//! `allow-migrate`, move constraints), and moves, drains and cordons
//! through `crm_resource` and `crm_attribute`, so Pacemaker is never fought.

use std::collections::HashMap;
use std::sync::Mutex;

use roxmltree::{Document, Node};

use super::ClusterManager;
use super::runner::Runner;
use crate::cluster::{ManagedNode, ManagedVm, ManagerOp, ManagerView, MoveConstraint};

/// The resource agent that runs a libvirt domain.
const VIRTUAL_DOMAIN: &str = "VirtualDomain";

pub struct Pacemaker {
    runner: Runner,
    /// Domain name per VirtualDomain `config` file, read once.
    domains: Mutex<HashMap<String, String>>,
}

impl Pacemaker {
    pub fn new(runner: Runner) -> Pacemaker {
        Pacemaker {
            runner,
            domains: Mutex::new(HashMap::new()),
        }
    }

    /// Where its tools run, for messages.
    pub fn place(&self) -> String {
        self.runner.place()
    }

    /// Whether Pacemaker answers where this runner runs its tools.
    pub fn answers(&self) -> bool {
        self.runner
            .run(&["crm_mon", "-1", "--output-as=xml"])
            .ok()
            .and_then(|x| parse_status(&x).ok())
            .is_some()
    }

    /// The domain a VirtualDomain resource runs: the `<name>` of its
    /// `config` file, read through the runner (the file is on the nodes).
    fn domain_of(&self, config: &str) -> Option<String> {
        if let Some(d) = self.domains.lock().ok()?.get(config) {
            return Some(d.clone());
        }
        let xml = self.runner.run(&["cat", config]).ok()?;
        let name = domain_name(&xml)?;
        self.domains
            .lock()
            .ok()?
            .insert(config.to_string(), name.clone());
        Some(name)
    }
}

impl ClusterManager for Pacemaker {
    fn kind(&self) -> &'static str {
        "pacemaker"
    }

    fn read(&self) -> Result<ManagerView, String> {
        let status = self
            .runner
            .run(&["crm_mon", "-1", "--output-as=xml", "--include=all"])?;
        let config = self
            .runner
            .run(&["cibadmin", "--query", "--scope", "configuration"])?;
        let mut view = parse_status(&status)?;
        let conf = parse_config(&config)?;
        view.vms.retain_mut(|vm| {
            let Some(c) = conf.primitives.get(&vm.resource) else {
                return false;
            };
            if c.agent_type != VIRTUAL_DOMAIN {
                return false;
            }
            vm.allow_migrate = c.allow_migrate.unwrap_or(conf.default_allow_migrate);
            vm.domain = c
                .config
                .as_deref()
                .and_then(|p| self.domain_of(p))
                .unwrap_or_else(|| vm.resource.clone());
            vm.constraints = conf
                .constraints
                .iter()
                .filter(|(rsc, _)| *rsc == vm.resource)
                .map(|(_, c)| c.clone())
                .collect();
            true
        });
        Ok(view)
    }

    fn move_to(&self, resource: &str, node: &str, lifetime: Option<&str>) -> Result<(), String> {
        let mut args = move_args(resource, node);
        if let Some(l) = lifetime {
            args.extend(["--lifetime", l]);
        }
        self.runner.run(&args).map(|_| ())
    }

    fn clear_move(&self, resource: &str) -> Result<(), String> {
        self.runner
            .run(&["crm_resource", "--clear", "--resource", resource])
            .map(|_| ())
    }

    fn set_standby(&self, node: &str, on: bool) -> Result<(), String> {
        let args: Vec<&str> = if on {
            vec![
                "crm_attribute",
                "--node",
                node,
                "--name",
                "standby",
                "--update",
                "on",
            ]
        } else {
            vec![
                "crm_attribute",
                "--node",
                node,
                "--name",
                "standby",
                "--update",
                "off",
            ]
        };
        self.runner.run(&args).map(|_| ())
    }

    fn set_maintenance(&self, on: bool) -> Result<(), String> {
        self.runner
            .run(&[
                "crm_attribute",
                "--type",
                "crm_config",
                "--name",
                "maintenance-mode",
                "--update",
                if on { "true" } else { "false" },
            ])
            .map(|_| ())
    }

    fn move_command(&self, resource: &str, node: &str) -> String {
        crate::cluster::text::shell_line(&move_args(resource, node))
    }
}

/// `crm_resource --move` of `resource` to `node`: what vmshift runs and
/// what it shows the operator.
fn move_args<'a>(resource: &'a str, node: &'a str) -> Vec<&'a str> {
    vec![
        "crm_resource",
        "--move",
        "--resource",
        resource,
        "--node",
        node,
    ]
}

fn attr<'a>(n: Node<'a, '_>, name: &str) -> &'a str {
    n.attribute(name).unwrap_or("")
}

fn yes(n: Node, name: &str) -> bool {
    is_true(attr(n, name))
}

/// Pacemaker's booleans: true/yes/on/1.
fn is_true(v: &str) -> bool {
    matches!(
        v.to_ascii_lowercase().as_str(),
        "true" | "yes" | "on" | "1" | "y"
    )
}

/// `crm_mon --output-as=xml` → nodes, resources (without the CIB's
/// configuration: domains, allow-migrate and constraints come from
/// [`parse_config`]).
pub fn parse_status(xml: &str) -> Result<ManagerView, String> {
    let doc = Document::parse(xml).map_err(|e| format!("crm_mon's XML does not parse: {e}"))?;
    let root = doc.root_element();
    let status = root.children().find(|c| c.has_tag_name("status"));
    if let Some(s) = status {
        let errors: Vec<String> = s
            .descendants()
            .filter(|e| e.has_tag_name("error"))
            .filter_map(|e| e.text())
            .map(|t| t.trim().to_string())
            .collect();
        let code = attr(s, "code");
        if code != "0" || !errors.is_empty() {
            let msg = if errors.is_empty() {
                attr(s, "message").to_string()
            } else {
                errors.join("; ")
            };
            return Err(format!("crm_mon says: {msg}"));
        }
    }
    let summary = root
        .children()
        .find(|c| c.has_tag_name("summary"))
        .ok_or("crm_mon's XML has no summary: is Pacemaker running?")?;
    let mut view = ManagerView {
        kind: "pacemaker".into(),
        known: true,
        ..Default::default()
    };
    for c in summary.children().filter(|c| c.is_element()) {
        match c.tag_name().name() {
            "current_dc" if yes(c, "present") => {
                view.dc = Some(attr(c, "name").to_string());
                view.quorate = yes(c, "with_quorum");
            }
            "cluster_options" => {
                view.maintenance = yes(c, "maintenance-mode");
                view.fencing = yes(c, "stonith-enabled");
            }
            _ => {}
        }
    }
    if let Some(nodes) = root.children().find(|c| c.has_tag_name("nodes")) {
        for n in nodes.children().filter(|c| c.has_tag_name("node")) {
            view.nodes.push(ManagedNode {
                name: attr(n, "name").to_string(),
                online: yes(n, "online"),
                standby: yes(n, "standby") || yes(n, "standby_onfail"),
                maintenance: yes(n, "maintenance"),
                unclean: yes(n, "unclean"),
                pending: yes(n, "pending"),
                shutdown: yes(n, "shutdown"),
            });
        }
    }
    if let Some(rs) = root.children().find(|c| c.has_tag_name("resources")) {
        // Primitives anywhere (inside groups and clones too).
        for r in rs.descendants().filter(|c| c.has_tag_name("resource")) {
            view.vms.push(ManagedVm {
                resource: attr(r, "id").to_string(),
                agent: attr(r, "resource_agent").to_string(),
                role: attr(r, "role").to_string(),
                managed: yes(r, "managed") && !view.maintenance,
                failed: yes(r, "failed"),
                running_on: r
                    .children()
                    .filter(|c| c.has_tag_name("node"))
                    .map(|c| attr(c, "name").to_string())
                    .collect(),
                ..Default::default()
            });
        }
    }
    if let Some(h) = root.children().find(|c| c.has_tag_name("node_history")) {
        for node in h.children().filter(|c| c.has_tag_name("node")) {
            let node_name = attr(node, "name");
            for rh in node
                .children()
                .filter(|c| c.has_tag_name("resource_history"))
            {
                let Some(vm) = view.vms.iter_mut().find(|v| v.resource == attr(rh, "id")) else {
                    continue;
                };
                if let Ok(n) = attr(rh, "fail-count").parse::<u32>()
                    && n > 0
                {
                    vm.failcounts.push((node_name.to_string(), n));
                }
                for op in rh
                    .children()
                    .filter(|c| c.has_tag_name("operation_history"))
                {
                    if op.attribute("interval").is_some_and(|i| i != "0ms") && attr(op, "rc") == "0"
                    {
                        continue; // a monitor that found all well
                    }
                    vm.recent.push(ManagerOp {
                        node: node_name.to_string(),
                        task: attr(op, "task").to_string(),
                        result: attr(op, "rc_text").to_string(),
                        when: attr(op, "last-rc-change").to_string(),
                        exec_ms: attr(op, "exec-time")
                            .trim_end_matches("ms")
                            .parse()
                            .unwrap_or(0),
                    });
                }
            }
        }
    }
    for vm in &mut view.vms {
        vm.recent.sort_by(|a, b| a.when.cmp(&b.when));
    }
    Ok(view)
}

/// A resource's configuration that `crm_mon` does not show.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Primitive {
    /// `VirtualDomain`.
    pub agent_type: String,
    /// VirtualDomain's `config`: the domain's XML file on the nodes.
    pub config: Option<String>,
    pub allow_migrate: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Configuration {
    pub primitives: HashMap<String, Primitive>,
    /// `allow-migrate` in rsc_defaults.
    pub default_allow_migrate: bool,
    /// (resource, constraint) for constraints left by moves and bans.
    pub constraints: Vec<(String, MoveConstraint)>,
}

fn nvpair<'a>(set: Node<'a, '_>, name: &str) -> Option<&'a str> {
    set.children()
        .filter(|c| c.has_tag_name("nvpair"))
        .find(|c| attr(*c, "name") == name)
        .map(|c| attr(c, "value"))
}

/// `cibadmin --query --scope configuration` → primitives, defaults and
/// the constraints that `crm_resource --move/--ban` leave.
pub fn parse_config(xml: &str) -> Result<Configuration, String> {
    let doc =
        Document::parse(xml).map_err(|e| format!("the CIB configuration does not parse: {e}"))?;
    let mut conf = Configuration::default();
    for p in doc.descendants().filter(|c| c.has_tag_name("primitive")) {
        let mut prim = Primitive {
            agent_type: attr(p, "type").to_string(),
            ..Default::default()
        };
        for set in p.children() {
            if set.has_tag_name("instance_attributes") {
                if let Some(v) = nvpair(set, "config") {
                    prim.config = Some(v.to_string());
                }
            } else if set.has_tag_name("meta_attributes")
                && let Some(v) = nvpair(set, "allow-migrate")
            {
                prim.allow_migrate = Some(is_true(v));
            }
        }
        conf.primitives.insert(attr(p, "id").to_string(), prim);
    }
    if let Some(d) = doc.descendants().find(|c| c.has_tag_name("rsc_defaults")) {
        conf.default_allow_migrate = d
            .children()
            .filter(|c| c.has_tag_name("meta_attributes"))
            .find_map(|s| nvpair(s, "allow-migrate"))
            .is_some_and(is_true);
    }
    for c in doc.descendants().filter(|c| c.has_tag_name("rsc_location")) {
        let id = attr(c, "id");
        let kind = if id.starts_with("cli-prefer-") {
            "prefer"
        } else if id.starts_with("cli-ban-") {
            "ban"
        } else {
            continue;
        };
        // Plain (`node=`), or a rule with #uname and an end date (--lifetime).
        let mut node = attr(c, "node").to_string();
        let mut until = None;
        for e in c.descendants() {
            if e.has_tag_name("expression") && attr(e, "attribute") == "#uname" {
                node = attr(e, "value").to_string();
            }
            if e.has_tag_name("date_expression")
                && let Some(end) = e.attribute("end")
            {
                until = Some(end.to_string());
            }
        }
        conf.constraints.push((
            attr(c, "rsc").to_string(),
            MoveConstraint {
                id: id.to_string(),
                node,
                kind: kind.into(),
                until,
            },
        ));
    }
    Ok(conf)
}

/// The `<name>` of a libvirt domain XML.
pub fn domain_name(xml: &str) -> Option<String> {
    let doc = Document::parse(xml).ok()?;
    let root = doc.root_element();
    if !root.has_tag_name("domain") {
        return None;
    }
    root.children()
        .find(|c| c.has_tag_name("name"))
        .and_then(|n| n.text())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    //! Saved `crm_mon` XML from the lab's two-node cluster (and
    //! `crm_simulate` for the failed node); see tests/fixtures/crm_mon.
    use super::*;

    fn fixture(name: &str) -> String {
        let p = format!(
            "{}/tests/fixtures/crm_mon/{name}.xml",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    fn node<'a>(v: &'a ManagerView, name: &str) -> &'a ManagedNode {
        v.nodes.iter().find(|n| n.name == name).expect(name)
    }

    #[test]
    fn both_nodes_online() {
        let v = parse_status(&fixture("both-online")).unwrap();
        assert_eq!(v.dc.as_deref(), Some("vmshift-lab-a"));
        assert!(v.quorate && !v.maintenance && !v.fencing);
        assert_eq!(v.nodes.len(), 2);
        for n in &v.nodes {
            assert_eq!(n.out_of_service(), None, "{n:?}");
        }
        let r = &v.vms[0];
        assert_eq!(r.resource, "vm-ha");
        assert_eq!(r.agent, "ocf:heartbeat:VirtualDomain");
        assert_eq!(r.role, "Started");
        assert!(r.managed && !r.failed);
        assert_eq!(r.running_on, vec!["vmshift-lab-b"]);
        // The move that brought it there: migrate_to on a, migrate_from on b.
        let tasks: Vec<(&str, &str)> = r
            .recent
            .iter()
            .map(|o| (o.node.as_str(), o.task.as_str()))
            .collect();
        assert!(
            tasks.contains(&("vmshift-lab-a", "migrate_to")),
            "{tasks:?}"
        );
        assert!(
            tasks.contains(&("vmshift-lab-b", "migrate_from")),
            "{tasks:?}"
        );
        let to = r.recent.iter().find(|o| o.task == "migrate_to").unwrap();
        assert_eq!(to.exec_ms, 2677);
        assert_eq!(to.result, "ok");
    }

    #[test]
    fn one_node_in_standby() {
        let v = parse_status(&fixture("one-standby")).unwrap();
        let b = node(&v, "vmshift-lab-b");
        assert!(b.standby && b.online);
        assert_eq!(b.out_of_service(), Some("in standby"));
        assert_eq!(b.badge(), Some("STANDBY"));
        assert_eq!(node(&v, "vmshift-lab-a").out_of_service(), None);
        assert_eq!(v.vms[0].running_on, vec!["vmshift-lab-a"]);
        assert_eq!(v.vms[0].role, "Started");
    }

    #[test]
    fn a_resource_migrating_seen_on_the_source_only_then_on_both() {
        let v = parse_status(&fixture("migrating-source-only")).unwrap();
        assert_eq!(v.vms[0].role, "Migrating");
        assert_eq!(v.vms[0].running_on, vec!["vmshift-lab-b"]);
        let v = parse_status(&fixture("migrating-both")).unwrap();
        assert_eq!(v.vms[0].role, "Migrating");
        let mut on = v.vms[0].running_on.clone();
        on.sort();
        assert_eq!(on, vec!["vmshift-lab-a", "vmshift-lab-b"]);
    }

    #[test]
    fn a_node_unclean_after_a_failure() {
        let v = parse_status(&fixture("node-unclean")).unwrap();
        assert!(v.fencing);
        let a = node(&v, "vmshift-lab-a");
        assert!(a.unclean && !a.online);
        assert_eq!(a.badge(), Some("UNCLEAN"));
        assert!(a.out_of_service().unwrap().starts_with("unclean"));
        assert_eq!(node(&v, "vmshift-lab-b").out_of_service(), None);
    }

    #[test]
    fn maintenance_mode_leaves_every_resource_unmanaged() {
        let v = parse_status(&fixture("maintenance")).unwrap();
        assert!(v.maintenance);
        assert!(!v.vms[0].managed);
    }

    #[test]
    fn an_error_from_crm_mon_is_an_error() {
        let xml = r#"<pacemaker-result api-version="2.25" request="crm_mon">
  <status code="102" message="Not connected">
    <errors><error>crm_mon: Error: cluster is not available on this node</error></errors>
  </status>
</pacemaker-result>"#;
        let e = parse_status(xml).unwrap_err();
        assert!(e.contains("cluster is not available"), "{e}");
        assert!(parse_status("not xml").is_err());
    }

    #[test]
    fn configuration_gives_domains_allow_migrate_and_move_constraints() {
        let resources = fixture("resources");
        let xml = format!(
            "<configuration>{resources}<constraints>\
               <rsc_location id=\"cli-prefer-vm-ha\" rsc=\"vm-ha\" role=\"Started\" node=\"vmshift-lab-b\" score=\"INFINITY\"/>\
               <rsc_location id=\"cli-ban-vm-ha-on-vmshift-lab-a\" rsc=\"vm-ha\" role=\"Started\">\
                 <rule id=\"r1\" score=\"-INFINITY\" boolean-op=\"and\">\
                   <expression id=\"e1\" attribute=\"#uname\" operation=\"eq\" value=\"vmshift-lab-a\"/>\
                   <date_expression id=\"d1\" operation=\"lt\" end=\"2026-11-28 09:00:00Z\"/>\
                 </rule>\
               </rsc_location>\
               <rsc_location id=\"keep-web\" rsc=\"vm-ha\" node=\"x\" score=\"10\"/>\
             </constraints></configuration>"
        );
        let c = parse_config(&xml).unwrap();
        let p = &c.primitives["vm-ha"];
        assert_eq!(p.agent_type, "VirtualDomain");
        assert_eq!(
            p.config.as_deref(),
            Some("/var/tmp/vmshift-lab/guests/ha.xml")
        );
        assert_eq!(p.allow_migrate, Some(true));
        assert_eq!(c.constraints.len(), 2, "{:?}", c.constraints);
        assert_eq!(c.constraints[0].1.kind, "prefer");
        assert_eq!(c.constraints[0].1.node, "vmshift-lab-b");
        assert_eq!(c.constraints[1].1.kind, "ban");
        assert_eq!(c.constraints[1].1.node, "vmshift-lab-a");
        assert_eq!(
            c.constraints[1].1.until.as_deref(),
            Some("2026-11-28 09:00:00Z")
        );
    }

    #[test]
    fn the_domain_name_comes_from_its_xml() {
        assert_eq!(
            domain_name("<domain type='qemu'><name> ha </name></domain>").as_deref(),
            Some("ha")
        );
        assert_eq!(domain_name("<network><name>x</name></network>"), None);
    }
}
