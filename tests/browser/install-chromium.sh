#!/usr/bin/env bash
# Installs Debian's chromium and chromium-driver for tests/objections_page.rs, once per machine.
set -euo pipefail
if command -v chromedriver >/dev/null && command -v chromium >/dev/null; then
  exit 0
fi
echo "installing chromium and chromium-driver (Debian) for the browser tests" >&2
export DEBIAN_FRONTEND=noninteractive
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
$sudo apt-get install -y -qq chromium chromium-driver >/dev/null
