#!/usr/bin/env bash
# Rebuild dashboards/web/static/vendor from the npm packages pinned in package.json.
# Needs node and npm (and the npm registry) only when the vendored files are to be updated;
# Siaga itself serves the committed files and never fetches anything at run time.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here/package.json" "$work/"
(cd "$work" && npm install --no-audit --no-fund --ignore-scripts --omit=dev >/dev/null)
cp "$here/build_vendor.mjs" "$work/"
node "$work/build_vendor.mjs" "$work/node_modules" "$here/../static/vendor"
