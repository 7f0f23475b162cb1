#!/usr/bin/env bash
# The whole test suite, on a fresh Debian 12 machine: installs what the tests
# need (Debian packages), brings up the two-node libvirt lab, and runs every
# test, the libvirt ones included. Used by CI (.ci/run).
#
# VMSHIFT_LAB=skip skips the lab (its tests then say loudly that they were
# skipped); everything else still runs.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# tmux for the end-to-end tests; the lab's packages (libvirt-dev and
# pkg-config are also needed to build the libvirt backend).
missing=()
for p in tmux; do
  [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" == "install ok installed" ]] || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "test.sh: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
$sudo bash tests/lab/lab.sh install

if [[ "${VMSHIFT_LAB:-}" != "skip" ]]; then
  $sudo bash tests/lab/lab.sh up
  trap '$sudo bash tests/lab/lab.sh down || true' EXIT
  # The lab's sshd (127.0.0.1:2222) for the qemu+ssh:// tests.
  eval "$($sudo bash tests/lab/lab.sh env)"
  export VMSHIFT_LAB_SSH=1
else
  echo "test.sh: VMSHIFT_LAB=skip — the libvirt lab tests will be SKIPPED"
fi

cargo test --locked --all-targets --features libvirt
