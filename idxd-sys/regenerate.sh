#!/usr/bin/env bash
# Regenerates idxd-sys/src/bindings.rs from the system's linux/idxd.h with the bindgen version
# pinned in idxd-sys/Cargo.toml. Needs libclang (Debian: libclang-dev) and linux-libc-dev.
#   idxd-sys/regenerate.sh            write the file
#   idxd-sys/regenerate.sh --check    compare only
#   IDXD_HEADER=/path/to/idxd.h idxd-sys/regenerate.sh   use another header
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --quiet -p idxd-sys --example regenerate -- "$@"
