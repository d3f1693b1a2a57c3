#!/usr/bin/env bash
# Side-by-side whole-process timings of export and import of a 2000-message session:
# the real OpenCode CLI (../shared/tools/opencode-ref.sh, 1.18.33) against opencode-rpc.
# Usage: tools/bench-transfer.sh [runs=3] [messages=2000]
# env OCRPC: how to run opencode-rpc (default: dotnet <repo>/src/OpenCode.Rpc/bin/Release/net10.0/opencode-rpc.dll,
#            built first with `dotnet build -c Release src/OpenCode.Rpc`); a NativeAOT binary path also works.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SHARED="${SHARED:-$ROOT/../shared}"
RUNS="${1:-3}"; N="${2:-2000}"
W="$(mktemp -d "${TMPDIR:-/tmp}/bench-transfer.XXXXXX")"; trap 'rm -rf "$W"' EXIT
if [ -z "${OCRPC:-}" ]; then
  dotnet build -c Release "$ROOT/src/OpenCode.Rpc" >/dev/null
  OCRPC="dotnet $ROOT/src/OpenCode.Rpc/bin/Release/net10.0/opencode-rpc.dll"
fi
python3 "$SHARED/tools/gen-opencode-bench.py" export "$W/bench.json" "$N" >/dev/null
ID=$(python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['info']['id'])" "$W/bench.json")
mkdir -p "$W/cwd"; cd "$W/cwd"
# Each command starts from a settled disk: `sync` (untimed) first, so writeback a previous command left running (the
# real CLI never flushes; our import hands its flush to a helper after it has returned) is charged to neither.
t() { local s e; sync; s=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s.%N); echo "$e - $s" | bc; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)   session: $N messages, $(wc -c < "$W/bench.json") bytes"
for tool in opencode opencode-rpc; do
  imp=(); exp=()
  for i in $(seq "$RUNS"); do
    if [ $tool = opencode ]; then
      H="$W/oc-$i"; mkdir -p "$H"
      imp+=("$(t env OCREF_HOME="$H" OCREF_TIMEOUT=0 "$SHARED/tools/opencode-ref.sh" import "$W/bench.json")")
      rm -f "$W/oc-out.json" # a fresh output file for each run: truncating a flushed one costs more than writing
      exp+=("$(t bash -c "OCREF_HOME='$H' OCREF_TIMEOUT=0 '$SHARED/tools/opencode-ref.sh' export $ID > '$W/oc-out.json'")")
    else
      D="$W/rpc-$i"
      imp+=("$(t $OCRPC import --data-dir "$D" "$W/bench.json")")
      rm -f "$W/rpc-out.json"
      exp+=("$(t bash -c "$OCRPC export --data-dir '$D' $ID > '$W/rpc-out.json'")")
    fi
  done
  printf '%-13s import median %6.2f s   export median %6.2f s   (runs: import %s; export %s)\n' "$tool" \
    "$(printf '%s\n' "${imp[@]}" | median)" "$(printf '%s\n' "${exp[@]}" | median)" "${imp[*]}" "${exp[*]}"
done
cmp -s <(python3 -m json.tool --sort-keys "$W/oc-out.json" | grep -v -e '"projectID"' -e '"directory"' -e '"path"' -e '"updated"') \
       <(python3 -m json.tool --sort-keys "$W/rpc-out.json" | grep -v -e '"projectID"' -e '"directory"' -e '"path"' -e '"updated"') \
  && echo "exports: same content" || echo "exports: DIFFER"
