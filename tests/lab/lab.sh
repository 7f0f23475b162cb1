#!/usr/bin/env bash
# The two-node libvirt + QEMU lab (DESIGN §8): two independent libvirtd
# "nodes" on this machine, each in its own mount + UTS namespace with its own
# hostname, host UUID and config/run/state dirs, sharing the host's network
# namespace (loopback and unix sockets only). A storage pool shared by both
# nodes, a local pool on each, and three guests built here: a tiny multiboot
# kernel that dirties memory at a set rate (idle, moderate, fast).
#
#   tests/lab/lab.sh install  install the Debian packages the lab and the libvirt build need
#   tests/lab/lab.sh up       install what is missing, start both nodes and the guests (idempotent)
#   tests/lab/lab.sh down     stop guests and daemons
#   tests/lab/lab.sh status   what runs, and the URIs to use
#   tests/lab/lab.sh env      shell exports for tests (VMSHIFT_LAB_URI_A, ...)
#   tests/lab/lab.sh reset    guests back to their start nodes, running
#   tests/lab/lab.sh guest NAME MEMORY_MIB PAGES REGION
#                             an extra guest on node a (shared pool) dirtying PAGES
#                             pages/ms over REGION pages (the calibration grid's)
#   tests/lab/lab.sh rm-guest NAME   stop and remove such a guest on both nodes
#   tests/lab/lab.sh local-guest NAME [PAGES REGION]
#                             a guest on node a with a writable disk on a's local
#                             pool local-a (for copy-storage and storage moves)
#   tests/lab/lab.sh node-guest NODE NAME shared|local
#                             a guest on NODE, disk on the shared pool or NODE's local one
#   tests/lab/lab.sh kill-node-all NODE
#                             kill NODE's daemon and its guests' QEMU (a dead node;
#                             refused while the Pacemaker guest runs there)
#   tests/lab/lab.sh ha-reset the Pacemaker guest started, no move constraint and no
#                             vmshift-test-* constraint, both cluster nodes online
#                             (not standby, no maintenance)
#   tests/lab/lab.sh ha-stop  the Pacemaker guest stopped through Pacemaker (ha-reset starts it)
#   tests/lab/lab.sh on NODE CMD...  run CMD in node NODE's namespace (crm_mon, crm, virsh)
#
# An sshd on 127.0.0.1:2222 (own host key, root's default key authorized)
# reaches node a over `qemu+ssh://` (VMSHIFT_LAB_SSH_URI in `env`): the
# view's and the CLI's handling of unknown host keys is tested against it.
#
# On top of the two libvirt nodes runs a two-node Pacemaker 2.1 + Corosync 3
# cluster (DESIGN §8.1): corosync on 127.0.0.1 (node a) and 127.0.0.2 (node b),
# each node's corosync and pacemaker in its own mount + UTS namespace (libqb
# forced to file-system sockets under the node's private /run), managing one
# guest, `ha`, as the ocf:heartbeat:VirtualDomain resource vm-ha with
# allow-migrate=true. `$LAB/bin/on-vmshift-lab-a CMD...` runs CMD on node a
# (the command prefix vmshift's [pacemaker] config uses).
#
# VMSHIFT_LAB_DIR (default /var/tmp/vmshift-lab) holds everything.
# VMSHIFT_LAB_KVM=1 uses KVM instead of TCG.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
LAB="${VMSHIFT_LAB_DIR:-/var/tmp/vmshift-lab}"
NODES=(a b)
GUESTS=(idle moderate fast)
# guest -> "start-node pages-per-ms region-pages disk-pool"
declare -A GUEST_SPEC=(
  [idle]="a 0 256 local-a"
  [moderate]="a 4 16384 shared"
  [fast]="b 48 16384 shared"
)
PACKAGES=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-dev qemu-system-x86 pkg-config nasm
  pacemaker pacemaker-cli-utils corosync crmsh resource-agents iproute2
  openssh-server openssh-client netcat-openbsd)
# The Pacemaker-managed guest (issue 11): resource vm-ha, domain ha, shared pool.
HA_GUEST=ha
HA_RESOURCE=vm-ha
HA_SPEC="2 4096"

say() { echo "lab: $*" >&2; }
die() { echo "lab: error: $*" >&2; exit 1; }

