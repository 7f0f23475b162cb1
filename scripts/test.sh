#!/usr/bin/env bash
# The whole test suite, on a fresh Debian 12 machine: installs what the tests
# need (Debian packages), brings up the two-node libvirt lab, and runs every
# test, the libvirt ones included. Used by CI (.ci/run).
#
# Lab tests are marked `#[ignore = "lab: ..."]` in any tests/*.rs (see the
# top of tests/lab.rs): the first run reports them as ignored with that
# reason, then this script runs exactly those against the lab and fails
# unless every one of them passed, naming the ones that did not.
# VMSHIFT_LAB=skip leaves them ignored (each listed with its reason) and
# runs everything else.
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

logs="$(mktemp -d)"
cleanup() { rm -rf "$logs"; }
trap cleanup EXIT

skip=0
if [[ "${VMSHIFT_LAB:-}" == "skip" ]]; then
  skip=1
  echo "test.sh: VMSHIFT_LAB=skip — the libvirt lab tests will NOT run (reported as ignored)"
else
  $sudo bash tests/lab/lab.sh up
  trap '$sudo bash tests/lab/lab.sh down || true; cleanup' EXIT
  # The lab's sshd (127.0.0.1:2222) for the qemu+ssh:// tests.
  eval "$($sudo bash tests/lab/lab.sh env)"
  export VMSHIFT_LAB_SSH=1
fi

# 1. Everything; lab tests (and benchmarks such as the calibration grid)
#    are reported as ignored with their reason.
cargo test --locked --all-targets --features libvirt 2>&1 | tee "$logs/all.txt"

# The lab tests of this build: "test NAME ... ignored, lab: WHY".
mapfile -t lab_tests < <(sed -n 's/^test \(.*\) \.\.\. ignored, lab:.*$/\1/p' "$logs/all.txt" | sort -u)
if ((${#lab_tests[@]} == 0)); then
  echo "test.sh: FAILED: no test was reported as 'ignored, lab: ...'; the lab tests were not built or lost their #[ignore = \"lab: ...\"] (see the top of tests/lab.rs)" >&2
  exit 1
fi

if ((skip)); then
  echo
  echo "test.sh: VMSHIFT_LAB=skip — ${#lab_tests[@]} lab tests were NOT run (ignored above, with their reason):"
  printf '  %s\n' "${lab_tests[@]}"
  exit 0
fi

# 2. Exactly the lab tests, against the lab; every one must pass.
echo
echo "test.sh: running the ${#lab_tests[@]} lab tests against the lab"
status=0
cargo test --locked --tests --features libvirt --no-fail-fast -- --ignored --exact "${lab_tests[@]}" \
  2>&1 | tee "$logs/lab.txt" || status=$?
mapfile -t passed < <(sed -n 's/^test \(.*\) \.\.\. ok$/\1/p' "$logs/lab.txt" | sort -u)
mapfile -t not_passed < <(comm -23 <(printf '%s\n' "${lab_tests[@]}") <(printf '%s\n' "${passed[@]}"))
if ((${#not_passed[@]})); then
  echo
  echo "test.sh: FAILED: ${#not_passed[@]} of ${#lab_tests[@]} lab tests did not run or did not pass:" >&2
  printf '  %s\n' "${not_passed[@]}" >&2
  exit 1
fi
if ((status != 0)); then
  echo "test.sh: FAILED: the lab run ended with status $status (see above)" >&2
  exit "$status"
fi
echo
echo "test.sh: all ${#lab_tests[@]} lab tests ran against the lab and passed"
