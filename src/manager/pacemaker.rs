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
use crate::cluster::{
    ManagedNode, ManagedVm, ManagerOp, ManagerView, MoveConstraint, NodeSet, Rule, RuleKind,
    RuleOrigin, Strength,
};

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
        // Rules name VMs by domain, as everything else in vmshift does.
        let domains: HashMap<String, String> = view
            .vms
            .iter()
            .map(|v| (v.resource.clone(), v.domain.clone()))
            .collect();
        view.rules = rules_by_domain(conf.rules, |rsc| {
            domains.get(rsc).cloned().or_else(|| {
                let p = conf.primitives.get(rsc)?;
                Some(
                    p.config
                        .as_deref()
                        .and_then(|c| self.domain_of(c))
                        .unwrap_or_else(|| rsc.to_string()),
                )
            })
        });
        view.unread_constraints = conf.unread;
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
    /// Colocation and location constraints on VM resources as placement
    /// rules, their groups by resource id (`read` turns them into domains).
    pub rules: Vec<Rule>,
    /// Constraints on VM resources in a form vmshift does not read exactly,
    /// one sentence each (its id and why).
    pub unread: Vec<String>,
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
    let targets = Targets::of(&doc, &conf.primitives);
    for c in doc
        .descendants()
        .filter(|c| c.has_tag_name("rsc_colocation"))
    {
        match colocation_rule(c, &targets) {
            Some(Ok(r)) => conf.rules.push(r),
            Some(Err(why)) => conf.unread.push(why),
            None => {}
        }
    }
    for c in doc.descendants().filter(|c| c.has_tag_name("rsc_location")) {
        let id = attr(c, "id");
        let kind = if id.starts_with("cli-prefer-") {
            "prefer"
        } else if id.starts_with("cli-ban-") {
            "ban"
        } else {
            match location_rule(c, &targets) {
                Some(Ok(r)) => conf.rules.push(r),
                Some(Err(why)) => conf.unread.push(why),
                None => {}
            }
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

/// What a constraint's resource id names, as far as VMs go.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    /// A VirtualDomain primitive.
    Vm,
    /// A group, clone, bundle or tag that holds these VM resources.
    Holds(String, Vec<String>),
    /// Anything else (an IP address, a file system, an unknown id).
    Other,
}

/// The CIB's resource ids, sorted into VMs and what holds VMs.
struct Targets {
    vms: Vec<String>,
    /// (id, what it is, VM resources inside).
    holders: Vec<(String, String, Vec<String>)>,
}

impl Targets {
    fn of(doc: &Document, primitives: &HashMap<String, Primitive>) -> Targets {
        let is_vm = |id: &str| {
            primitives
                .get(id)
                .is_some_and(|p| p.agent_type == VIRTUAL_DOMAIN)
        };
        let mut vms: Vec<String> = primitives.keys().filter(|id| is_vm(id)).cloned().collect();
        vms.sort();
        let mut holders: Vec<(String, String, Vec<String>)> = Vec::new();
        for h in doc.descendants().filter(|c| {
            c.is_element() && matches!(c.tag_name().name(), "group" | "clone" | "master" | "bundle")
        }) {
            let inside: Vec<String> = h
                .descendants()
                .filter(|c| c.has_tag_name("primitive"))
                .map(|c| attr(c, "id").to_string())
                .filter(|id| is_vm(id))
                .collect();
            holders.push((
                attr(h, "id").to_string(),
                h.tag_name().name().to_string(),
                inside,
            ));
        }
        for t in doc.descendants().filter(|c| c.has_tag_name("tag")) {
            let mut inside = Vec::new();
            for r in t.children().filter(|c| c.has_tag_name("obj_ref")) {
                let id = attr(r, "id");
                if is_vm(id) {
                    inside.push(id.to_string());
                } else if let Some((_, _, v)) = holders.iter().find(|(h, _, _)| h == id) {
                    inside.extend(v.iter().cloned());
                }
            }
            holders.push((attr(t, "id").to_string(), "tag".into(), inside));
        }
        Targets { vms, holders }
    }

    fn get(&self, id: &str) -> Target {
        if self.vms.iter().any(|v| v == id) {
            return Target::Vm;
        }
        match self.holders.iter().find(|(h, _, _)| h == id) {
            Some((_, what, inside)) if !inside.is_empty() => {
                Target::Holds(what.clone(), inside.clone())
            }
            _ => Target::Other,
        }
    }

    /// Whether any of these ids is, or holds, a VM resource.
    fn any_vm<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> bool {
        ids.into_iter().any(|id| self.get(id) != Target::Other)
    }
}

/// A constraint's score: Pacemaker's ±INFINITY (a number beyond ±1,000,000
/// counts as INFINITY) or a finite preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Score {
    Infinity,
    MinusInfinity,
    Finite(i64),
}

