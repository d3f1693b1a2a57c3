#!/usr/bin/env bash
# The documented AFL++ run of the fuzz targets (see README.md). Usage:
#   tests/OpenCode.Rpc.Fuzz/afl-run.sh [seconds-per-target] [max-execs-per-target] [targets...]
# Defaults: 600 s or 1,000,000 executions per target, whichever comes first; all three targets, one after another.
# Findings go to ${FUZZ_OUT:-/tmp/ocfuzz-findings}/<target>; the summary line per target is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER="${1:-600}"
MAX_EXECS="${2:-1000000}"
if [ $# -gt 2 ]; then TARGETS=("${@:3}"); else TARGETS=(frame store import); fi
PUB="${FUZZ_PUBLISH:-/tmp/ocfuzz}"
OUT="${FUZZ_OUT:-/tmp/ocfuzz-findings}"

command -v afl-fuzz >/dev/null || { echo "afl-fuzz not found: apt-get install afl++" >&2; exit 2; }
export PATH="$PATH:$HOME/.dotnet/tools"
command -v sharpfuzz >/dev/null || dotnet tool install --global SharpFuzz.CommandLine --version 2.3.0

# Publish once, then instrument the assemblies under test (not the harness, not the framework).
rm -rf "$PUB"
dotnet publish tests/OpenCode.Rpc.Fuzz -c Release -o "$PUB" >/dev/null
sharpfuzz "$PUB/opencode-rpc.dll"
sharpfuzz "$PUB/OpenCode.Rpc.Core.dll"

# No core_pattern or CPU-governor tuning on a shared machine, and no pinning to a core others use.
export AFL_SKIP_BIN_CHECK=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_NO_UI=1
for t in "${TARGETS[@]}"; do
  rm -rf "${OUT:?}/$t"
  mkdir -p "$OUT"
  afl-fuzz -i "tests/OpenCode.Rpc.Fuzz/corpus/$t" -o "$OUT/$t" -t 5000 -m none -V "$SECONDS_PER" -E "$MAX_EXECS" \
    -- dotnet "$PUB/opencode-rpc-fuzz.dll" "$t" > "$OUT/$t.log" 2>&1 || true
done

for t in "${TARGETS[@]}"; do
  s="$OUT/$t/default/fuzzer_stats"
  if [ -f "$s" ]; then
    printf '%s: %s executions, %s crashes, %s hangs, %s s, %s corpus\n' "$t" \
      "$(awk -F' *: ' '$1=="execs_done"{print $2}' "$s")" "$(awk -F' *: ' '$1=="saved_crashes"{print $2}' "$s")" \
      "$(awk -F' *: ' '$1=="saved_hangs"{print $2}' "$s")" "$(awk -F' *: ' '$1=="run_time"{print $2}' "$s")" \
      "$(awk -F' *: ' '$1=="corpus_count"{print $2}' "$s")"
  else
    echo "$t: no stats (see $OUT/$t.log)"
  fi
done
