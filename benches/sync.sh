#!/usr/bin/env bash
# Sync between nodes, measured with real processes on loopback (release build, demo keys):
#   bash benches/sync.sh [licences, default 100000] [propagation samples, default 100] [outage s, default 15]
#   1. catch-up: a city issues LICENCES licences (wrk, 64 connections); a province then starts
#      and pulls the city's whole log — checkpoint, consistency proofs, entries, every licence's
#      signature and certificate chain checked, applied page by page. Prints entries/s and
#      licences/s from the province's start to the moment it has applied the city's checkpoint.
#   2. propagation: for each sample, the city revokes a licence the province holds; the time
#      until the province's verify (fresh=true) answers INVALID. Prints p50/p99/max. With the
#      defaults it is bounded by the city's checkpoint interval (1 s) plus the province's poll
#      interval (0.5 s).
#   3. outage: the city stops for OUTAGE seconds (its back-off at the province grows meanwhile)
#      and starts again on the same port and data; the time from its start until a licence it
#      issues then is VALID (fresh=true) at the province.
#   4. across provinces (互通互认): a national node publishes a trust list (signed with
#      `zhengyin trust-list sign`, example operator key) naming the province's region; a second
#      province follows it. For SAMPLES/4 licences, the time from the city's revocation until
#      the second province answers INVALID (two hops: city → province → other province).
# Installs wrk (Debian package) if missing. Everything is stopped and removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
LICENCES=${1:-100000}
SAMPLES=${2:-100}
OUTAGE=${3:-15}
A=zhengyin.example/city-220100
P=zhengyin.example/province-220000