node_dir() { echo "$LAB/nodes/$1"; }
sock() { echo "$(node_dir "$1")/run/libvirt/libvirt-sock"; }
uri() { echo "qemu+unix:///system?socket=$(sock "$1")"; }
v() { virsh -q -c "$(uri "$1")" "${@:2}"; }

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" == "install ok installed" ]] || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # A newer qemu-utils on this image blocks qemu-system-x86 7.2: take the
  # qemu-utils of the same version along, downgrading if needed.
  local ver
  ver="$(apt-cache policy qemu-system-x86 | awk '/Candidate:/ {print $2}')"
  local utils="qemu-utils"
  [[ -n $ver && $ver != "(none)" ]] && utils="qemu-utils=$ver"
  # No package starts its service (sshd on port 22, corosync, pacemaker):
  # the lab starts its own, on loopback.
  local policy=/usr/sbin/policy-rc.d own_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1
  fi
  apt-get install -y -qq --no-install-recommends --allow-downgrades "${missing[@]}" "$utils" >/dev/null
  ((own_policy)) && rm -f "$policy"
  return 0
}

build_guest() {
  mkdir -p "$LAB/guest"
  if [[ ! -f "$LAB/guest/guest.bin" || "$HERE/guest.asm" -nt "$LAB/guest/guest.bin" ]]; then
    nasm -f bin -o "$LAB/guest/guest.bin" "$HERE/guest.asm"
  fi
}

# Stable per-node host UUIDs (libvirt refuses migrating between equal ones).
host_uuid() { [[ $1 == a ]] && echo "6d5f2a9e-1c7b-4f00-9a11-00000000000a" || echo "6d5f2a9e-1c7b-4f00-9a11-00000000000b"; }

prepare_node() {
  local n=$1 d
  d="$(node_dir "$n")"
  mkdir -p "$d"/{etc/libvirt/qemu,run/libvirt,lib/libvirt,log/libvirt,cache/libvirt,local} "$d/etc-files"
  cat >"$d/etc/libvirt/libvirtd.conf" <<CONF
listen_tls = 0
listen_tcp = 0
unix_sock_rw_perms = "0770"
auth_unix_rw = "none"
auth_unix_ro = "none"
host_uuid = "$(host_uuid "$n")"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
keepalive_interval = 5
keepalive_count = 5
CONF
  local port_min=49152
  [[ $n == a ]] || port_min=49252
  cat >"$d/etc/libvirt/qemu.conf" <<CONF
user = "root"
group = "root"
security_driver = "none"
cgroup_controllers = [ ]
stdio_handler = "file"
namespaces = [ ]
dynamic_ownership = 0
remember_owner = 0
migration_port_min = $port_min
migration_port_max = $((port_min + 64))
CONF
  # No libvirt-daemon-system here, so no libvirt-qemu user: the QEMU driver
  # wants one even with user = "root". Private passwd/group that have it.
  cp /etc/passwd "$d/etc-files/passwd"
  cp /etc/group "$d/etc-files/group"
  grep -q '^libvirt-qemu:' "$d/etc-files/passwd" || echo 'libvirt-qemu:x:64055:64055:Libvirt Qemu:/var/lib/libvirt:/usr/sbin/nologin' >>"$d/etc-files/passwd"
  grep -q '^libvirt-qemu:' "$d/etc-files/group" || echo 'libvirt-qemu:x:64055:' >>"$d/etc-files/group"
  grep -q '^kvm:' "$d/etc-files/group" || echo 'kvm:x:64056:libvirt-qemu' >>"$d/etc-files/group"
  # No lookup ever leaves the machine.
  echo "nameserver 127.0.0.1" >"$d/etc-files/resolv.conf"
  printf '127.0.0.1 localhost vmshift-lab-a vmshift-lab-b\n::1 localhost\n' >"$d/etc-files/hosts"
  echo "vmshift-lab-$n" >"$d/etc-files/hostname"
}

daemon_pid() {
  local f
  f="$(node_dir "$1")/daemon.pid"
  [[ -f $f ]] && kill -0 "$(cat "$f")" 2>/dev/null && cat "$f"
}

node_answers() { virsh -q -c "$(uri "$1")" version >/dev/null 2>&1; }

