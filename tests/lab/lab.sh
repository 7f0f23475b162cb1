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
PACKAGES=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-dev qemu-system-x86 pkg-config nasm)

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
  apt-get install -y -qq --no-install-recommends --allow-downgrades "${missing[@]}" "$utils" >/dev/null
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
    exec libvirtd --config /etc/libvirt/libvirtd.conf --pid-file /run/libvirt/libvirtd.pid
  ' lab "$d" "$n" >"$d/daemon.out" 2>&1 </dev/null &
  echo $! >"$d/daemon.pid"
  local i
  for i in $(seq 1 200); do
    node_answers "$n" && return 0
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
  local g=$1 pages=$2 region=$3 disk=$4 memory=${5:-256} domtype=qemu
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
      <target dev='vda' bus='virtio'/>
      <readonly/>
    </disk>
    <serial type='file'>
      <source path='$LAB/guests/$g.serial' append='on'/>
      <target port='0'/>
    </serial>
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
  if [[ -n $cur ]] && [[ "$(v "$cur" dumpxml "$g" 2>/dev/null)" == *"<cmdline>pages=$pages region=$region</cmdline>"* ]]; then
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

remove_guest() {
  local n
  for n in "${NODES[@]}"; do
    v "$n" destroy "$1" >/dev/null 2>&1 || true
    v "$n" undefine "$1" >/dev/null 2>&1 || true
  done
}

down() {
  local n g
  for n in "${NODES[@]}"; do
    if node_answers "$n"; then
      for g in "${GUESTS[@]}"; do v "$n" destroy "$g" >/dev/null 2>&1 || true; done
    fi
    stop_node "$n"
  done
  # QEMU processes outlive a killed daemon: end the lab's own.
  pkill -f "qemu-system-x86_64.*$LAB/guest/guest.bin" 2>/dev/null || true
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
}

env_exports() {
  echo "export VMSHIFT_LAB_DIR='$LAB'"
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
  kill-node) pid="$(daemon_pid "${2:?node}" || true)"; [[ -n $pid ]] && kill -KILL "$pid"; rm -f "$(node_dir "$2")/daemon.pid" ;;
  *) echo "usage: $0 install|up|down|status|env|reset|guest NAME MIB PAGES REGION|rm-guest NAME|stop-node N|start-node N|kill-node N" >&2; exit 2 ;;
esac
