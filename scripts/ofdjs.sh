#!/usr/bin/env bash
# ofd.js (DLTech21's pure-JavaScript OFD renderer, Apache-2.0), the independent renderer of
# tests/ofd_render.rs: its pinned release's self-contained browser build, checked against the
# registry's integrity hash, kept as target/ofdjs/ofd.umd.min.js. Prints that path.
#   bash scripts/ofdjs.sh
exec bash "$(dirname "$0")/npm-file.sh" ofd.js 0.2.6 \
  "sha512-qBC4bD5fC2e+qWg2ap6pajAU1Rl/G6+l6NUxMVgdcXTtjWcdRSYD6e63WGgmKAEuE4fjmntzIXZwODawjWmQuw==" \
  lib/ofd.umd.min.js target/ofdjs
