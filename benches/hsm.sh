#!/usr/bin/env bash
# Issuance with the authorities' keys in a PKCS#11 token (SoftHSM2) against the same keys in PEM
# files, side by side, on a really started node, on loopback only, bounded in time.
#   bash benches/hsm.sh [seconds per run, default 10] [connections, default 64]
# The example authorities' Ed25519 and RSA 2048 keys are imported into a SoftHSM2 token in the
# work folder. A demo node seeds the data (catalogue, authorities) and stops; then the same data
# is served from a configuration whose authority keys are, in turn, the PEM files and the
# token's (pkcs11: URIs, the same keys), and wrk issues licences (POST /v1/licences, durable:
# each 201 waits for the group-commit flush) with each key. Prints requests/s, p50 and p99.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-10}
CONNECTIONS=${2:-64}
THREADS=${THREADS:-1}
source benches/common.sh
bash scripts/test-deps.sh >&2

export SOFTHSM2_CONF=$work/softhsm2.conf
mkdir -p "$work/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$work/tokens" > "$SOFTHSM2_CONF"
PIN=56781234
softhsm2-util --init-token --free --label bench --so-pin 10203040 --pin "$PIN" >/dev/null
echo "$PIN" > "$work/pin"
module=$(ls /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so 2>/dev/null | head -n 1)
ALGS=(ed25519 rsa2048)
for i in "${!ALGS[@]}"; do
  softhsm2-util --import "keys-example/authority-${ALGS[$i]}.key" --token bench \
    --label "${ALGS[$i]}" --id "0$((i + 1))" --pin "$PIN" >/dev/null
done

# The demo seeds the data, then the configured node serves it under the demo's log origin.
start_server
stop_server

node_config() { # $1 = file or pkcs11: the authority keys' kind
  local keys="" alg key
  for alg in "${ALGS[@]}"; do
    if [ "$1" = file ]; then key="$PWD/keys-example/authority-$alg.key"
    else key="pkcs11:token=bench;object=$alg?module-path=$module&pin-source=file:$work/pin"; fi
    keys+="${keys:+, }{ key = \"$key\", certificate = \"$PWD/keys-example/authority-$alg.pem\" }"
  done
  local tokens="" name uscc
  for pair in ed25519:11220000013544541J rsa2048:91350100M000100Y43; do
    name=demo-authority-${pair%%:*}; uscc=${pair##*:}
    tokens+=$'\n'"[[tokens]]"$'\n'"name = \"$name\""$'\n'"sha256 = \"$(printf %s "$name" | sha256sum | cut -d' ' -f1)\""
    tokens+=$'\n'"role = \"authority\""$'\n'"uscc = \"$uscc\""$'\n'
  done
  cat > "$work/node.toml" <<TOML
data_dir = "$work/data"
trust_anchors = "$PWD/keys-example/root-ca.pem"
log_origin = "zhengyin.example/demo"
log_key = "$PWD/keys-example/log-ed25519.key"
keys = [$keys]
$tokens
TOML
}

printf '%s\n' "$issue_body" > "$work/issue.jsonl"
echo "issuance, $SECONDS_PER_RUN s per run, $CONNECTIONS connections, $(nproc) cores"
serve_args=(--config "$work/node.toml")
for kind in file pkcs11; do
  node_config "$kind"
  start_server
  for alg in "${ALGS[@]}"; do
    run "issue-$alg-$kind" "demo-authority-$alg" "$work/issue.jsonl" /v1/licences 1
  done
  stop_server
done