/// Pacemaker's INFINITY as a number.
const PCMK_INFINITY: i64 = 1_000_000;

fn score(s: &str) -> Option<Score> {
    let t = s.trim();
    match t.to_ascii_uppercase().as_str() {
        "INFINITY" | "+INFINITY" => return Some(Score::Infinity),
        "-INFINITY" => return Some(Score::MinusInfinity),
        _ => {}
    }
    let n: i64 = t.parse().ok()?;
    Some(if n >= PCMK_INFINITY {
        Score::Infinity
    } else if n <= -PCMK_INFINITY {
        Score::MinusInfinity
    } else {
        Score::Finite(n)
    })
}

/// A role that leaves the constraint about where the VM runs: none, or
/// Started.
fn plain_role(role: &str) -> bool {
    role.is_empty() || role.eq_ignore_ascii_case("Started")
}

/// The resource ids inside a constraint's `<resource_set>`s.
fn set_members<'a>(c: Node<'a, '_>) -> Vec<&'a str> {
    c.children()
        .filter(|s| s.has_tag_name("resource_set"))
        .flat_map(|s| s.children().filter(|r| r.has_tag_name("resource_ref")))
        .map(|r| attr(r, "id"))
        .collect()
}

/// Why a constraint naming `id` (a group, clone or tag holding VMs) is not
/// read.
fn holder_sentence(kind: &str, cid: &str, id: &str, what: &str, vms: &[String]) -> String {
    format!(
        "{kind} {cid} names {what} {id} (VM resources {}), and vmshift reads constraints on single VM resources only; Pacemaker still keeps it",
        vms.join(", ")
    )
}

fn pacemaker_rule(
    kind: &str,
    id: &str,
    rule: RuleKind,
    vms: Vec<String>,
    strength: Strength,
) -> Rule {
    Rule {
        name: id.to_string(),
        kind: rule,
        vms,
        strength,
        origin: RuleOrigin::Pacemaker {
            kind: kind.into(),
            id: id.to_string(),
        },
    }
}

