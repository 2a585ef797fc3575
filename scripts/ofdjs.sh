#!/usr/bin/env bash
# ofd.js (DLTech21's pure-JavaScript OFD renderer, Apache-2.0), the independent renderer of
# tests/ofd_render.rs: its pinned release fetched with npm, checked against the registry's
# integrity hash, and its self-contained browser build kept as target/ofdjs/ofd.umd.min.js.
# Prints that path.
#   bash scripts/ofdjs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=0.2.6
INTEGRITY="sha512-qBC4bD5fC2e+qWg2ap6pajAU1Rl/G6+l6NUxMVgdcXTtjWcdRSYD6e63WGgmKAEuE4fjmntzIXZwODawjWmQuw=="
DIR=target/ofdjs
if [ ! -f "$DIR/ofd.umd.min.js" ] || [ "$(cat "$DIR/version" 2>/dev/null)" != "$VERSION" ]; then
  rm -rf "$DIR" && mkdir -p "$DIR"
  (cd "$DIR" && npm pack --silent "ofd.js@$VERSION" >/dev/null)
  TARBALL="$DIR/ofd.js-$VERSION.tgz"
  GOT="sha512-$(openssl dgst -sha512 -binary "$TARBALL" | base64 -w0)"
  if [ "$GOT" != "$INTEGRITY" ]; then
    echo "ofd.js $VERSION: integrity $GOT, expected $INTEGRITY" >&2
    exit 1
  fi
  tar -xzf "$TARBALL" -C "$DIR" package/lib/ofd.umd.min.js package/LICENSE
  mv "$DIR/package/lib/ofd.umd.min.js" "$DIR/package/LICENSE" "$DIR/"
  rm -rf "$DIR/package" "$TARBALL"
  echo "$VERSION" > "$DIR/version"
fi
echo "$PWD/$DIR/ofd.umd.min.js"
