#!/usr/bin/env bash
# Start LocalStack's S3 in host mode (no Docker) from .tools/localstack-venv.
# Usage: localstack/start.sh [PORT] [DATA_DIR]   (defaults: 4566 and a fresh temp dir)
# Install first with .ci/install/localstack.sh. Runs in the foreground; stop it with Ctrl-C.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${LOCALSTACK_VENV:-$repo/.tools/localstack-venv}"
port="${1:-4566}"
data_dir="${2:-$(mktemp -d -t cargohold-localstack.XXXXXX)}"

if [[ ! -x "$venv/bin/python" ]]; then
    echo "LocalStack is not installed; run .ci/install/localstack.sh" >&2
    exit 1
fi
mkdir -p "$data_dir"

export GATEWAY_LISTEN="127.0.0.1:$port"
export GATEWAY_SERVER=hypercorn
export SERVICES=s3
export DNS_ADDRESS=0
export DISABLE_EVENTS=1
export SKIP_SSL_CERT_DOWNLOAD=1
export FILESYSTEM_ROOT="$data_dir"
export LOCALSTACK_HOST="127.0.0.1:$port"
if [[ "${CARGOHOLD_LOCALSTACK_PLAIN:-0}" == "1" ]]; then
    exec "$venv/bin/python" -m localstack.runtime.main
fi
# Same runtime, with conditional CompleteMultipartUpload made atomic (see launch.py).
exec "$venv/bin/python" -P "$repo/localstack/launch.py"
