#!/usr/bin/env bash
# Generates the API clients an integrator would, from api-spec/openapi.yaml, with pinned tools in
# target/clients (made here when missing):
#   bash scripts/clients.sh python   # -> target/clients/python, installed in target/clients/venv
# Fails on any generator warning: a warning means an operation or a model is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
OPENAPI_PYTHON_CLIENT=0.29.1
OUT=target/clients
mkdir -p "$OUT"

python_client() {
  local venv=$OUT/venv
  if [ ! -x "$venv/bin/openapi-python-client" ] ||
     [ "$("$venv/bin/openapi-python-client" --version)" != "openapi-python-client version: $OPENAPI_PYTHON_CLIENT" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "openapi-python-client==$OPENAPI_PYTHON_CLIENT"
  fi
  rm -rf "$OUT/python"
  local log=$OUT/python-generate.log
  "$venv/bin/openapi-python-client" generate --path api-spec/openapi.yaml \
    --config api-spec/clients/python.yaml --meta setup --output-path "$OUT/python" >"$log" 2>&1 ||
    { cat "$log" >&2; exit 1; }
  if grep -qi "warning" "$log"; then
    echo "openapi-python-client warned; the client is incomplete:" >&2
    cat "$log" >&2
    exit 1
  fi
  "$venv/bin/pip" install -q --no-deps --force-reinstall "$OUT/python"
  echo "python client: $OUT/python (installed in $venv)"
}

case "${1:-}" in
  python) python_client ;;
  *) echo "usage: bash scripts/clients.sh python" >&2; exit 2 ;;
esac