/// An `rsc_colocation` as a placement rule (groups by resource id): `None`
/// when it names no VM or its score is 0, `Err` with one sentence when it
/// is in a form vmshift does not read exactly.
fn colocation_rule(c: Node, targets: &Targets) -> Option<Result<Rule, String>> {
    let id = attr(c, "id");
    let unread = |why: String| {
        Some(Err(format!(
            "colocation {id} {why}; Pacemaker still keeps it"
        )))
    };
    if c.children().any(|s| s.has_tag_name("resource_set")) {
        if !targets.any_vm(set_members(c)) {
            return None;
        }
        return unread("uses resource sets, which vmshift does not read".into());
    }
    let (rsc, with) = (attr(c, "rsc"), attr(c, "with-rsc"));
    match (targets.get(rsc), targets.get(with)) {
        (Target::Other, Target::Other) => return None,
        (Target::Holds(what, vms), _) => {
            return Some(Err(holder_sentence("colocation", id, rsc, &what, &vms)));
        }
        (_, Target::Holds(what, vms)) => {
            return Some(Err(holder_sentence("colocation", id, with, &what, &vms)));
        }
        (Target::Vm, Target::Other) => {
            return unread(format!(
                "ties VM resource {rsc} to {with}, which is not a VM, so vmshift cannot judge it"
            ));
        }
        (Target::Other, Target::Vm) => {
            return unread(format!(
                "ties {rsc}, which is not a VM, to VM resource {with}, so vmshift cannot judge it"
            ));
        }
        (Target::Vm, Target::Vm) => {}
    }
    for role in ["rsc-role", "with-rsc-role"] {
        let r = attr(c, role);
        if !plain_role(r) {
            return unread(format!(
                "applies to role {r} only ({role}), and vmshift reads constraints on where a VM runs (Started) only"
            ));
        }
    }
    let na = attr(c, "node-attribute");
    if !na.is_empty() && na != "#uname" {
        return unread(format!(
            "compares node attribute {na} (not the node itself), which vmshift does not read"
        ));
    }
    for a in ["rsc-instance", "with-rsc-instance"] {
        if c.attribute(a).is_some() {
            return unread(format!(
                "names a clone instance ({a}), which vmshift does not read"
            ));
        }
    }
    let raw = attr(c, "score");
    let Some(s) = score(raw) else {
        return unread(format!(
            "has score \"{raw}\", which is neither a number nor ±INFINITY"
        ));
    };
    let (kind, strength) = match s {
        Score::Infinity => (RuleKind::Together, Strength::Must),
        Score::MinusInfinity => (RuleKind::Apart { max_per_node: 1 }, Strength::Must),
        Score::Finite(0) => return None,
        Score::Finite(n) if n > 0 => (RuleKind::Together, Strength::Should),
        Score::Finite(_) => (RuleKind::Apart { max_per_node: 1 }, Strength::Should),
    };
    Some(Ok(pacemaker_rule(
        "colocation",
        id,
        kind,
        vec![rsc.to_string(), with.to_string()],
        strength,
    )))
}

/// The node of a location `<rule>` that is exactly `#uname eq NODE`, with
/// its score; `Err` naming what else it holds.
fn plain_uname_rule<'a>(rule: Node<'a, '_>) -> Result<(&'a str, &'a str), String> {
    if rule.attribute("id-ref").is_some() {
        return Err("refers to a rule defined elsewhere (id-ref)".into());
    }
    if rule.attribute("score-attribute").is_some() {
        return Err("takes its score from a node attribute (score-attribute)".into());
    }
    let role = attr(rule, "role");
    if !plain_role(role) {
        return Err(format!("applies to role {role} only"));
    }
    let parts: Vec<Node> = rule.children().filter(|e| e.is_element()).collect();
    let [e] = parts.as_slice() else {
        return Err(format!(
            "has a rule of {} parts (vmshift reads a single `#uname eq NODE` only)",
            parts.len()
        ));
    };
    let plain = e.has_tag_name("expression")
        && attr(*e, "attribute") == "#uname"
        && attr(*e, "operation") == "eq"
        && matches!(attr(*e, "value-source"), "" | "literal")
        && matches!(attr(*e, "type"), "" | "string")
        && !attr(*e, "value").is_empty();
    if !plain {
        return Err(format!(
            "has a rule on {} (vmshift reads a single `#uname eq NODE` only)",
            describe_expression(*e)
        ));
    }
    Ok((attr(*e, "value"), attr(rule, "score")))
}

/// `node attribute rack ne 1`, `a date`, `a nested rule`.
fn describe_expression(e: Node) -> String {
    match e.tag_name().name() {
        "expression" => format!(
            "node attribute {} {} {}",
            attr(e, "attribute"),
            attr(e, "operation"),
            attr(e, "value")
        )
        .trim_end()
        .to_string(),
        "date_expression" => "a date".into(),
        "rule" => "a nested rule".into(),
        other => format!("<{other}>"),
    }
}

