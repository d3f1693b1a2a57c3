#!/usr/bin/env bash
# session/list of N sessions (default 10,000) through the extension's own client (vscode-jsonrpc over the published
# sidecar's stdio). Needs `bash scripts/publish.sh` and `cd extension && npm ci` first.
# Usage: tools/bench-list-client.sh [N=10000]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
N="${1:-10000}"
W="$(mktemp -d "${TMPDIR:-/tmp}/bench-list.XXXXXX")"; trap 'rm -rf "$W"' EXIT
python3 "$ROOT/tools/gen-sessions.py" "$W/data" "$W/proj" "$N"
cd "$ROOT" && node tools/bench-list-client.mjs "$ROOT/artifacts/opencode-rpc/opencode-rpc" "$W/data" "$W/proj"
