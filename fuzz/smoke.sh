#!/usr/bin/env bash
# A short, time-boxed run of every fuzz target from its committed seeds (CI's fuzz step).
# Usage: fuzz/smoke.sh [SECONDS_PER_TARGET]   (default 15)
# Prints the executions per target; fails on the first crash, panic, leak or timeout (the
# input is left in fuzz/artifacts/<target>/). Needs a nightly toolchain and cargo-fuzz.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-15}
# No sanitizer: the code under test is safe Rust and the C codecs are tested upstream; the
# build is the expensive part of a short run. The long run (README.md) uses AddressSanitizer.
flags=(-O -s none)
cargo +nightly fuzz build "${flags[@]}"
for t in $(cargo +nightly fuzz list); do
  mkdir -p "corpus/$t"
  log=$(mktemp)
  if ! cargo +nightly fuzz run "${flags[@]}" "$t" "corpus/$t" "seeds/$t" -- \
      -max_total_time="$secs" -rss_limit_mb=2048 -timeout=20 >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz: $t FAILED (input in fuzz/artifacts/$t/)"
    rm -f "$log"
    exit 1
  fi
  runs=$(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -1)
  echo "fuzz: $t: ${runs:-?}"
  rm -f "$log"
done