start_node() {
  local n=$1 d
  d="$(node_dir "$n")"
  if daemon_pid "$n" >/dev/null && node_answers "$n"; then
    return 0
  fi
  stop_node "$n"
  rm -f "$(sock "$n")" "$d/run/libvirt/libvirtd.pid"
  say "starting node $n"
  # Own mount + UTS namespace: own hostname, own libvirt dirs; the host's
  # network namespace (loopback) is shared.
  setsid unshare --mount --uts --propagation private bash -c '
    set -e
    d="$1"; n="$2"
    hostname "vmshift-lab-$n"
    for sub in etc/libvirt:/etc/libvirt run/libvirt:/run/libvirt lib/libvirt:/var/lib/libvirt log/libvirt:/var/log/libvirt cache/libvirt:/var/cache/libvirt; do
      src="$d/${sub%%:*}"; dst="${sub#*:}"
      mkdir -p "$dst"
      mount --bind "$src" "$dst"
    done
    for f in passwd group resolv.conf hosts hostname; do
      mount --bind "$d/etc-files/$f" "/etc/$f"
    done
    # No inherited descriptors (the lab lock of `flock ... lab.sh` above
    # all): a daemon holding it would keep the lab locked as long as it runs.
    for fd in /proc/$$/fd/*; do
      fd=${fd##*/}
      [[ $fd -gt 2 ]] && eval "exec $fd>&-" || true
    done
    exec libvirtd --config /etc/libvirt/libvirtd.conf --pid-file /run/libvirt/libvirtd.pid
  ' lab "$d" "$n" >"$d/daemon.out" 2>&1 </dev/null &
  echo $! >"$d/daemon.pid"
  local i
  for i in $(seq 1 200); do
    if node_answers "$n"; then
      # The daemon's own pid (setsid forks when it runs as a group leader,
      # and $! is then not the daemon's).
      [[ -s $d/run/libvirt/libvirtd.pid ]] && cp "$d/run/libvirt/libvirtd.pid" "$d/daemon.pid"
      return 0
    fi
    kill -0 "$(cat "$d/daemon.pid")" 2>/dev/null || break
    sleep 0.1
  done
  cat "$d/daemon.out" >&2 || true
  tail -n 20 "$d/log/libvirt/libvirtd.log" >&2 2>/dev/null || true
  die "node $n did not come up"
}

stop_node() {
  local n=$1 pid
  pid="$(daemon_pid "$n" || true)"
  [[ -n $pid ]] || return 0
  say "stopping node $n"
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$(node_dir "$n")/daemon.pid"
}

# (No `| grep -q` under pipefail: grep quitting early fails the pipe.)
pool_running() { [[ "$(v "$1" pool-info "$2" 2>/dev/null)" == *State:*running* ]]; }

define_pool() {
  local n=$1 name=$2 path=$3
  mkdir -p "$path"
  if ! v "$n" pool-info "$name" >/dev/null 2>&1; then
    v "$n" pool-define-as "$name" dir --target "$path" >/dev/null
  fi
  # Autostart may be starting it right now: tolerate "already active".
  pool_running "$n" "$name" || v "$n" pool-start "$name" >/dev/null 2>&1 ||
    pool_running "$n" "$name" || die "pool $name on node $n does not start"
  v "$n" pool-autostart "$name" >/dev/null 2>&1 || true
}

guest_xml() {
  local g=$1 pages=$2 region=$3 disk=$4 memory=${5:-256} readonly=${6:-readonly} domtype=qemu
  [[ ${VMSHIFT_LAB_KVM:-0} == 1 ]] && domtype=kvm
  cat <<XML
<domain type='$domtype'>
  <name>$g</name>
  <memory unit='MiB'>$memory</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$LAB/guest/guest.bin</kernel>
    <cmdline>pages=$pages region=$region</cmdline>
  </os>
  <features><acpi/></features>
  <cpu mode='custom' match='exact' check='none'><model fallback='allow'>qemu64</model></cpu>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='$disk'/>
      <target dev='vda' bus='virtio'/>$([[ $readonly == readonly ]] && printf '\n      <readonly/>')
    </disk>
    <serial type='pty'>
      <log file='$LAB/guests/$g.serial' append='on'/>
      <target port='0'/>
    </serial>
    <console type='pty'>
      <target type='serial' port='0'/>
    </console>
    <memballoon model='none'/>
  </devices>
</domain>
XML
}

# Which node runs guest $1 now (empty if none).
where() {
  local n
  for n in "${NODES[@]}"; do
    [[ "$(v "$n" domstate "$1" 2>/dev/null)" == running* ]] && { echo "$n"; return 0; }
  done
  return 0
}

start_guest() {
  local g=$1 spec node pages region pool disk
  spec="${GUEST_SPEC[$g]}"
  read -r node pages region pool <<<"$spec"
  local cur
  cur="$(where "$g")"
  # Running with the wanted dirtying settings: leave it be.
  local xml
  xml="$(v "$cur" dumpxml "$g" 2>/dev/null || true)"
  if [[ -n $cur && $xml == *"<cmdline>pages=$pages region=$region</cmdline>"* && $xml == *"<acpi/>"* && $xml == *"type='pty'"* ]]; then
    return 0
  fi
  local pool_dir
  if [[ $pool == shared ]]; then pool_dir="$LAB/shared"; else pool_dir="$(node_dir "$node")/local"; fi
  disk="$pool_dir/$g.img"
  [[ -f $disk ]] || truncate -s 16M "$disk"
  v "$node" pool-refresh "$pool" >/dev/null 2>&1 || true
  # Old definitions (a stopped guest, or one left after a migration) go first.
  local other
  for other in "${NODES[@]}"; do
    v "$other" destroy "$g" >/dev/null 2>&1 || true
    v "$other" undefine "$g" >/dev/null 2>&1 || true
  done
  mkdir -p "$LAB/guests"
  guest_xml "$g" "$pages" "$region" "$disk" >"$LAB/guests/$g.xml"
  v "$node" define "$LAB/guests/$g.xml" >/dev/null
  say "starting guest $g on node $node (pages=$pages region=$region, disk on $pool)"
  v "$node" start "$g" >/dev/null
}

