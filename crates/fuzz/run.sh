#!/usr/bin/env bash
# Runs each fuzz target for a while (default 60 s) from the seed corpus. Needs a nightly
# toolchain and cargo-fuzz (installed here if missing: `cargo install cargo-fuzz`).
#   bash crates/fuzz/run.sh [seconds per target]
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_PER_TARGET=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
for target in ses_der ofd; do
  mkdir -p "corpus/$target"
  echo "fuzzing $target for ${SECONDS_PER_TARGET}s"
  cargo +nightly fuzz run --fuzz-dir . "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -print_final_stats=1 2>&1 | grep -E "^(stat::|Done|INFO: Loaded|==|SUMMARY|.*panicked)" || true
  [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "fuzz target $target failed" >&2; exit 1; }
done