if ! command -v wrk >/dev/null; then
  echo "installing wrk..." >&2
  (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null || { echo "cannot install wrk" >&2; exit 1; }
fi
cargo build --release -q -p zhengyin
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"' EXIT

start() { # name, then serve arguments; sets $url
  local name=$1; shift
  ./target/release/zhengyin serve --demo --listen "127.0.0.1:${PORT:-0}" --data-dir "$work/$name" "$@" \
    >"$work/$name.out" 2>"$work/$name.err" &
  pids+=($!)
  url=
  for _ in $(seq 1 200); do
    url=$(sed -n 's/^zhengyin listening on //p' "$work/$name.out" 2>/dev/null)
    [ -n "$url" ] && break
    sleep 0.05
  done
  [ -n "$url" ] || { echo "$name did not start:" >&2; cat "$work/$name.err" >&2; exit 1; }
}

log_size() { curl -s "$1/v1/log/checkpoint" -H 'authorization: Bearer demo-auditor' | sed -n 2p; }

start city --origin "$A" --demo-authorities ed25519
city=$url
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "issuing $LICENCES licences at the city..."
cat >"$work/issue.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["authorization"] = "Bearer demo-authority-ed25519"
wrk.headers["content-type"] = "application/json"
-- Licence numbers are unique per type and issuer: each request sends its own.
local sent = 0
local tag = tostring(os.time()) .. "-" .. tostring(math.random(1e9))
request = function()
  sent = sent + 1
  return wrk.format(nil, nil, nil, string.format(body, tag .. "-" .. sent))
end
body = '{"type_code":"11100000000013338W032","number":"SYNC-%s","holder":{"name":"吉林示例科技有限公司","code":"91350100M000100Y43","code_type":"001"},"valid_until":"2046-11-21","face":{"company_name":"吉林示例科技有限公司","company_form":"有限责任公司","legal_representative":"张三","established":"2020-02-29","address":"长春市示例路1号"}}'
LUA
base=$(log_size "$city")
while :; do
  sleep 1.1 # the next checkpoint
  issued=$(( $(log_size "$city") - base ))
  [ "$issued" -ge "$LICENCES" ] && break
  left=$(( LICENCES - issued ))
  wrk -t1 -c64 -d"$(( left / 2000 + 1 ))"s --timeout 10s -s "$work/issue.lua" "$city/v1/licences" >/dev/null
done
sleep 1.1
size=$(log_size "$city")
echo "city log: $size entries ($(( size - base )) licence.issued)"

started=$(date +%s.%N)
start province --origin "$P" --demo-authorities none --source "$A=$city"
province=$url
while :; do
  applied=$(curl -s "$province/v1/sync/sources" -H 'authorization: Bearer demo-operator' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["sources"][0]["applied"])')
  [ "$applied" -ge "$size" ] && break
  sleep 0.1
done
elapsed=$(echo "$(date +%s.%N) - $started" | bc)
python3 - "$size" "$(( size - base ))" "$elapsed" <<'PY'
import sys
size, licences, t = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
print(f"catch-up: {size} entries in {t:.1f} s from the province's start: {size / t:,.0f} entries/s, {licences / t:,.0f} licences/s (each signature and chain checked)")
PY

# What the Python steps below share: calls with a token, a new licence at the city, and the
# province's verdict (fresh status required) polled until it is the one wanted.
cat >"$work/nodes.py" <<'PY'
import json, random, sys, time, urllib.request

PURPOSE = "service_item=220100-FOOD-001&use_cause=%E6%A0%B8%E9%AA%8C"

def call(url, token, body=None):
    req = urllib.request.Request(url, data=body, headers={"authorization": f"Bearer {token}", "content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read()

def issue(city):
    """A new licence at the city: its id and its signed bytes."""
    body = json.dumps({"type_code": "11100000000013338W032", "number": f"SYNC-{random.getrandbits(64)}",
        "holder": {"name": "吉林示例科技有限公司", "code": "91350100M000100Y43", "code_type": "001"},
        "valid_until": "2046-11-21",
        "face": {"company_name": "吉林示例科技有限公司", "company_form": "有限责任公司",
                 "legal_representative": "张三", "established": "2020-02-29", "address": "长春市示例路1号"}}).encode()
    issued = json.loads(call(f"{city}/v1/licences", "demo-authority-ed25519", body))
    return issued["id"], call(f"{city}/v1/licences/{issued['id']}", "demo-authority-ed25519")

def until(province, licence, want, limit=30):
    start = time.monotonic()
    while json.loads(call(f"{province}/v1/verify?fresh=true&{PURPOSE}", "demo-verifier", licence))["verdict"] != want:
        if time.monotonic() - start > limit:
            sys.exit(f"the province did not say {want} within {limit} s")
        time.sleep(0.005)
PY

echo "propagation: $SAMPLES revocations..."
python3 - "$city" "$province" "$SAMPLES" "$work" <<'PY'
import json, random, sys, time
sys.path.insert(0, sys.argv[4])
from nodes import call, issue, until

city, province, samples = sys.argv[1], sys.argv[2], int(sys.argv[3])
latencies = []
for _ in range(samples):
    licence_id, licence = issue(city)
    until(province, licence, "VALID")
    # Revoke at a random moment of the city's checkpoint interval, not right after a checkpoint.
    time.sleep(random.random())
    start = time.monotonic()
    call(f"{city}/v1/licences/{licence_id}/revoke", "demo-authority-ed25519",
         json.dumps({"reason": "吊销", "note": "基准测试"}).encode())
    until(province, licence, "INVALID")
    latencies.append(time.monotonic() - start)
latencies.sort()
pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
print(f"revocation → INVALID at the province: p50 {pick(0.5) * 1000:.0f} ms, p99 {pick(0.99) * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms ({samples} samples)")
PY

echo "outage: the city stops for $OUTAGE s..."
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true
sleep "$OUTAGE"
restarted=$(date +%s.%N)
PORT=${city##*:} start city --origin "$A" --demo-authorities ed25519
python3 - "$city" "$province" "$restarted" "$OUTAGE" "$work" <<'PY'
import sys, time
sys.path.insert(0, sys.argv[5])
from nodes import issue, until

city, province, restarted, outage = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
_, licence = issue(city)
until(province, licence, "VALID", limit=120)
print(f"after a {outage} s outage: the city's new licence VALID at the province {time.time() - restarted:.2f} s after the city was started again")
PY

echo "across provinces: a national trust list, a second province..."
python3 - "$province" "$work/list.json" <<'PY'
import json, sys, urllib.request
province, out = sys.argv[1], sys.argv[2]
req = urllib.request.Request(f"{province}/v1/log/key", headers={"authorization": "Bearer demo-auditor"})
key = json.load(urllib.request.urlopen(req))["verifier_key"]
json.dump({"format": "zhengyin/trust-list/v1", "scheme_operator": "基准测试国家节点", "sequence": 1,
    "issued": "2026-01-01T00:00:00Z", "next_update": "2099-01-01T00:00:00Z",
    "regions": [{"region": "220000", "name": "吉林省", "trust_anchors": [open("keys-example/root-ca.pem").read()],
        "logs": [{"origin": "zhengyin.example/province-220000", "key": key, "url": province}],
        "authorities": ["11220000013544541J"], "licence_types": ["11100000000013338W032"]}]},
    open(out, "w"), ensure_ascii=False)
PY
./target/release/zhengyin trust-list sign "$work/list.json" --key keys-example/trust-list-ed25519.key --out "$work/list.jws"
start national --origin zhengyin.example/national-000000 --demo-authorities none --publish-trust-list "$work/list.jws"
national=$url
start other --origin zhengyin.example/province-340000 --demo-authorities none --trust-list "$national"
other=$url
python3 - "$city" "$other" "$(( (SAMPLES + 3) / 4 ))" "$work" <<'PY'
import json, random, sys, time
sys.path.insert(0, sys.argv[4])
from nodes import call, issue, until

city, other, samples = sys.argv[1], sys.argv[2], int(sys.argv[3])
latencies = []
for _ in range(samples):
    licence_id, licence = issue(city)
    until(other, licence, "VALID", limit=120)
    time.sleep(random.random())
    start = time.monotonic()
    call(f"{city}/v1/licences/{licence_id}/revoke", "demo-authority-ed25519",
         json.dumps({"reason": "吊销", "note": "基准测试"}).encode())
    until(other, licence, "INVALID")
    latencies.append(time.monotonic() - start)
latencies.sort()
pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
print(f"revocation → INVALID in the other province: p50 {pick(0.5) * 1000:.0f} ms, p99 {pick(0.99) * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms ({samples} samples)")
PY
