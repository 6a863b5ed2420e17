#!/usr/bin/env bash
# Installs code-server (the real VS Code workbench, served to a browser) for the quick start and
# the end-to-end tests, from the npm registry. Idempotent: a second call finds the finished
# install and returns at once.
#
#   scripts/setup-code-server.sh            # installs into <repo>/.cache/code-server
#   MEMLENS_CODE_SERVER_DIR=/x scripts/setup-code-server.sh
#
# Prints the path of code-server's entry.js as its last line.
set -euo pipefail

CODE_SERVER_VERSION="4.100.3"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INSTALL_DIR="${MEMLENS_CODE_SERVER_DIR:-$REPO_ROOT/.cache/code-server}"
ENTRY="$INSTALL_DIR/node_modules/code-server/out/node/entry.js"
# Written last, so an interrupted install is redone instead of half-used.
DONE_MARKER="$INSTALL_DIR/.installed-$CODE_SERVER_VERSION"

log() { printf '[setup-code-server] %s\n' "$*" >&2; }

if [[ -f "$DONE_MARKER" && -f "$ENTRY" ]]; then
  log "code-server $CODE_SERVER_VERSION already installed in $INSTALL_DIR"
  echo "$ENTRY"
  exit 0
fi

# Native modules build against these headers; ripgrep replaces the binary code-server's
# postinstall would download; chromium drives the workbench in the tests.
APT_PACKAGES=(libkrb5-dev libsecret-1-dev libx11-dev libxkbfile-dev ripgrep chromium python3 make g++)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if ((${#missing[@]} > 0)); then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""
  if [[ "$(id -u)" != 0 ]]; then
    if ! command -v sudo >/dev/null; then
      log "error: need root (or sudo) to apt-get install ${missing[*]}; install them and run this again"
      exit 1
    fi
    SUDO="sudo"
  fi
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${missing[@]}"
fi

node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [[ "$node_major" != 20 ]]; then
  log "warning: code-server $CODE_SERVER_VERSION is built for Node 20; this is Node $(node --version)"
fi

log "installing code-server $CODE_SERVER_VERSION into $INSTALL_DIR (about 3 minutes)"
rm -rf "$INSTALL_DIR"
mkdir -p "$INSTALL_DIR"
cd "$INSTALL_DIR"
npm init -y >/dev/null
npm install "code-server@$CODE_SERVER_VERSION" --ignore-scripts --no-audit --no-fund

cd "$INSTALL_DIR/node_modules/code-server/lib/vscode"
npm install --omit=dev --ignore-scripts --no-audit --no-fund
mkdir -p node_modules/@vscode/ripgrep/bin
cp "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg
log "rebuilding native modules"
npm_config_yes=true npm rebuild
ln -sfn node_modules node_modules.asar

cd "$INSTALL_DIR"
npm_config_yes=true npm rebuild argon2

node "$ENTRY" --version >&2
touch "$DONE_MARKER"
log "done"
echo "$ENTRY"
