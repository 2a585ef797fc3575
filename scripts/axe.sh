#!/usr/bin/env bash
# axe-core (Deque's accessibility rules engine, MPL-2.0), run in the browser by the page tests
# (tests/pages.rs): its pinned release's browser build, checked against the registry's
# integrity hash, kept as target/axe/axe.min.js. Prints that path.
#   bash scripts/axe.sh
exec bash "$(dirname "$0")/npm-file.sh" axe-core 4.10.3 \
  "sha512-Xm7bpRXnDSX2YE2YFfBk2FnF0ep6tmG7xPh8iHee8MIcrgq762Nkce856dYtJYLkuIoYZvGfTs/PbZhideTcEg==" \
  axe.min.js target/axe
