#!/usr/bin/env bash
# Runs every test: the .NET suites (unit, in-proc, process, interop with the real OpenCode), then the extension's
# unit and end-to-end tests once extension/ exists. Exits non-zero on the first failing suite.
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet test OpenCode.Rpc.sln -c Debug
if [ -f extension/package.json ]; then
  (cd extension && npm test)
  if [ "${SKIP_E2E:-0}" != 1 ] && grep -q '"e2e"' extension/package.json; then
    (cd extension && npm run e2e)
  fi
fi
