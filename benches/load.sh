#!/usr/bin/env bash
# HTTP load against a really started server, on loopback only, bounded in time.
#   bash benches/load.sh [seconds per run, default 10] [connections, default 64]
#   bash benches/load.sh --backend postgres [seconds] [connections]
# With --backend postgres it starts its own throwaway PostgreSQL (initdb on a free loopback
# port, in a temporary folder, stopped at the end) and prints the embedded store and PostgreSQL
# side by side, with one frontend and with two (two wrk processes, half the connections each):
# issuance, cold verification as a department and as an operator, lookups by id and by holder.
# Installs wrk (Debian package) if missing, builds the release binary and examples, then:
#   0. measures the bare Ed25519 rate of this machine (verify_strict and the batch equation,
#      2 threads): the floor everything else is compared with;
#   1. cold:  POST /v1/verify over 4096 distinct licences, signature cache off (every request
#             checks its signature); then the same as an operator, who writes no use record;
#   2. batch: POST /v1/verify/batch, 64 distinct licences per request, cache off;
#   3. warm:  POST /v1/verify over 16 licences, cache on (the server restarted with the default);
#   4. issue: POST /v1/licences, durable (each 201 waits for the group-commit flush);
#   5. lookup by identifier and 6. by holder code through the per-type interface, each with the
#      grant check and a durable use record (aim: >= 3,000/s, p99 <= 20 ms);
# Departments state their purpose on every verification, so 1-3 write a durable use record too.
# and prints requests/s, signatures/s, p50/p99 and the ratios the verification aims are stated in.
# wrk waits up to 10 s per request, so slow batches show in p99 instead of counting as errors.
set -euo pipefail
cd "$(dirname "$0")/.."
BACKEND=sled
if [ "${1:-}" = "--backend" ]; then BACKEND=${2:?--backend postgres}; shift 2; fi
[ "$BACKEND" = sled ] || [ "$BACKEND" = postgres ] || { echo "--backend sled or postgres" >&2; exit 2; }
SECONDS_PER_RUN=${1:-10}
CONNECTIONS=${2:-64}
THREADS=${THREADS:-1}
LICENCES=4096
BATCH=64
PURPOSE='service_item=220100-FOOD-001&use_cause=%E6%A0%B8%E9%AA%8C'
LOOKUP=/v1/licence-types/11100000000013338W032/lookup

