#!/usr/bin/env bash
# HTTP load against a really started server, on loopback only, bounded in time.
#   bash benches/load.sh [seconds per run, default 10] [connections, default 32]
# Installs wrk (Debian package) if missing, builds the release binary, starts
# `zhengyin serve --demo` on a free port with a throw-away database, then measures:
#   1. POST /v1/verify of one Ed25519 licence (the hot path)
#   2. POST /v1/licences: durable issuance (each 201 waits for the group-commit flush)
# and prints requests/s with p50/p99 latency for each. Stops the server when done.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-10}
CONNECTIONS=${2:-32}
THREADS=${THREADS:-1}

if ! command -v wrk >/dev/null; then
  echo "installing wrk..." >&2
  (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null || { echo "cannot install wrk" >&2; exit 1; }
fi
cargo build --release -q -p zhengyin
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT

./target/release/zhengyin serve --demo --listen 127.0.0.1:0 --data-dir "$work/data" >"$work/out" 2>"$work/err" &
server=$!
for _ in $(seq 1 100); do grep -q "listening on" "$work/out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^zhengyin listening on //p' "$work/out")
[ -n "$url" ] || { echo "server did not start:" >&2; cat "$work/err" >&2; exit 1; }

issue_body='{"type_code":"11100000000013338W032","number":"LOAD-1","holder":{"name":"吉林示例科技有限公司","code":"91350100M000100Y43","code_type":"001"},"valid_until":"2046-11-21","face":{"company_name":"吉林示例科技有限公司","company_form":"有限责任公司","legal_representative":"张三","established":"2020-02-29","address":"长春市示例路1号"}}'
id=$(curl -sf "$url/v1/licences" -H 'authorization: Bearer demo-authority-ed25519' \
  -H 'content-type: application/json' -d "$issue_body" | python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')
curl -sf "$url/v1/licences/$id" -H 'authorization: Bearer demo-verifier' > "$work/licence.json"

lua() { # $1 = token, $2 = body file
  cat <<LUA
wrk.method = "POST"
wrk.headers["authorization"] = "Bearer $1"
wrk.headers["content-type"] = "application/json"
local f = io.open("$2", "rb"); wrk.body = f:read("*a"); f:close()
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.0f req/s  p50 %.2f ms  p99 %.2f ms  errors %d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
}
lua demo-verifier "$work/licence.json" > "$work/verify.lua"
printf '%s' "$issue_body" > "$work/issue.json"
lua demo-authority-ed25519 "$work/issue.json" > "$work/issue.lua"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); wrk beside the server"
echo -n "verify  (POST /v1/verify, Ed25519, $CONNECTIONS conns, ${SECONDS_PER_RUN}s): "
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" -s "$work/verify.lua" "$url/v1/verify" | sed -n 's/^RESULT //p'
echo -n "issue   (POST /v1/licences, durable, $CONNECTIONS conns, ${SECONDS_PER_RUN}s): "
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" -s "$work/issue.lua" "$url/v1/licences" | sed -n 's/^RESULT //p'
