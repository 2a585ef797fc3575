#!/usr/bin/env bash
# Where a verification's time goes: perf over the release server while wrk drives one kind of
# request, the top symbols per thread and the threads' share of samples.
#   bash benches/profile.sh [department|operator|warm] [seconds, default 10]
# department: cold POST /v1/verify with a purpose (a durable use record each), cache off;
# operator:   the same without a purpose (no use record);
# warm:       a department's verifications of 16 licences, signature cache on.
# Leaves target/profile-<kind>.data for `perf report -i`; CALLS=1 records call graphs (DWARF,
# slow to report) for a flame graph.
set -euo pipefail
cd "$(dirname "$0")/.."
KIND=${1:-department}
SECONDS_PER_RUN=${2:-10}
CONNECTIONS=64
THREADS=1
PURPOSE='service_item=220100-FOOD-001&use_cause=%E6%A0%B8%E9%AA%8C'
source benches/common.sh
command -v perf >/dev/null || { echo "perf is not installed" >&2; exit 1; }

case "$KIND" in
  department) args=(--signature-cache 0 --prepared-cache 0); token=demo-verifier; path="/v1/verify?$PURPOSE" ;;
  operator) args=(--signature-cache 0 --prepared-cache 0); token=demo-operator; path=/v1/verify ;;
  warm) args=(); token=demo-verifier; path="/v1/verify?$PURPOSE" ;;
  *) echo "department, operator or warm" >&2; exit 2 ;;
esac
start_server "${args[@]}"
./target/release/examples/load_fixtures "$url" 4096 64 "$work" 2>/dev/null
bodies="$work/licences.jsonl"
[ "$KIND" = warm ] && { head -n 16 "$bodies" > "$work/few.jsonl"; bodies="$work/few.jsonl"; }
data="target/profile-$KIND.data"
# perf starts a second into the load and stops a second before its end.
(sleep 1; perf record -F 999 ${CALLS:+-g --call-graph dwarf,16384} -p "$server" -o "$data" -- sleep $((SECONDS_PER_RUN - 2)) >/dev/null 2>&1) &
profiler=$!
run "$KIND" "$token" "$bodies" "$path" 1
wait "$profiler" || true
stop_server
report() { perf report -i "$data" --no-children -g none --stdio "$@" 2>/dev/null | grep -E '^ +[0-9]' | sed 's/ \+$//' | cut -c1-160; }
echo "--- samples by thread"
report --sort comm | head -8
echo "--- top symbols (self) by thread"
report --sort comm,dso,symbol | head -${TOP:-40}
