#!/usr/bin/env bash
# Builds the Debian package of vmshift with the libvirt backend
# (README: "Installing on a jump host"): target/debian/vmshift_VERSION-1_ARCH.deb.
#
# cargo-deb packs the files listed in Cargo.toml ([package.metadata.deb]);
# it cannot run a step after the build, so this script builds the binary,
# has it write its man pages (clap_mangen) and shell completions
# (clap_complete) from its own clap definitions into target/assets/, then
# runs `cargo deb --no-build`.
#
# Needs: cargo-deb (`cargo install cargo-deb --locked`), libvirt-dev and
# pkg-config (to build the libvirt backend), dpkg-dev (dpkg-shlibdeps finds
# the runtime dependencies).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deb --version >/dev/null 2>&1; then
  echo "package.sh: cargo-deb is missing; install it with: cargo install cargo-deb --locked" >&2
  exit 1
fi

cargo build --release --locked --features libvirt

target_dir="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
bin="$target_dir/release/vmshift"

# The paths Cargo.toml's assets name (relative to this checkout).
assets=target/assets
rm -rf "$assets"
mkdir -p "$assets/completions"
"$bin" man "$assets/man"
"$bin" completions bash >"$assets/completions/vmshift.bash"
"$bin" completions zsh >"$assets/completions/_vmshift"
"$bin" completions fish >"$assets/completions/vmshift.fish"

cargo deb --no-build --locked
