#!/usr/bin/env bash
# CI: builds the Debian package from this checkout (scripts/package.sh),
# installs it with apt, and checks what an operator relies on:
#   - the installed `vmshift --version` names the libvirt backend;
#   - `man vmshift` (and a command's page) renders;
#   - the bash completion completes a command, an option and VM names;
#   - `vmshift status --connect test:///default` lists libvirt's test
#     driver's domain ("test");
# then purges it and checks that nothing it installed is left.
# Needs root (or sudo); installs what it needs (cargo-deb, man-db,
# bash-completion, libvirt-dev, pkg-config, dpkg-dev) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
fail() {
  echo "package-check: FAILED: $*" >&2
  exit 1
}
step() { echo "package-check: $*"; }

missing=()
for p in man-db bash-completion libvirt-dev pkg-config dpkg-dev; do
  [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" == "install ok installed" ]] || missing+=("$p")
done
if ((${#missing[@]})); then
  step "installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! cargo deb --version >/dev/null 2>&1; then
  step "installing cargo-deb"
  cargo install cargo-deb --locked
fi

# A vmshift package left by an earlier run would hide what this one does.
if dpkg-query -W -f='${Status}' vmshift 2>/dev/null | grep -q installed; then
  step "purging the vmshift package already installed"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get purge -y -qq vmshift >/dev/null
fi

step "building the package"
target_dir="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
[[ -n "$target_dir" ]] || fail "cannot find cargo's target dir"
rm -f "$target_dir"/debian/vmshift_*.deb
./scripts/package.sh
debs=("$target_dir"/debian/vmshift_*.deb)
((${#debs[@]} == 1)) && [[ -f "${debs[0]}" ]] || fail "expected one $target_dir/debian/vmshift_*.deb, found: ${debs[*]}"
deb="${debs[0]}"

version="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"name":"vmshift","version":"\([^"]*\)".*/\1/p')"
[[ -n "$version" ]] || fail "cannot read the crate's version"
deb_version="$(dpkg-deb -f "$deb" Version)"
[[ "$deb_version" == "$version" || "$deb_version" == "$version"-* ]] ||
  fail "the package's version $deb_version does not follow the crate's $version"
depends="$(dpkg-deb -f "$deb" Depends)"
step "$(basename "$deb"): $(du -k "$deb" | cut -f1) KiB; Depends: $depends"
[[ "$depends" == *libvirt0* ]] || fail "the package does not depend on libvirt0 (Depends: $depends)"
for lab in libvirt-daemon qemu openssh nasm tmux; do
  [[ "$depends" != *"$lab"* ]] || fail "the package depends on $lab, a lab package (Depends: $depends)"
done

step "installing $deb"
# apt-get takes a file for a package name when it starts with / or ./ .
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$deb" >/dev/null
installed=1
home="$(mktemp -d)"
cleanup() {
  if ((installed)); then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get purge -y -qq vmshift >/dev/null || true
  fi
  rm -rf "$home"
}
trap cleanup EXIT

# The installed vmshift, as a user with no config of their own.
run() { env -u XDG_CONFIG_HOME -u XDG_STATE_HOME -u VMSHIFT_CONFIG -u VMSHIFT_STATE_DIR HOME="$home" "$@"; }
[[ "$(command -v vmshift)" == /usr/bin/vmshift ]] || fail "vmshift on PATH is $(command -v vmshift), not /usr/bin/vmshift"

step "vmshift --version"
v="$(run vmshift --version)"
echo "$v" | sed 's/^/    /'
grep -q "^vmshift $version\$" <<<"$v" || fail "--version does not start with 'vmshift $version'"
grep -q "^backends: simulator, libvirt (libvirt library [0-9]" <<<"$v" || fail "--version does not name the libvirt backend and its library"
grep -q "^config: *$home/.config/vmshift/config.toml" <<<"$v" || fail "--version does not say where the config is read"
grep -q "^state: *$home/.local/state/vmshift" <<<"$v" || fail "--version does not say where the state is kept"

step "man vmshift"
page="$(MANPAGER=cat MANWIDTH=80 man -P cat vmshift 2>&1)" || fail "man vmshift: $page"
grep -q "live-migrate VMs" <<<"$page" || fail "man vmshift does not render the description"
grep -q "vmshift-migrate(1)" <<<"$page" || fail "man vmshift does not list vmshift-migrate(1)"
page="$(man -P cat vmshift-migrate 2>&1)" || fail "man vmshift-migrate: $page"
grep -q -- "--max-downtime" <<<"$page" || fail "man vmshift-migrate does not render --max-downtime"

step "bash completion"
run bash --norc --noprofile -c '

  source /usr/share/bash-completion/bash_completion
  source /usr/share/bash-completion/completions/vmshift
  func="$(complete -p vmshift | sed -n "s/.* -F \([^ ]*\) .*/\1/p")"
  [[ -n "$func" ]] || { echo "no completion function for vmshift" >&2; exit 1; }
  complete_line() { # WORDS...: completes the last word
    COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()
    "$func" vmshift "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    echo "    ${COMP_WORDS[*]}<Tab> -> ${COMPREPLY[*]:-(nothing)}"
  }
  complete_line vmshift mig
  [[ "${COMPREPLY[*]}" == migrate ]] || { echo "\"vmshift mig\" does not complete to migrate" >&2; exit 1; }
  complete_line vmshift migrate test --max-d
  [[ "${COMPREPLY[*]}" == --max-downtime ]] || { echo "\"vmshift migrate test --max-d\" does not complete to --max-downtime" >&2; exit 1; }
  complete_line vmshift --connect test:///default migrate ""
  [[ "${COMPREPLY[*]}" == test ]] || { echo "the VM of \"vmshift --connect test:///default migrate\" is not completed to test" >&2; exit 1; }
  complete_line vmshift --connect test:///default migrate te
  [[ "${COMPREPLY[*]}" == test ]] || { echo "the VM of \"vmshift --connect test:///default migrate te\" is not completed to test" >&2; exit 1; }
' || fail "the bash completion"

step "vmshift status --connect test:///default"
s="$(run vmshift status --connect test:///default)" || fail "vmshift status --connect test:///default: $s"
awk '/^VMS/ { vms = 1; next } vms && $1 == "test" && $3 == "running" { found = 1 } END { exit !found }' <<<"$s" ||
  fail "vmshift status --connect test:///default does not list the running domain test: $s"

step "purging the package"
mapfile -t files < <(dpkg-query -L vmshift)
DEBIAN_FRONTEND=noninteractive $sudo apt-get purge -y -qq vmshift >/dev/null
installed=0
! dpkg-query -W -f='${Status}' vmshift 2>/dev/null | grep -q installed || fail "vmshift is still installed after the purge"
left=()
for f in "${files[@]}"; do
  [[ -e "$f" || -L "$f" ]] || continue
  # Directories other packages own too (/usr/bin, /usr/share/man/man1...) stay.
  if [[ -d "$f" && ! -L "$f" ]] && dpkg-query -S "$f" >/dev/null 2>&1; then
    continue
  fi
  left+=("$f")
done
((${#left[@]} == 0)) || fail "left after the purge: ${left[*]}"
hash -r
! command -v vmshift >/dev/null || fail "vmshift is still on PATH after the purge: $(command -v vmshift)"
step "passed (${#files[@]} paths installed, none left; the user's own config and state are not the package's)"
