#!/usr/bin/env bash
# LocalStack (S3 only, host mode) in its own virtualenv under .tools/localstack-venv.
# Idempotent: does nothing when the venv already holds the pinned requirements.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$repo/.tools/localstack-venv"
requirements="$repo/localstack/requirements.txt"
stamp="$venv/.requirements.sha256"
python="${LOCALSTACK_PYTHON:-$(command -v python3.11 || command -v python3)}"

want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "localstack: already installed in $venv"
    exit 0
fi

"$python" -c 'import sys; assert sys.version_info[:2] >= (3, 11), sys.version' || {
    echo "localstack: needs Python 3.11+ (set LOCALSTACK_PYTHON)" >&2
    exit 1
}
mkdir -p "$repo/.tools"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -r "$requirements"
"$venv/bin/python" -c 'import localstack.runtime.main' # fails loudly if the runtime cannot load
echo "$want" > "$stamp"
echo "localstack: installed in $venv"