if ! command -v wrk >/dev/null; then
  echo "installing wrk..." >&2
  (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null || { echo "cannot install wrk" >&2; exit 1; }
fi
cargo build --release -q -p zhengyin
cargo build --release -q --example load_fixtures --example bare_verify_rate
work=$(mktemp -d)
server=
server2=
pg=
stop_server() {
  for pid in $server $server2; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  server=; server2=
}
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pgdir=
stop_pg() { [ -n "$pg" ] && as_postgres "$pg/pg_ctl" -D "$pgdir/data" -m fast -w stop >/dev/null 2>&1 || true; }
trap 'stop_server; stop_pg; rm -rf "$work" ${pgdir:+"$pgdir"}' EXIT

# The store of the next servers: the embedded one, or a fresh PostgreSQL database.
store_args=(--data-dir "$work/data")
use_sled() { rm -rf "$work/data"; store_args=(--data-dir "$work/data"); }
use_postgres() { # a fresh database on the throwaway cluster
  if [ -z "$pg" ]; then
    bash scripts/test-deps.sh
    pg=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    pgdir=$(mktemp -d -t zhengyin-bench-pg.XXXXXX)  # its own folder: the server runs as postgres
    [ "$(id -u)" = 0 ] && chown postgres "$pgdir"
    pg_port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
    as_postgres "$pg/initdb" -D "$pgdir/data" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
    as_postgres "$pg/pg_ctl" -D "$pgdir/data" -l "$pgdir/log" -w \
      -o "-p $pg_port -k $pgdir -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
    databases=0
  fi
  databases=$((databases + 1))
  "$pg/psql" -X -q -h 127.0.0.1 -p "$pg_port" -U postgres -c "CREATE DATABASE bench$databases"
  store_args=(--database "postgres://postgres@127.0.0.1:$pg_port/bench$databases")
}

launch() { # $1 = output file stem; extra args... Sets $launched (pid) and $launched_url.
  local out=$1; shift
  ./target/release/zhengyin serve --demo --listen 127.0.0.1:0 "${store_args[@]}" "$@" >"$work/$out.out" 2>"$work/$out.err" &
  launched=$!
  for _ in $(seq 1 100); do grep -q "listening on" "$work/$out.out" 2>/dev/null && break; sleep 0.1; done
  launched_url=$(sed -n 's/^zhengyin listening on //p' "$work/$out.out")
  [ -n "$launched_url" ] || { echo "server did not start:" >&2; cat "$work/$out.err" >&2; exit 1; }
}
start_server() { launch server "$@"; server=$launched; url=$launched_url; }
start_second() { launch server2 "$@"; server2=$launched; url2=$launched_url; }

lua() { # $1 = token, $2 = file of bodies, one per line (rotated through), $3 = this wrk's name
  # "@N@" in a body becomes a number no other request of the run sends (licence numbers are
  # unique per type and issuer).
  cat <<LUA
wrk.method = "POST"
wrk.headers["authorization"] = "Bearer $1"
wrk.headers["content-type"] = "application/json"
local bodies = {}
for line in io.lines("$2") do bodies[#bodies + 1] = line end
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("tag", "${3:-a}" .. os.time() .. "-" .. threads)
end
local i, sent = 0, 0
request = function()
  i = i % #bodies + 1
  sent = sent + 1
  local body = bodies[i]
  if body:find("@N@", 1, true) then body = body:gsub("@N@", tag .. "-" .. sent) end
  return wrk.format(nil, nil, nil, body)
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.0f %.2f %.2f %d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
}

run() { # $1 = name, $2 = token, $3 = bodies file, $4 = path, $5 = signatures per request, [$6 = connections]
  lua "$2" "$3" a > "$work/$1.lua"
  lua "$2" "$3" b > "$work/$1-b.lua"
  if [ -n "$server2" ]; then
    # Two frontends: one wrk each, half the connections each, at the same time; rates add up,
    # the latencies shown are the worse of the two.
    local half=$(( ${6:-$CONNECTIONS} / 2 ))
    wrk -t"$THREADS" -c"$half" -d"${SECONDS_PER_RUN}s" --timeout 10s -s "$work/$1-b.lua" "$url2$4" | sed -n 's/^RESULT //p' > "$work/$1.second" &
    local second=$!
    read -r rps p50 p99 errors < <(wrk -t"$THREADS" -c"$half" -d"${SECONDS_PER_RUN}s" --timeout 10s -s "$work/$1.lua" "$url$4" | sed -n 's/^RESULT //p')
    wait "$second"
    read -r rps2 p50b p99b errors2 < "$work/$1.second"
    rps=$(awk "BEGIN{print $rps + $rps2}"); errors=$((errors + errors2))
    p50=$(awk "BEGIN{print ($p50 > $p50b) ? $p50 : $p50b}"); p99=$(awk "BEGIN{print ($p99 > $p99b) ? $p99 : $p99b}")
  else
    read -r rps p50 p99 errors < <(wrk -t"$THREADS" -c"${6:-$CONNECTIONS}" -d"${SECONDS_PER_RUN}s" --timeout 10s -s "$work/$1.lua" "$url$4" | sed -n 's/^RESULT //p')
  fi
  printf '%-24s %8.0f req/s %9.0f sig/s   p50 %6.2f ms   p99 %6.2f ms   errors %d\n' \
    "$1" "$rps" "$(awk "BEGIN{print $rps * $5}")" "$p50" "$p99" "$errors"
  local var=${1//-/_}
  var=${var//@/_}
  eval "${var//:/_}_sigs=$(awk "BEGIN{print $rps * $5}")"
}

issue_body='{"type_code":"11100000000013338W032","number":"LOAD-@N@","holder":{"name":"吉林示例科技有限公司","code":"91350100M000100Y43","code_type":"001"},"valid_until":"2046-11-21","face":{"company_name":"吉林示例科技有限公司","company_form":"有限责任公司","legal_representative":"张三","established":"2020-02-29","address":"长春市示例路1号"}}'

# The runs compared across backends, on the store chosen by use_sled / use_postgres, with one
# frontend or (with $1 = 2) two over the same database.
backend_runs() { # $1 = frontends, $2 = label
  start_server --signature-cache 0
  [ "$1" = 2 ] && start_second --signature-cache 0
  ./target/release/examples/load_fixtures "$url" "$LICENCES" "$BATCH" "$work" 2>/dev/null
  printf '%s\n' "$issue_body" > "$work/issue.jsonl"
  run "$2:issue" demo-authority-ed25519 "$work/issue.jsonl" /v1/licences 0
  run "$2:cold" demo-verifier "$work/licences.jsonl" "/v1/verify?$PURPOSE" 1
  run "$2:cold-no-record" demo-operator "$work/licences.jsonl" /v1/verify 1
  run "$2:lookup-id" demo-verifier "$work/lookups-id.jsonl" "$LOOKUP" 0
  run "$2:lookup-holder" demo-verifier "$work/lookups-holder.jsonl" "$LOOKUP" 0
  stop_server
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); wrk ($THREADS thread, $CONNECTIONS conns, ${SECONDS_PER_RUN}s) beside the server"
read -r _ _ bare_single _ bare_batch _ _ < <(./target/release/examples/bare_verify_rate 2 3 | sed 's#/s##g')
printf 'bare   Ed25519 verify_strict, 2 threads: %.0f sig/s; batch equation (64), 2 threads: %.0f sig/s\n' "$bare_single" "$bare_batch"

if [ "$BACKEND" = postgres ]; then
  use_sled; backend_runs 1 sled
  use_postgres; backend_runs 1 pg
  use_postgres; backend_runs 2 pg-2-frontends
  ratio() { awk "BEGIN{printf \"%.2f\", $1 / $2}"; }
  echo "PostgreSQL (PostgreSQL $("$pg/postgres" --version | awk '{print $3}'), same machine) / sled:" \
    "cold $(ratio "$pg_cold_sigs" "$sled_cold_sigs") (aim >= 0.9)," \
    "cold as operator $(ratio "$pg_cold_no_record_sigs" "$sled_cold_no_record_sigs")," \
    "two frontends / one: cold $(ratio "$pg_2_frontends_cold_sigs" "$pg_cold_sigs")"
  exit 0
fi

start_server --signature-cache 0
./target/release/examples/load_fixtures "$url" "$LICENCES" "$BATCH" "$work" 2>/dev/null
head -n 16 "$work/licences.jsonl" > "$work/few.jsonl"
run cold demo-verifier "$work/licences.jsonl" "/v1/verify?$PURPOSE" 1
# The same verifications by an operator, who states no purpose and so writes no use record: what
# the durable use records cost.
run cold-no-record demo-operator "$work/licences.jsonl" /v1/verify 1
run batch demo-verifier "$work/batches.jsonl" "/v1/verify/batch?$PURPOSE" "$BATCH"
run lookup-id demo-verifier "$work/lookups-id.jsonl" "$LOOKUP" 0
run lookup-holder demo-verifier "$work/lookups-holder.jsonl" "$LOOKUP" 0
# The lookup aim is a rate with a latency bound: also measured at 32 connections, a load that
# already gives more than the aimed rate, where p99 is not the queue of a saturated server.
run lookup-id@32 demo-verifier "$work/lookups-id.jsonl" "$LOOKUP" 0 32
run lookup-holder@32 demo-verifier "$work/lookups-holder.jsonl" "$LOOKUP" 0 32
stop_server

start_server
run warm demo-verifier "$work/few.jsonl" "/v1/verify?$PURPOSE" 1
printf '%s\n' "$issue_body" > "$work/issue.jsonl"
run issue demo-authority-ed25519 "$work/issue.jsonl" /v1/licences 0
stop_server

ratio() { awk "BEGIN{printf \"%.2f\", $1 / $2}"; }
echo "ratios: cold / bare 2-thread = $(ratio "$cold_sigs" "$bare_single") (aim >= 0.60;" \
  "without use records $(ratio "$cold_no_record_sigs" "$bare_single"))" \
  "| batch / cold = $(ratio "$batch_sigs" "$cold_sigs") (aim >= 1.8)" \
  "| warm / cold = $(ratio "$warm_sigs" "$cold_sigs") (aim >= 5)"
