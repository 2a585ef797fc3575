#!/usr/bin/env bash
# Every test, on a fresh machine: installs what the tests need beyond Rust (scripts/test-deps.sh),
# runs the whole workspace's tests (end-to-end servers on the embedded store; the PostgreSQL
# contract and cluster tests start throwaway PostgreSQL servers of their own), then the
# end-to-end tests again with every server on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/test-deps.sh
cargo test --workspace --locked
ZHENGYIN_TEST_BACKEND=postgres cargo test --locked -p zhengyin-suite --tests
