#!/usr/bin/env bash
# Installs containerd (daemon + ctr) from Debian for the end-to-end plugin tests and benchmarks.
# Idempotent: does nothing when both binaries are already on PATH.
set -euo pipefail

if command -v containerd >/dev/null 2>&1 && command -v ctr >/dev/null 2>&1; then
    echo "containerd already installed: $(containerd --version)"
    exit 0
fi

# shellcheck source=_apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/_apt.sh"
apt_install containerd
# The package enables a system service; the tests start their own daemons with their own configs.
if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
    as_root systemctl disable --now containerd >/dev/null 2>&1 || true
fi
echo "installed: $(containerd --version)"
