#!/usr/bin/env bash
# One command on a fresh Debian/Ubuntu machine: system packages, npm packages, the native addon and
# the TypeScript build, then the demo. Arguments go to `m6 demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
npm run build
node bin/m6.js info
node bin/m6.js demo "$@"
