#!/usr/bin/env bash
# Generates the API clients an integrator would, from api-spec/openapi.yaml, with pinned tools in
# target/clients (made here when missing):
#   bash scripts/clients.sh python       # -> target/clients/python, installed in target/clients/venv
#   bash scripts/clients.sh typescript   # -> target/clients/ts/schema.d.ts, then tsc --strict over
#                                        #    tests/clients/check.ts (calls through openapi-fetch)
# Fails on any generator warning: a warning means an operation or a model is missing. The npm
# tools are pinned by tests/clients/package-lock.json.
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

typescript_types() {
  local ts=$OUT/ts
  mkdir -p "$ts"
  cp tests/clients/package.json tests/clients/package-lock.json tests/clients/tsconfig.json \
    tests/clients/check.ts "$ts/"
  (cd "$ts" && npm ci --no-audit --no-fund --silent)
  local log=$OUT/ts-generate.log
  (cd "$ts" && ./node_modules/.bin/openapi-typescript ../../../api-spec/openapi.yaml -o schema.d.ts) >"$log" 2>&1 ||
    { cat "$log" >&2; exit 1; }
  if grep -qiE "warn|error" "$log"; then
    echo "openapi-typescript warned:" >&2
    cat "$log" >&2
    exit 1
  fi
  (cd "$ts" && ./node_modules/.bin/tsc -p tsconfig.json)
  echo "typescript types: $ts/schema.d.ts (check.ts type-checks)"
}

case "${1:-}" in
  python) python_client ;;
  typescript) typescript_types ;;
  *) echo "usage: bash scripts/clients.sh python|typescript" >&2; exit 2 ;;
esac
