#!/usr/bin/env bash
# Installs skopeo from Debian for the image tests (they convert and read images with it).
# Idempotent: does nothing when skopeo is already on PATH.
set -euo pipefail

if command -v skopeo >/dev/null 2>&1; then
    echo "skopeo already installed: $(skopeo --version)"
    exit 0
fi

# shellcheck source=_apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/_apt.sh"
apt_install skopeo
echo "installed: $(skopeo --version)"
