#!/usr/bin/env bash
# Installs skopeo from Debian for the image tests (they convert and read images with it).
# Idempotent: does nothing when skopeo is already on PATH.
set -euo pipefail

if command -v skopeo >/dev/null 2>&1; then
    echo "skopeo already installed: $(skopeo --version)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends skopeo
echo "installed: $(skopeo --version)"
