# What the HTTP benches share (sourced by load.sh and scale.sh, from the workspace root, with
# SECONDS_PER_RUN, CONNECTIONS and THREADS set): wrk, the release binary and examples, a work
# folder removed at exit, servers on the embedded store or on a throwaway PostgreSQL, and `run`,
# which drives one wrk load and prints (and sets `rps`, `p50`, `p99`) its rate and latencies.
if ! command -v wrk >/dev/null; then
  echo "installing wrk..." >&2
  (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null || { echo "cannot install wrk" >&2; exit 1; }
fi
cargo build --release -q -p zhengyin
cargo build --release -q --example load_fixtures --example bare_verify_rate --example bulk_issue --example naive_service
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
  # (--data-dir names where its checkpoint mark goes: in the work folder, removed at exit.)
  store_args=(--database "postgres://postgres@127.0.0.1:$pg_port/bench$databases" --data-dir "$work/data")
}

# What the servers run: the demo, unless a bench sets serve_args=(--config FILE).
serve_args=(--demo)
launch() { # $1 = output file stem; extra args... Sets $launched (pid) and $launched_url.
  local out=$1; shift
  ./target/release/zhengyin serve "${serve_args[@]}" --listen 127.0.0.1:0 "${store_args[@]}" "$@" >"$work/$out.out" 2>"$work/$out.err" &
  launched=$!
  for _ in $(seq 1 100); do grep -q "listening on" "$work/$out.out" 2>/dev/null && break; sleep 0.1; done
  launched_url=$(sed -n 's/^zhengyin listening on //p' "$work/$out.out")
  [ -n "$launched_url" ] || { echo "server did not start:" >&2; cat "$work/$out.err" >&2; exit 1; }
}
start_server() { launch server "$@"; server=$launched; url=$launched_url; }

# The yardstick (benches/naive_service.rs) under the same wrk: sets naive_sigs.
run_naive() {
  ./target/release/examples/naive_service fixtures 4096 "$work/naive.jsonl"
  ./target/release/examples/naive_service serve 127.0.0.1:0 >"$work/naive.out" &
  server=$!
  for _ in $(seq 1 100); do grep -q "listening on" "$work/naive.out" 2>/dev/null && break; sleep 0.1; done
  url=$(sed -n 's/^naive listening on //p' "$work/naive.out")
  run naive none "$work/naive.jsonl" /verify 1
  stop_server
}
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
  local var=${1//[^a-zA-Z0-9_]/_}
  eval "${var}_sigs=$(awk "BEGIN{print $rps * $5}")"
}

issue_body='{"type_code":"11100000000013338W032","number":"LOAD-@N@","holder":{"name":"吉林示例科技有限公司","code":"91350100M000100Y43","code_type":"001"},"valid_until":"2046-11-21","face":{"company_name":"吉林示例科技有限公司","company_form":"有限责任公司","legal_representative":"张三","established":"2020-02-29","address":"长春市示例路1号"}}'
