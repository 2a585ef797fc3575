#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain, when missing (Debian packages):
# Python 3 with venv and Node.js with npm (generated clients), PostgreSQL's server, for the
# cluster tests (they start throwaway clusters of their own), and promtool (the metrics tests
# and the rules in deploy/; Debian 12's prometheus 2.42), and SoftHSM2 with OpenSSL (the HSM tests).
set -euo pipefail
PG_MAJOR=15
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "installing postgresql-$PG_MAJOR for the cluster tests"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "postgresql-$PG_MAJOR" >/dev/null
fi
# Python with venv, for the generated-client tests (scripts/clients.sh installs the pinned
# generator into target/clients/venv).
if ! command -v python3 >/dev/null || ! python3 -c "import ensurepip, venv" 2>/dev/null; then
  echo "installing python3-venv for the generated-client tests"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3 python3-venv >/dev/null
fi
# Node.js and npm, for the generated TypeScript types (the npm tools are pinned by
# tests/clients/package-lock.json and installed into target/clients/ts).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "installing nodejs and npm for the generated-client tests"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >/dev/null
fi
# promtool (Debian's prometheus package), for the exposition and the alert rules in deploy/.
if ! command -v promtool >/dev/null; then
  echo "installing prometheus (for promtool) for the metrics tests"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
# SoftHSM2 (a PKCS#11 device in software) and OpenSSL, for the HSM tests (keys in a token, CSRs
# checked with `openssl req -verify`).
if ! ls /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so >/dev/null 2>&1 \
  || ! command -v softhsm2-util >/dev/null || ! command -v openssl >/dev/null; then
  echo "installing softhsm2 and openssl for the HSM tests"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends softhsm2 openssl >/dev/null
fi
# WenQuanYi Micro Hei (Apache-2.0 or GPLv3 with a font exception), the CJK TrueType font the
# tests embed in licence files and render with.
if [ ! -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; then
  echo "installing fonts-wqy-microhei for the licence-file tests"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends fonts-wqy-microhei >/dev/null
fi
