#!/usr/bin/env bash
# Holds a running node to api-spec/openapi.yaml with schemathesis (pinned, installed into
# target/clients/st-venv when missing): every check and every phase (examples, coverage, fuzzing,
# and stateful sequences along the spec's links), once per bearer token given, with the
# exceptions of api-spec/schemathesis.toml. Fails on any failure or error. One worker: with two,
# hypothesis's parsing of its own lambdas crashes under Python 3.11 (its ast is not thread-safe).
#   bash scripts/conformance.sh URL EXAMPLES TOKEN...
# EXAMPLES bounds the cases per operation and phase (CI keeps it small; raise it to dig deeper).
set -euo pipefail
cd "$(dirname "$0")/.."
SCHEMATHESIS=4.32.5
url=$1 examples=$2
shift 2
venv=target/clients/st-venv
if [ ! -x "$venv/bin/st" ] || [ "$("$venv/bin/st" --version)" != "st, version $SCHEMATHESIS" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS"
fi
failed=0
for token in "$@"; do
  role=${token:0:24}
  echo "schemathesis as ${role}…"
  # A fixed seed: a failure is reproduced by running again; the cases still differ per token.
  if ! "$venv/bin/st" --config-file api-spec/schemathesis.toml run api-spec/openapi.yaml \
      --url "$url" -H "Authorization: Bearer $token" --checks all \
      --phases examples,coverage,fuzzing,stateful --max-examples "$examples" --workers 1 \
      --seed 20261203 --no-color --output-truncate false >"target/clients/conformance.log" 2>&1; then
    echo "schemathesis failed as ${role}:" >&2
    sed -n '/^=* FAILURES/,$p' target/clients/conformance.log >&2
    failed=1
  fi
done
exit $failed