/// An `rsc_location` (other than `cli-prefer-*`/`cli-ban-*`) as a placement
/// rule (group by resource id): `None` when it names no VM or its score is
/// 0, `Err` with one sentence when vmshift does not read it exactly.
fn location_rule(c: Node, targets: &Targets) -> Option<Result<Rule, String>> {
    let id = attr(c, "id");
    let unread = |why: String| {
        Some(Err(format!(
            "location {id} {why}; Pacemaker still keeps it"
        )))
    };
    if let Some(p) = c.attribute("rsc-pattern") {
        return unread(format!(
            "applies to the resources matching the pattern {p}, which vmshift does not read"
        ));
    }
    if c.children().any(|s| s.has_tag_name("resource_set")) {
        if !targets.any_vm(set_members(c)) {
            return None;
        }
        return unread("uses resource sets, which vmshift does not read".into());
    }
    let rsc = attr(c, "rsc");
    match targets.get(rsc) {
        Target::Other => return None,
        Target::Holds(what, vms) => {
            return Some(Err(holder_sentence("location", id, rsc, &what, &vms)));
        }
        Target::Vm => {}
    }
    let role = attr(c, "role");
    if !plain_role(role) {
        return unread(format!(
            "applies to role {role} only, and vmshift reads constraints on where a VM runs (Started) only"
        ));
    }
    let rules: Vec<Node> = c.children().filter(|r| r.has_tag_name("rule")).collect();
    let (node, raw) = match (c.attribute("node"), rules.as_slice()) {
        (Some(n), []) => (n, attr(c, "score")),
        (None, [r]) => match plain_uname_rule(*r) {
            Ok(x) => x,
            Err(why) => return unread(why),
        },
        (None, []) => return unread("names no node".into()),
        (_, rs) => {
            return unread(format!(
                "has {} rules (vmshift reads one `#uname eq NODE` rule only)",
                rs.len()
            ));
        }
    };
    let Some(s) = score(raw) else {
        return unread(format!(
            "has score \"{raw}\", which is neither a number nor ±INFINITY"
        ));
    };
    let nodes = NodeSet {
        nodes: vec![node.to_string()],
        labels: Vec::new(),
    };
    // Only -INFINITY binds: with +INFINITY Pacemaker still runs the VM
    // elsewhere once that node is gone, so it is a preference.
    let (kind, strength) = match s {
        Score::MinusInfinity => (RuleKind::NotOn { nodes }, Strength::Must),
        Score::Finite(0) => return None,
        Score::Infinity => (RuleKind::On { nodes }, Strength::Should),
        Score::Finite(n) if n > 0 => (RuleKind::On { nodes }, Strength::Should),
        Score::Finite(_) => (RuleKind::NotOn { nodes }, Strength::Should),
    };
    Some(Ok(pacemaker_rule(
        "location",
        id,
        kind,
        vec![rsc.to_string()],
        strength,
    )))
}

