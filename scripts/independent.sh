#!/usr/bin/env bash
# The independent licence verifier's Python (tests/independent/verify_licence.py): a venv in
# target/independent/venv with its pinned packages. Prints the venv's python.
#   bash scripts/independent.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=target/independent/venv
PINS="cryptography==44.0.0 rfc8785==0.1.4 gmssl==3.2.2 pycryptodomex==3.24.2 fonttools==4.55.3"
if [ ! -f "$VENV/pins" ] || [ "$(cat "$VENV/pins")" != "$PINS" ]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  # shellcheck disable=SC2086
  "$VENV/bin/pip" install -q $PINS
  echo "$PINS" > "$VENV/pins"
fi
echo "$PWD/$VENV/bin/python"
