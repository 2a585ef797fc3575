#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain, when missing (Debian packages):
# PostgreSQL's server, for the cluster tests (they start throwaway clusters of their own).
set -euo pipefail
PG_MAJOR=15
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "installing postgresql-$PG_MAJOR for the cluster tests"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "postgresql-$PG_MAJOR" >/dev/null
fi
