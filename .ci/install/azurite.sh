#!/usr/bin/env bash
# Install Azurite (the Azure Storage emulator) from the npm registry into <repo>/.tools/azurite.
# Idempotent: does nothing when the pinned version is already there. Needs node >= 18 and npm.
set -euo pipefail

AZURITE_VERSION="3.37.0"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dest="$repo/.tools/azurite"
bin="$dest/node_modules/.bin/azurite-blob"
installed="$dest/node_modules/azurite/package.json"

if [[ -x "$bin" && -f "$installed" ]] \
    && grep -q "\"version\": \"$AZURITE_VERSION\"" "$installed"; then
    echo "azurite $AZURITE_VERSION already installed in $dest"
    exit 0
fi

command -v npm >/dev/null || { echo "npm is required to install azurite" >&2; exit 1; }
mkdir -p "$dest"
cd "$dest"
[[ -f package.json ]] || npm init -y >/dev/null
npm install --no-audit --no-fund --save-exact "azurite@$AZURITE_VERSION"
"$bin" --version
