#!/usr/bin/env bash
# One file of a pinned npm package, for the browser tests: the release tarball fetched with
# npm, checked against the registry's integrity hash, and FILE (with the package's LICENSE) kept
# in DIR. Prints the file's path. Used by scripts/ofdjs.sh and scripts/axe.sh.
#   bash scripts/npm-file.sh PACKAGE VERSION INTEGRITY FILE DIR
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGE=$1 VERSION=$2 INTEGRITY=$3 FILE=$4 DIR=$5
NAME=$(basename "$FILE")
if [ ! -f "$DIR/$NAME" ] || [ "$(cat "$DIR/version" 2>/dev/null)" != "$VERSION" ]; then
  rm -rf "$DIR" && mkdir -p "$DIR"
  (cd "$DIR" && npm pack --silent "$PACKAGE@$VERSION" >/dev/null)
  TARBALL="$DIR/$PACKAGE-$VERSION.tgz"
  GOT="sha512-$(openssl dgst -sha512 -binary "$TARBALL" | base64 -w0)"
  if [ "$GOT" != "$INTEGRITY" ]; then
    echo "$PACKAGE $VERSION: integrity $GOT, expected $INTEGRITY" >&2
    exit 1
  fi
  tar -xzf "$TARBALL" -C "$DIR" "package/$FILE" package/LICENSE
  mv "$DIR/package/$FILE" "$DIR/package/LICENSE" "$DIR/"
  rm -rf "$DIR/package" "$TARBALL"
  echo "$VERSION" > "$DIR/version"
fi
echo "$PWD/$DIR/$NAME"