up() {
  [[ $(id -u) == 0 ]] || die "the lab needs root (namespaces, bind mounts)"
  install_packages
  build_guest
  mkdir -p "$LAB/shared" "$LAB/guests"
  local n
  for n in "${NODES[@]}"; do
    prepare_node "$n"
    start_node "$n"
    define_pool "$n" shared "$LAB/shared"
    define_pool "$n" "local-$n" "$(node_dir "$n")/local"
  done
  local g
  for g in "${GUESTS[@]}"; do start_guest "$g"; done
  cluster_up
  start_sshd
  status
}

# Every guest running on its start node with its settings (restarting what differs).
reset() {
  local g node cur n
  for n in "${NODES[@]}"; do
    node_answers "$n" || start_node "$n"
  done
  for g in "${GUESTS[@]}"; do
    read -r node _ <<<"${GUEST_SPEC[$g]}"
    cur="$(where "$g")"
    for n in "${NODES[@]}"; do
      # Leftovers: the paused incoming side of a broken migration, or the
      # guest away from its start node.
      if [[ $cur != "$node" || $n != "$node" ]]; then
        v "$n" destroy "$g" >/dev/null 2>&1 || true
        v "$n" undefine "$g" >/dev/null 2>&1 || true
      fi
    done
    start_guest "$g"
  done
}

# An extra guest for the calibration grid: on node a, disk on the shared pool.
extra_guest() {
  local g=$1 memory=$2 pages=$3 region=$4
  [[ $g =~ ^[a-z0-9-]+$ ]] || die "guest names are lower-case letters, digits and dashes"
  remove_guest "$g"
  local disk="$LAB/shared/$g.img"
  [[ -f $disk ]] || truncate -s 16M "$disk"
  v a pool-refresh shared >/dev/null 2>&1 || true
  mkdir -p "$LAB/guests"
  : >"$LAB/guests/$g.serial"
  guest_xml "$g" "$pages" "$region" "$disk" "$memory" >"$LAB/guests/$g.xml"
  v a define "$LAB/guests/$g.xml" >/dev/null
  v a start "$g" >/dev/null
}

# A guest on node a whose writable disk is on a's local pool (local-a): it
# can only leave a by copying its disk (shared-nothing) or after a storage
# move (issue 9). Its disk and any copies on the local pools go with rm-guest.
local_guest() {
  local g=$1 pages=${2:-1} region=${3:-256}
  [[ $g =~ ^[a-z0-9-]+$ ]] || die "guest names are lower-case letters, digits and dashes"
  remove_guest "$g"
  local n
  for n in "${NODES[@]}"; do rm -f "$(node_dir "$n")/local/$g.img" "$LAB/shared/$g.img"; done
  local disk
  disk="$(node_dir a)/local/$g.img"
  truncate -s 16M "$disk"
  for n in "${NODES[@]}"; do v "$n" pool-refresh "local-$n" >/dev/null 2>&1 || true; done
  v a pool-refresh shared >/dev/null 2>&1 || true
  mkdir -p "$LAB/guests"
  : >"$LAB/guests/$g.serial"
  guest_xml "$g" "$pages" "$region" "$disk" 256 writable >"$LAB/guests/$g.xml"
  v a define "$LAB/guests/$g.xml" >/dev/null
  v a start "$g" >/dev/null
}

# A guest started on NODE with its disk on the shared pool or NODE's local
# pool (for recovering the VMs of a dead node, issue 9).
node_guest() {
  local n=$1 g=$2 pool=$3
  [[ $g =~ ^[a-z0-9-]+$ ]] || die "guest names are lower-case letters, digits and dashes"
  [[ $n == a || $n == b ]] || die "nodes are a and b"
  remove_guest "$g"
  local disk
  if [[ $pool == shared ]]; then disk="$LAB/shared/$g.img"; else disk="$(node_dir "$n")/local/$g.img"; fi
  [[ -f $disk ]] || truncate -s 16M "$disk"
  v "$n" pool-refresh "$([[ $pool == shared ]] && echo shared || echo "local-$n")" >/dev/null 2>&1 || true
  mkdir -p "$LAB/guests"
  : >"$LAB/guests/$g.serial"
  guest_xml "$g" 1 256 "$disk" >"$LAB/guests/$g.xml"
  v "$n" define "$LAB/guests/$g.xml" >/dev/null
  v "$n" start "$g" >/dev/null
}