/// Rules read by resource id, their groups turned into domain names (a
/// resource `domain` does not know keeps its id).
pub fn rules_by_domain(rules: Vec<Rule>, domain: impl Fn(&str) -> Option<String>) -> Vec<Rule> {
    rules
        .into_iter()
        .map(|mut r| {
            for v in &mut r.vms {
                if let Some(d) = domain(v) {
                    *v = d;
                }
            }
            r
        })
        .collect()
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
        // Any other location constraint is a placement rule.
        assert_eq!(c.rules.len(), 1, "{:?}", c.rules);
        assert_eq!(c.rules[0].name, "keep-web");
        assert_eq!(c.rules[0].strength, Strength::Should);
    }

    /// The lab's resources (VirtualDomain vm-ha) and three more: VMs vm-db
    /// and vm-web, a group g-app holding VM vm-app, an IP address ip-1.
    fn cib(constraints: &str) -> Configuration {
        let resources = fixture("resources");
        let more = r#"<resources>
            <primitive id="vm-db" class="ocf" provider="heartbeat" type="VirtualDomain"/>
            <primitive id="vm-web" class="ocf" provider="heartbeat" type="VirtualDomain"/>
            <primitive id="ip-1" class="ocf" provider="heartbeat" type="IPaddr2"/>
            <group id="g-app">
              <primitive id="vm-app" class="ocf" provider="heartbeat" type="VirtualDomain"/>
            </group>
            <group id="g-net"><primitive id="ip-2" class="ocf" provider="heartbeat" type="IPaddr2"/></group>
          </resources>"#;
        let xml = format!(
            "<configuration>{resources}{more}<tags><tag id=\"t-db\"><obj_ref id=\"vm-db\"/></tag></tags>\
             <constraints>{constraints}</constraints></configuration>"
        );
        parse_config(&xml).unwrap()
    }

    fn only_rule(c: &Configuration) -> &Rule {
        assert_eq!(c.rules.len(), 1, "{:?} / unread {:?}", c.rules, c.unread);
        assert!(c.unread.is_empty(), "{:?}", c.unread);
        &c.rules[0]
    }

    fn origin(kind: &str, id: &str) -> RuleOrigin {
        RuleOrigin::Pacemaker {
            kind: kind.into(),
            id: id.into(),
        }
    }

    fn on(node: &str) -> NodeSet {
        NodeSet {
            nodes: vec![node.into()],
            labels: Vec::new(),
        }
    }

    #[test]
    fn colocation_scores_become_together_or_apart_must_or_should() {
        let apart = RuleKind::Apart { max_per_node: 1 };
        for (score, kind, strength) in [
            ("INFINITY", RuleKind::Together, Strength::Must),
            ("+INFINITY", RuleKind::Together, Strength::Must),
            ("infinity", RuleKind::Together, Strength::Must),
            ("1000000", RuleKind::Together, Strength::Must),
            ("-INFINITY", apart.clone(), Strength::Must),
            ("-1000000", apart.clone(), Strength::Must),
            ("100", RuleKind::Together, Strength::Should),
            ("+5", RuleKind::Together, Strength::Should),
            ("-100", apart.clone(), Strength::Should),
        ] {
            let c = cib(&format!(
                "<rsc_colocation id=\"db-web\" rsc=\"vm-db\" with-rsc=\"vm-web\" score=\"{score}\"/>"
            ));
            let r = only_rule(&c);
            assert_eq!(r.name, "db-web");
            assert_eq!((&r.kind, r.strength), (&kind, strength), "score {score}");
            assert_eq!(r.vms, vec!["vm-db", "vm-web"]);
            assert_eq!(r.origin, origin("colocation", "db-web"));
            assert!(!r.origin.overridable());
        }
        // Score 0: no preference at all.
        let c = cib(r#"<rsc_colocation id="z" rsc="vm-db" with-rsc="vm-web" score="0"/>"#);
        assert!(c.rules.is_empty() && c.unread.is_empty(), "{c:?}");
        // Started roles are where a VM runs.
        let c = cib(
            r##"<rsc_colocation id="s" rsc="vm-db" rsc-role="Started" with-rsc="vm-web" with-rsc-role="Started" node-attribute="#uname" score="-INFINITY"/>"##,
        );
        assert_eq!(only_rule(&c).strength, Strength::Must);
    }

    #[test]
    fn location_scores_become_not_on_must_or_preferences() {
        for (score, kind, strength) in [
            (
                "-INFINITY",
                RuleKind::NotOn { nodes: on("n1") },
                Strength::Must,
            ),
            (
                "-inf",
                RuleKind::NotOn { nodes: on("n1") },
                Strength::Should,
            ),
            ("-50", RuleKind::NotOn { nodes: on("n1") }, Strength::Should),
            // Pacemaker runs the VM elsewhere once n1 is gone: never a must.
            (
                "INFINITY",
                RuleKind::On { nodes: on("n1") },
                Strength::Should,
            ),
            (
                "+INFINITY",
                RuleKind::On { nodes: on("n1") },
                Strength::Should,
            ),
            ("200", RuleKind::On { nodes: on("n1") }, Strength::Should),
        ] {
            let c = cib(&format!(
                "<rsc_location id=\"db-n1\" rsc=\"vm-db\" node=\"n1\" score=\"{score}\"/>"
            ));
            if score == "-inf" {
                // Not a score Pacemaker reads: not guessed.
                assert!(c.rules.is_empty(), "{c:?}");
                assert_eq!(c.unread.len(), 1);
                assert!(c.unread[0].starts_with("location db-n1 "), "{:?}", c.unread);
                assert!(c.unread[0].contains("-inf"), "{:?}", c.unread);
                continue;
            }
            let r = only_rule(&c);
            assert_eq!((&r.kind, r.strength), (&kind, strength), "score {score}");
            assert_eq!(r.vms, vec!["vm-db"]);
            assert_eq!(r.name, "db-n1");
            assert_eq!(r.origin, origin("location", "db-n1"));
        }
        let c = cib(r#"<rsc_location id="z" rsc="vm-db" node="n1" score="0"/>"#);
        assert!(c.rules.is_empty() && c.unread.is_empty(), "{c:?}");
        // A rule that is a plain `#uname eq NODE` is the same as node=.
        let c = cib(r##"<rsc_location id="db-not-n2" rsc="vm-db" role="Started">
              <rule id="r" score="-INFINITY"><expression id="e" attribute="#uname" operation="eq" value="n2"/></rule>
            </rsc_location>"##);
        let r = only_rule(&c);
        assert_eq!(
            (&r.kind, r.strength),
            (&RuleKind::NotOn { nodes: on("n2") }, Strength::Must)
        );
    }

    #[test]
    fn move_constraints_stay_move_constraints_never_rules() {
        let c = cib(
            r#"<rsc_location id="cli-prefer-vm-db" rsc="vm-db" role="Started" node="n1" score="INFINITY"/>
            <rsc_location id="cli-ban-vm-db-on-n2" rsc="vm-db" role="Started" node="n2" score="-INFINITY"/>"#,
        );
        assert!(c.rules.is_empty() && c.unread.is_empty(), "{c:?}");
        assert_eq!(c.constraints.len(), 2);
    }

    #[test]
    fn constraints_on_resources_that_are_not_vms_are_dropped() {
        let c = cib(
            r#"<rsc_location id="ip-n1" rsc="ip-1" node="n1" score="-INFINITY"/>
            <rsc_location id="net-n1" rsc="g-net" node="n1" score="100"/>
            <rsc_colocation id="ip-ip" rsc="ip-1" with-rsc="g-net" score="INFINITY"/>
            <rsc_colocation id="ip-set" score="INFINITY">
              <resource_set id="s1"><resource_ref id="ip-1"/><resource_ref id="ip-2"/></resource_set>
            </rsc_colocation>
            <rsc_order id="o" first="ip-1" then="vm-db"/>"#,
        );
        assert!(c.rules.is_empty() && c.unread.is_empty(), "{c:?}");
    }

    #[test]
    fn forms_not_read_exactly_are_listed_one_sentence_each() {
        for (xml, says) in [
            (
                r#"<rsc_colocation id="c-set" score="-INFINITY">
                     <resource_set id="s1"><resource_ref id="vm-db"/><resource_ref id="vm-web"/></resource_set>
                   </rsc_colocation>"#,
                "resource sets",
            ),
            (
                r#"<rsc_location id="l-set" node="n1" score="-INFINITY">
                     <resource_set id="s2"><resource_ref id="vm-db"/></resource_set>
                   </rsc_location>"#,
                "resource sets",
            ),
            (
                r#"<rsc_location id="l-pat" rsc-pattern="vm-.*" node="n1" score="-INFINITY"/>"#,
                "pattern vm-.*",
            ),
            (
                r##"<rsc_location id="l-attr" rsc="vm-db">
                     <rule id="r" score="-INFINITY"><expression id="e" attribute="rack" operation="eq" value="2"/></rule>
                   </rsc_location>"##,
                "node attribute rack eq 2",
            ),
            (
                r##"<rsc_location id="l-ne" rsc="vm-db">
                     <rule id="r" score="-INFINITY"><expression id="e" attribute="#uname" operation="ne" value="n1"/></rule>
                   </rsc_location>"##,
                "#uname ne n1",
            ),
            (
                r##"<rsc_location id="l-date" rsc="vm-db">
                     <rule id="r" score="-INFINITY" boolean-op="and">
                       <expression id="e" attribute="#uname" operation="eq" value="n1"/>
                       <date_expression id="d" operation="lt" end="2030-01-01"/>
                     </rule>
                   </rsc_location>"##,
                "2 parts",
            ),
            (
                r##"<rsc_location id="l-sa" rsc="vm-db">
                     <rule id="r" score-attribute="pref"><expression id="e" attribute="#uname" operation="eq" value="n1"/></rule>
                   </rsc_location>"##,
                "score-attribute",
            ),
            (
                r#"<rsc_location id="l-role" rsc="vm-db" role="Promoted" node="n1" score="-INFINITY"/>"#,
                "role Promoted",
            ),
            (
                r#"<rsc_colocation id="c-role" rsc="vm-db" with-rsc="vm-web" with-rsc-role="Promoted" score="INFINITY"/>"#,
                "role Promoted",
            ),
            (
                r#"<rsc_colocation id="c-attr" rsc="vm-db" with-rsc="vm-web" node-attribute="rack" score="-INFINITY"/>"#,
                "node attribute rack",
            ),
            (
                r#"<rsc_colocation id="c-ip" rsc="vm-db" with-rsc="ip-1" score="INFINITY"/>"#,
                "ip-1, which is not a VM",
            ),
            (
                r#"<rsc_colocation id="c-grp" rsc="g-app" with-rsc="vm-db" score="-INFINITY"/>"#,
                "group g-app (VM resources vm-app)",
            ),
            (
                r#"<rsc_location id="l-tag" rsc="t-db" node="n1" score="-INFINITY"/>"#,
                "tag t-db (VM resources vm-db)",
            ),
            (
                r#"<rsc_colocation id="c-red" rsc="vm-db" with-rsc="vm-web" score="red"/>"#,
                "score \"red\"",
            ),
        ] {
            let c = cib(xml);
            assert!(c.rules.is_empty(), "{xml}: {:?}", c.rules);
            assert_eq!(c.unread.len(), 1, "{xml}: {:?}", c.unread);
            let id = roxmltree::Document::parse(xml)
                .unwrap()
                .root_element()
                .attribute("id")
                .unwrap()
                .to_string();
            let s = &c.unread[0];
            assert!(s.contains(&format!(" {id} ")), "{s}");
            assert!(s.contains(says), "{xml}: {s}");
            assert!(s.ends_with("Pacemaker still keeps it"), "{s}");
            assert_eq!(s.matches(';').count(), 1, "one sentence: {s}");
        }
    }

    #[test]
    fn rules_name_vms_by_domain() {
        let c =
            cib(r#"<rsc_colocation id="db-web" rsc="vm-db" with-rsc="vm-web" score="-INFINITY"/>"#);
        let rules = rules_by_domain(c.rules, |r| (r == "vm-db").then(|| "db".to_string()));
        assert_eq!(rules[0].vms, vec!["db", "vm-web"]);
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
