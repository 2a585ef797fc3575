#!/usr/bin/env bash
# Installs Debian's chromium and chromium-driver for the browser tests (tests/objections_page.rs,
# tests/ofd_render.rs), and a CJK font (fonts-wqy-microhei) so that Chinese text renders in their
# screenshots rather than as empty boxes; once per machine.
set -euo pipefail
missing=()
command -v chromedriver >/dev/null && command -v chromium >/dev/null || missing+=(chromium chromium-driver)
fc-list :lang=zh 2>/dev/null | grep -q . || missing+=(fonts-wqy-microhei)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing ${missing[*]} (Debian) for the browser tests" >&2
export DEBIAN_FRONTEND=noninteractive
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${missing[@]}" >/dev/null
