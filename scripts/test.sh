#!/usr/bin/env bash
# The whole test suite, on a fresh Debian 12 machine: installs what the tests
# need (Debian packages), then runs every test. Used by CI (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(tmux)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "test.sh: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cargo test --locked --all-targets
