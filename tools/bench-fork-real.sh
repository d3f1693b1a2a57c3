#!/usr/bin/env bash
# The reference for the benchmark's "fork of 2,000 messages" row: the real OpenCode server's
# `POST /session/:id/fork` on the same generated session (gen-opencode-bench.py, 2,000 messages), imported into
# the real OpenCode's own store first. Prints the wall time of each fork request, then the median.
#
#   tools/bench-fork-real.sh [RUNS=5] [MESSAGES=2000]
#
# Run it next to `dotnet run -c Release --project tests/OpenCode.Rpc.Benchmarks -- --only fork-2000` and compare the
# two medians as a ratio: the machine is noisy, the ratio less so.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SHARED="${SHARED:-$ROOT/../shared}"
RUNS="${1:-5}"; N="${2:-2000}"
W="$(mktemp -d /tmp/bench-fork-real.XXXXXX)"
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

python3 "$SHARED/tools/gen-opencode-bench.py" export "$W/bench.json" "$N" >/dev/null
ID=$(python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['info']['id'])" "$W/bench.json")
mkdir -p "$W/cwd"; cd "$W/cwd"
export OCREF_HOME="$W/home" OCREF_TIMEOUT=0
"$SHARED/tools/opencode-ref.sh" import "$W/bench.json" >/dev/null 2>&1

PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
"$SHARED/tools/opencode-ref.sh" serve --port "$PORT" --hostname 127.0.0.1 >"$W/serve.log" 2>&1 &
PID=$!
for _ in $(seq 600); do
  curl -sf -m 5 "http://127.0.0.1:$PORT/session/$ID" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$PORT/session/$ID" >/dev/null || { echo "the real server did not come up:"; cat "$W/serve.log"; exit 1; }

echo "load: $(cut -d' ' -f1-3 /proc/loadavg)   real opencode serve, session of $N messages"
times=()
for i in $(seq 0 "$RUNS"); do
  s=$(date +%s.%N)
  out=$(curl -sf -m 900 -X POST "http://127.0.0.1:$PORT/session/$ID/fork" -H 'content-type: application/json' -d '{}')
  e=$(date +%s.%N)
  echo "$out" | grep -q '"id":"ses_' || { echo "fork failed: $out"; exit 1; }
  [ "$i" -gt 0 ] && times+=("$(echo "($e - $s) * 1000" | bc)")   # the first request warms the server up
done
FORK=$(echo "$out" | python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')
COUNT=$(curl -sf "http://127.0.0.1:$PORT/session/$FORK/message" | python3 -c 'import json,sys;print(len(json.load(sys.stdin)))')
printf 'fork ms: %s\n' "${times[*]}"
printf 'median: %s ms (the last fork has %s messages)\n' "$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')" "$COUNT"
