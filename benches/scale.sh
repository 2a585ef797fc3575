#!/usr/bin/env bash
# How a node holds up as its data grows: grows a demo node by bulk issuance to 10^4, 10^5, …
# licences and, at each size, measures what users feel.
#   bash benches/scale.sh [--backend sled|postgres] [largest power of ten, default 5]
# (6 means 10^6 licences: about 15 minutes on sled and an hour on PostgreSQL on 2 cores.)
# Per size it prints: bulk issuance (POST /v1/licences/batch, 1,000 per request, 4 in flight)
# while growing to that size; single issuance, cold verification by a department (signature
# cache off, durable use record) and lookups by id and by holder (wrk, 64 connections); the
# inclusion-proof latency (mean of 50 sequential requests); RSS after the load; restart time to
# listening and RSS after the restart; the data's size on disk (sled folder, or
# pg_database_size) and bytes per licence. Every licence has its own holder.
set -euo pipefail
cd "$(dirname "$0")/.."
BACKEND=sled
if [ "${1:-}" = "--backend" ]; then BACKEND=${2:?--backend sled or postgres}; shift 2; fi
[ "$BACKEND" = sled ] || [ "$BACKEND" = postgres ] || { echo "--backend sled or postgres" >&2; exit 2; }
MAX=${1:-5}
[ "$MAX" -ge 4 ] 2>/dev/null || { echo "the largest power of ten is 4 or more" >&2; exit 2; }
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}
PURPOSE='service_item=220100-FOOD-001&use_cause=%E6%A0%B8%E9%AA%8C'
LOOKUP=/v1/licence-types/11100000000013338W032/lookup
FIXTURES=1024
source benches/common.sh

if [ "$BACKEND" = postgres ]; then use_postgres; else use_sled; fi
start_server --signature-cache 0 --prepared-cache 0
./target/release/examples/load_fixtures "$url" "$FIXTURES" 64 "$work" 2>/dev/null
printf '%s\n' "$issue_body" > "$work/issue.jsonl"
have=$FIXTURES

data_bytes() {
  if [ "$BACKEND" = postgres ]; then
    "$pg/psql" -X -q -A -t -h 127.0.0.1 -p "$pg_port" -U postgres -d "bench$databases" \
      -c 'SELECT pg_database_size(current_database())'
  else
    du -sb "$work/data" | cut -f1
  fi
}
licence_count() { # of the stopped node (sled) or the database: `zhengyin store stats`
  if [ "$BACKEND" = postgres ]; then
    "$pg/psql" -X -q -A -t -h 127.0.0.1 -p "$pg_port" -U postgres -d "bench$databases" -c 'SELECT count(*) FROM licences'
  else
    ./target/release/zhengyin store stats --data-dir "$work/data" | awk '$1 == "licences" {print $2}'
  fi
}
rss_mb() { echo $(( $(ps -o rss= -p "$server") / 1024 )); }
proof_ms() { # mean latency of inclusion proofs of spread-out entries at the current size
  local size
  size=$(curl -s -H 'authorization: Bearer demo-auditor' "$url/v1/log/checkpoint" | sed -n 2p)
  for i in $(seq 1 50); do
    curl -s -o /dev/null -w '%{time_total}\n' -H 'authorization: Bearer demo-auditor' \
      "$url/v1/log/proof/inclusion?index=$(( (i * 7919) % size ))&size=$size"
  done | awk '{s += $1} END {printf "%.2f", s / NR * 1000}'
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); backend $BACKEND;" \
  "wrk ($THREADS thread, $CONNECTIONS conns, ${SECONDS_PER_RUN}s) beside the server"
rows=()
for power in $(seq 4 "$MAX"); do
  target=$((10 ** power))
  [ "$have" -lt "$target" ] || continue
  read -r bulk _ bulk_p99 < <(./target/release/examples/bulk_issue "$url" $((target - have)) 1000 4 | sed -n 's/^RESULT //p')
  run "issue@10^$power" demo-authority-ed25519 "$work/issue.jsonl" /v1/licences 0
  issue="$(printf '%.0f' "$rps") ($p99)"
  run "verify@10^$power" demo-verifier "$work/licences.jsonl" "/v1/verify?$PURPOSE" 1
  verify="$(printf '%.0f' "$rps") ($p99)"
  run "lookup-id@10^$power" demo-verifier "$work/lookups-id.jsonl" "$LOOKUP" 0
  lookup_id="$(printf '%.0f' "$rps") ($p99)"
  run "lookup-holder@10^$power" demo-verifier "$work/lookups-holder.jsonl" "$LOOKUP" 0
  lookup_holder="$(printf '%.0f' "$rps") ($p99)"
  proof=$(proof_ms)
  rss_load=$(rss_mb)
  stop_server
  # Every licence counts: the bulk's, the fixtures' and the single issuance run's.
  have=$(licence_count)
  bytes=$(data_bytes)
  started=$(date +%s.%N)
  start_server --signature-cache 0 --prepared-cache 0
  restart=$(awk "BEGIN{printf \"%.2f\", $(date +%s.%N) - $started}")
  rss_restart=$(rss_mb)
  rows+=("$(printf '| %s | %s (%s) | %s | %s | %s | %s | %s ms | %s / %s MB | %s s | %s MB | %s |' \
    "$have" "$bulk" "$bulk_p99" "$issue" "$verify" "$lookup_id" "$lookup_holder" "$proof" "$rss_load" \
    "$rss_restart" "$restart" "$(( bytes / 1000000 ))" "$(( bytes / have ))")")
done
stop_server
echo
echo "Where the bytes go at the largest size (zhengyin store stats):"
if [ "$BACKEND" = postgres ]; then
  ./target/release/zhengyin store stats --database "postgres://postgres@127.0.0.1:$pg_port/bench$databases"
else
  ./target/release/zhengyin store stats --data-dir "$work/data"
fi
echo
echo "| licences | bulk /s (batch p99 ms) | issue /s (p99 ms) | verify /s (p99) | lookup id /s (p99) | lookup holder /s (p99) | proof | RSS load / restart | restart | data | bytes/licence |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