# A node dies: its daemon and the QEMU processes of its guests are killed
# (SIGKILL). Refused while the Pacemaker guest runs there.
kill_node_all() {
  local n=$1 d pid f
  d="$(node_dir "$n")"
  [[ -f $d/run/libvirt/qemu/$HA_GUEST.pid ]] && kill -0 "$(cat "$d/run/libvirt/qemu/$HA_GUEST.pid")" 2>/dev/null &&
    die "the Pacemaker guest $HA_GUEST runs on node $n; not killing it"
  pid="$(daemon_pid "$n" || true)"
  [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$d/daemon.pid"
  local g p
  for f in "$d"/run/libvirt/qemu/*.pid; do
    [[ -f $f ]] || continue
    g="$(basename "$f" .pid)"
    p="$(cat "$f")"
    # Only that guest's QEMU (a stale pid file may name another process now).
    local cmd=""
    [[ -r /proc/$p/cmdline ]] && cmd="$(tr '\0' ' ' </proc/"$p"/cmdline)"
    if [[ $cmd == *"guest=$g,"* ]]; then
      kill -KILL "$p" 2>/dev/null || true
    fi
  done
  say "node $n killed (daemon and guests)"
}

remove_guest() {
  local n
  for n in "${NODES[@]}"; do
    v "$n" destroy "$1" >/dev/null 2>&1 || true
    v "$n" undefine "$1" >/dev/null 2>&1 || true
  done
}

down() {
  local n g
  stop_sshd
  cluster_down
  for n in "${NODES[@]}"; do
    if node_answers "$n"; then
      for g in "${GUESTS[@]}"; do v "$n" destroy "$g" >/dev/null 2>&1 || true; done
    fi
    stop_node "$n"
  done
  # QEMU processes outlive a killed daemon: end the lab's own.
  pkill -f "qemu-system-x86_64.*$LAB/guest/guest.bin" 2>/dev/null || true
}

# ---- Pacemaker + Corosync on top of the two libvirt nodes -----------------

node_name() { echo "vmshift-lab-$1"; }
node_addr() { [[ $1 == a ]] && echo 127.0.0.1 || echo 127.0.0.2; }
cluster_pid() {
  local f
  f="$(node_dir "$1")/cluster.pid"
  [[ -f $f ]] && kill -0 "$(cat "$f")" 2>/dev/null && cat "$f"
}
# Run a command inside node $1's cluster namespace.
on() {
  local pid
  pid="$(cluster_pid "$1")" || die "the cluster stack of node $1 is not running (tests/lab/lab.sh up)"
  nsenter -t "$pid" -m -u -- "${@:2}"
}

prepare_cluster() {
  local n=$1 d me other
  d="$(node_dir "$n")"
  mkdir -p "$d"/{etc/corosync/uidgid.d,etc/libqb,lib/corosync,log/corosync,run,tmp} /etc/libqb
  chmod 1777 "$d/tmp"
  # Both stacks share the host's network namespace: libqb's default abstract
  # sockets would collide, so each node gets file-system sockets (libqb puts
  # them in /tmp, which is private to the node).
  : >"$d/etc/libqb/force-filesystem-sockets"
  if [[ ! -d $d/lib/pacemaker/cib ]]; then
    mkdir -p "$d/lib/pacemaker" "$d/log/pacemaker"
    cp -a /var/lib/pacemaker/. "$d/lib/pacemaker/"
    chown hacluster:haclient "$d/log/pacemaker"
    chmod 2770 "$d/log/pacemaker"
  fi
  # Corosync takes the first nodelist entry whose address is local, and both
  # addresses are local here: each node lists itself first.
  me=$n
  [[ $n == a ]] && other=b || other=a
  cat >"$d/etc/corosync/corosync.conf" <<CONF
totem {
  version: 2
  cluster_name: vmshift-lab
  transport: knet
  crypto_cipher: none
  crypto_hash: none
  token: 3000
}
logging {
  to_stderr: no
  to_logfile: yes
  logfile: /var/log/corosync/corosync.log
  to_syslog: no
  timestamp: on
}
quorum {
  provider: corosync_votequorum
  two_node: 1
}
uidgid {
  uid: hacluster
  gid: haclient
}
nodelist {
  node {
    name: $(node_name "$me")
    nodeid: $([[ $me == a ]] && echo 1 || echo 2)
    ring0_addr: $(node_addr "$me")
  }
  node {
    name: $(node_name "$other")
    nodeid: $([[ $other == a ]] && echo 1 || echo 2)
    ring0_addr: $(node_addr "$other")
  }
}
CONF
  # The migration target's libvirt socket by node name (VirtualDomain's
  # remoteuri replaces %n with the target node's name).
  mkdir -p "$LAB/by-name/$(node_name "$n")" "$LAB/bin"
  ln -sfn "$(sock "$n")" "$LAB/by-name/$(node_name "$n")/libvirt-sock"
  cat >"$LAB/bin/on-$(node_name "$n")" <<SH
#!/bin/sh
# Runs a command on lab node $n (inside its namespace): vmshift's [pacemaker] command prefix.
pid="\$(cat '$d/cluster.pid' 2>/dev/null)" || { echo "lab node $n: cluster stack not running" >&2; exit 1; }
exec nsenter -t "\$pid" -m -u -- "\$@"
SH
  chmod +x "$LAB/bin/on-$(node_name "$n")"
}

cluster_answers() { on "$1" crm_mon -1 --output-as=xml >/dev/null 2>&1; }

start_cluster() {
  local n=$1 d
  d="$(node_dir "$n")"
  if cluster_pid "$n" >/dev/null; then
    return 0
  fi
  # Corosync finds itself by a local address: node b's is 127.0.0.2.
  ip -4 addr show dev lo | grep -q "inet $(node_addr "$n")/" || ip addr add "$(node_addr "$n")/32" dev lo
  prepare_cluster "$n"
  say "starting cluster stack on node $n ($(node_addr "$n"))"
  setsid unshare --mount --uts --propagation private bash -c '
    set -e
    d="$1"; n="$2"
    hostname "vmshift-lab-$n"
    mount --bind "$d/run" /run
    mount --bind "$d/tmp" /tmp
    for sub in etc/libvirt:/etc/libvirt etc/corosync:/etc/corosync etc/libqb:/etc/libqb lib/pacemaker:/var/lib/pacemaker lib/corosync:/var/lib/corosync log/pacemaker:/var/log/pacemaker log/corosync:/var/log/corosync; do
      src="$d/${sub%%:*}"; dst="${sub#*:}"
      mkdir -p "$dst"
      mount --bind "$src" "$dst"
    done
    for f in passwd group resolv.conf hosts hostname; do
      mount --bind "$d/etc-files/$f" "/etc/$f"
    done
    for fd in $(seq 3 63); do eval "exec $fd>&-" 2>/dev/null || true; done
    corosync -f & coro=$!
    for i in $(seq 1 100); do corosync-cfgtool -s >/dev/null 2>&1 && break; sleep 0.1; done
    pacemakerd & pcmk=$!
    stop() {
      kill -TERM "$pcmk" 2>/dev/null || true
      wait "$pcmk" 2>/dev/null || true
      kill -TERM "$coro" 2>/dev/null || true
      wait "$coro" 2>/dev/null || true
      exit 0
    }
    trap stop TERM INT
    while kill -0 "$pcmk" 2>/dev/null && kill -0 "$coro" 2>/dev/null; do wait -n || true; done
    stop
  ' lab "$d" "$n" >"$d/cluster.out" 2>&1 </dev/null &
  echo $! >"$d/cluster.pid"
}

stop_cluster() {
  local n=$1 pid i
  pid="$(cluster_pid "$n" || true)"
  [[ -n $pid ]] || return 0
  say "stopping cluster stack on node $n"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 900); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$(node_dir "$n")/cluster.pid"
}

# crm_mon's XML, from node $1.
crm_xml() { on "$1" crm_mon -1 --output-as=xml 2>/dev/null; }

wait_cluster() {
  local i x
  for i in $(seq 1 600); do
    x="$(crm_xml a || true)"
    if [[ $x == *'current_dc present="true"'* && $x == *'nodes_configured number="2"'* ]] &&
      [[ "$(grep -c 'online="true"' <<<"$x")" == 2 ]]; then
      return 0
    fi
    sleep 0.2
  done
  for n in "${NODES[@]}"; do
    tail -n 20 "$(node_dir "$n")/log/pacemaker/pacemaker.log" >&2 2>/dev/null || true
    cat "$(node_dir "$n")/cluster.out" >&2 || true
  done
  die "the Pacemaker cluster did not form (both nodes online with a DC) in 120 s"
}

ha_guest_xml() {
  local pages region
  read -r pages region <<<"$HA_SPEC"
  local disk="$LAB/shared/$HA_GUEST.img"
  [[ -f $disk ]] || truncate -s 16M "$disk"
  mkdir -p "$LAB/guests"
  guest_xml "$HA_GUEST" "$pages" "$region" "$disk" >"$LAB/guests/$HA_GUEST.xml"
}

configure_cluster() {
  ha_guest_xml
  on a crm_attribute --type crm_config --name stonith-enabled --update false >/dev/null
  on a crm_attribute --type rsc_defaults --name resource-stickiness --update 100 >/dev/null
  on a crm_attribute --type crm_config --name dc-deadtime --update 5s >/dev/null
  if ! on a crm_resource --resource "$HA_RESOURCE" --query-xml >/dev/null 2>&1; then
    say "defining Pacemaker resource $HA_RESOURCE (VirtualDomain, domain $HA_GUEST)"
    on a cibadmin --create --scope resources --xml-text "<primitive id='$HA_RESOURCE' class='ocf' provider='heartbeat' type='VirtualDomain'>
  <instance_attributes id='$HA_RESOURCE-ia'>
    <nvpair id='$HA_RESOURCE-config' name='config' value='$LAB/guests/$HA_GUEST.xml'/>
  </instance_attributes>
  <meta_attributes id='$HA_RESOURCE-meta'>
    <nvpair id='$HA_RESOURCE-allow-migrate' name='allow-migrate' value='true'/>
  </meta_attributes>
  <operations>
    <op id='$HA_RESOURCE-monitor' name='monitor' interval='10s' timeout='30s'/>
    <op id='$HA_RESOURCE-start' name='start' interval='0' timeout='90s'/>
    <op id='$HA_RESOURCE-stop' name='stop' interval='0' timeout='90s'/>
    <op id='$HA_RESOURCE-migrate_to' name='migrate_to' interval='0' timeout='180s'/>
    <op id='$HA_RESOURCE-migrate_from' name='migrate_from' interval='0' timeout='90s'/>
  </operations>
</primitive>" >/dev/null
  fi
  # hypervisor: each node's own daemon (its namespace binds /run/libvirt);
  # remoteuri: the target's socket by node name; migration data over
  # loopback only; force_stop: the tiny guest ignores ACPI shutdown.
  local name value
  while read -r name value; do
    on a crm_resource --resource "$HA_RESOURCE" --set-parameter "$name" --parameter-value "$value" >/dev/null
  done <<PARAMS
hypervisor qemu:///system
remoteuri qemu+unix:///system?socket=$LAB/by-name/%n/libvirt-sock
migrateuri tcp://127.0.0.1
migrate_options --listen-address 127.0.0.1
force_stop true
PARAMS
}

# The Pacemaker guest running, no constraint left by a move, both nodes online.
ha_reset() {
  local n i x
  # A move still in its transition first ends: a constraint cleared
  # half-way through makes Pacemaker restart the guest cold.
  on a timeout 120 crm_resource --wait >/dev/null 2>&1 || true
  # Constraints a lab test added (ids vmshift-test-*), left by a test killed
  # before its guard deleted them.
  on a cibadmin --delete-all --force --xpath "//constraints/*[starts-with(@id,'vmshift-test-')]" >/dev/null 2>&1 || true
  for n in "${NODES[@]}"; do
    on a crm_attribute --node "$(node_name "$n")" --name standby --delete >/dev/null 2>&1 || true
  done
  on a crm_attribute --type crm_config --name maintenance-mode --delete >/dev/null 2>&1 || true
  on a crm_resource --resource "$HA_RESOURCE" --clear >/dev/null 2>&1 || true
  on a crm_resource --resource "$HA_RESOURCE" --meta --delete-parameter target-role >/dev/null 2>&1 || true
  on a crm_resource --resource "$HA_RESOURCE" --cleanup >/dev/null 2>&1 || true
  for i in $(seq 1 600); do
    x="$(crm_xml a || true)"
    if [[ $x == *"<resource id=\"$HA_RESOURCE\""*'role="Started"'* ]]; then
      [[ -n "$(where "$HA_GUEST")" ]] && return 0
    fi
    sleep 0.2
  done
  die "resource $HA_RESOURCE did not start in 120 s: $(on a crm_mon -1 2>&1 | tail -n 20)"
}

# The Pacemaker guest stopped through Pacemaker (a quiet lab for calibration).
ha_stop() {
  local i
  on a crm_resource --resource "$HA_RESOURCE" --meta --set-parameter target-role --parameter-value Stopped >/dev/null
  for i in $(seq 1 600); do
    [[ -z "$(where "$HA_GUEST")" ]] && return 0
    sleep 0.2
  done
  die "resource $HA_RESOURCE did not stop in 120 s"
}

cluster_up() {
  local n
  for n in "${NODES[@]}"; do start_cluster "$n"; done
  wait_cluster
  configure_cluster
  ha_reset
}

cluster_down() {
  local n
  # Stopping node b's stack first moves the guest to a; stopping a stops it.
  for n in b a; do stop_cluster "$n"; done
  remove_guest "$HA_GUEST"
}

# ---- sshd on 127.0.0.1:2222 for qemu+ssh:// -------------------------------

SSH_PORT=2222
ssh_pid() {
  local f="$LAB/ssh/sshd.pid"
  [[ -f $f ]] && kill -0 "$(cat "$f")" 2>/dev/null && cat "$f"
}

start_sshd() {
  ssh_pid >/dev/null && return 0
  local d="$LAB/ssh"
  mkdir -p "$d" /run/sshd ~/.ssh
  chmod 700 ~/.ssh
  [[ -f $d/host_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -f "$d/host_ed25519"
  # The key root's ssh offers by default logs in (no passphrase, no prompt).
  [[ -f ~/.ssh/id_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -f ~/.ssh/id_ed25519
  cp ~/.ssh/id_ed25519.pub "$d/authorized_keys"
  cat >"$d/sshd_config" <<CONF
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $d/host_ed25519
PidFile $d/sshd.pid
AuthorizedKeysFile $d/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
CONF
  say "starting sshd on 127.0.0.1:$SSH_PORT"
  /usr/sbin/sshd -f "$d/sshd_config" -E "$d/sshd.log" 3>&- || die "sshd did not start: $(tail -n 5 "$d/sshd.log" 2>/dev/null)"
  local i
  for i in $(seq 1 50); do
    ssh_pid >/dev/null && return 0
    sleep 0.1
  done
  die "sshd did not start: $(tail -n 5 "$d/sshd.log" 2>/dev/null)"
}

stop_sshd() {
  local pid
  pid="$(ssh_pid || true)"
  [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null
  rm -f "$LAB/ssh/sshd.pid"
}

status() {
  local n
  for n in "${NODES[@]}"; do
    if node_answers "$n"; then
      echo "node $n: up  $(uri "$n")"
      v "$n" list --all | sed 's/^/  /'
    else
      echo "node $n: down"
    fi
  done
  if cluster_pid a >/dev/null; then
    echo "pacemaker (from node a):"
    on a crm_mon -1 2>&1 | sed 's/^/  /'
  else
    echo "pacemaker: down"
  fi
}

env_exports() {
  echo "export VMSHIFT_LAB_DIR='$LAB'"
  echo "export VMSHIFT_LAB_ON_A='$LAB/bin/on-vmshift-lab-a'"
  echo "export VMSHIFT_LAB_ON_B='$LAB/bin/on-vmshift-lab-b'"
  echo "export VMSHIFT_LAB_SSH_PORT='$SSH_PORT'"
  echo "export VMSHIFT_LAB_SSH_URI='qemu+ssh://root@127.0.0.1:$SSH_PORT/system?socket=$(sock a)&proxy=netcat'"
  echo "export VMSHIFT_LAB_URI_A='$(uri a)'"
  echo "export VMSHIFT_LAB_URI_B='$(uri b)'"
}

case "${1:-}" in
  install) install_packages ;;
  up) up ;;
  down) down ;;
  status) status ;;
  env) env_exports ;;
  reset) reset ;;
  stop-node) stop_node "${2:?node}" ;;
  start-node) start_node "${2:?node}" ;;
  guest) extra_guest "${2:?name}" "${3:?memory MiB}" "${4:?pages per ms}" "${5:?region pages}" ;;
  rm-guest) remove_guest "${2:?name}" ;;
  local-guest) local_guest "${2:?name}" "${3:-1}" "${4:-256}" ;;
  node-guest) node_guest "${2:?node}" "${3:?name}" "${4:?shared|local}" ;;
  kill-node-all) kill_node_all "${2:?node}" ;;
  ha-reset) ha_reset ;;
  ha-stop) ha_stop ;;
  on) on "${2:?node}" "${@:3}" ;;
  kill-node) pid="$(daemon_pid "${2:?node}" || true)"; [[ -n $pid ]] && kill -KILL "$pid"; rm -f "$(node_dir "$2")/daemon.pid" ;;
  *) echo "usage: $0 install|up|down|status|env|reset|ha-reset|ha-stop|on N CMD...|guest NAME MIB PAGES REGION|rm-guest NAME|stop-node N|start-node N|kill-node N" >&2; exit 2 ;;
esac
