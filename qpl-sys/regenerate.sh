#!/usr/bin/env bash
# Regenerates qpl-sys/src/bindings.rs from the QPL headers that qpl-sys's build script finds
# (QPL_DIR, QPL_SOURCE or pkg-config; see docs/qpl.md), with the bindgen pinned in
# qpl-sys/Cargo.toml. Needs libclang (Debian: libclang-dev).
#   QPL_DIR=/path/to/qpl qpl-sys/regenerate.sh          write the file
#   QPL_DIR=/path/to/qpl qpl-sys/regenerate.sh --check  compare only
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --quiet -p qpl-sys --features qpl --example regenerate -- "$@"
