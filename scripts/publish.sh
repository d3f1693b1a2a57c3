#!/usr/bin/env bash
# Publishes the sidecar in its fastest-starting form: NativeAOT, one self-contained binary (plus libgit2's .so)
# in artifacts/opencode-rpc/. The extension and the benchmarks use it when present.
set -euo pipefail
cd "$(dirname "$0")/.."
rid="${RID:-linux-x64}"
dotnet publish src/OpenCode.Rpc -c Release -r "$rid" -p:PublishAot=true -o artifacts/opencode-rpc
rm -f artifacts/opencode-rpc/*.dbg artifacts/opencode-rpc/*.pdb
echo "published: artifacts/opencode-rpc/opencode-rpc"
