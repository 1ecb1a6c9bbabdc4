#!/usr/bin/env bash
# Installs Go and containerd's Go sources from Debian: tests build small Go programs offline
# (GO111MODULE=off, no module proxy), such as the regexp oracle of the filter differential test.
# Idempotent: does nothing when go is on PATH and the containerd sources are present.
set -euo pipefail

CONTAINERD_SRC=/usr/share/gocode/src/github.com/containerd/containerd
if command -v go >/dev/null 2>&1 && [ -d "$CONTAINERD_SRC" ]; then
    echo "go already installed: $(go version)"
    exit 0
fi

# shellcheck source=_apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/_apt.sh"
apt_install golang-go golang-github-containerd-containerd-dev
echo "installed: $(go version)"
