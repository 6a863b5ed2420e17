#!/usr/bin/env bash
# MemLens quick start: builds and packages the extension, installs code-server (a real VS Code in
# the browser), installs MemLens into a private profile, opens a fresh copy of the demo workspace
# and serves it on 127.0.0.1. Runs until Ctrl-C. Works on a fresh Debian 12 + Node 20 machine
# without a GPU (host-memory deltas); with torch and a GPU the demo measures device memory.
#
#   npm run quickstart              # or: bash scripts/quickstart.sh
#   MEMLENS_PORT=9000 npm run quickstart
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${MEMLENS_PORT:-8080}"
STATE_DIR="$REPO_ROOT/.cache/quickstart"
DEMO_DIR="$STATE_DIR/demo"

log() { printf '\n[quickstart] %s\n' "$*" >&2; }
fail() {
  printf '[quickstart] error: %s\n' "$*" >&2
  exit 1
}

command -v node >/dev/null || fail "Node.js 20 is needed (node not found on PATH)"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
((node_major >= 20)) || fail "Node.js 20 is needed; this is $(node --version)"
command -v python3 >/dev/null || fail "python3 (3.9 or newer) is needed to run the demo workload"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))' ||
  fail "python3 is $(python3 --version 2>&1); MemLens' probe needs 3.9 or newer"
[[ "$PORT" =~ ^[0-9]+$ ]] || fail "MEMLENS_PORT must be a port number, not \"$PORT\""

cd "$REPO_ROOT"
# npm ci wipes node_modules; skip it when the installed tree already matches the lockfile.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  log "installing dependencies (npm ci)"
  npm ci --no-audit --no-fund
else
  log "dependencies up to date"
fi

log "building and packaging MemLens (npm run package)"
npm run --silent package
VSIX="$REPO_ROOT/dist/memlens.vsix"
[[ -f "$VSIX" ]] || fail "npm run package did not produce $VSIX"

log "setting up code-server"
ENTRY="$(bash "$REPO_ROOT/scripts/setup-code-server.sh" | tail -n 1)"
[[ -f "$ENTRY" ]] || fail "setup-code-server.sh did not print code-server's entry.js"

mkdir -p "$STATE_DIR/user-data/User" "$STATE_DIR/extensions"
: >"$STATE_DIR/code-server.yaml"
cat >"$STATE_DIR/user-data/User/settings.json" <<'JSON'
{
  "workbench.startupEditor": "readme",
  "workbench.tips.enabled": false,
  "telemetry.telemetryLevel": "off",
  "update.mode": "none",
  "extensions.autoCheckUpdates": false,
  "extensions.ignoreRecommendations": true,
  "editor.codeLens": true,
  "git.openRepositoryInParentFolders": "never"
}
JSON
CODE_SERVER=(node "$ENTRY" --config "$STATE_DIR/code-server.yaml" --user-data-dir "$STATE_DIR/user-data"
  --extensions-dir "$STATE_DIR/extensions")

log "installing $VSIX into $STATE_DIR/extensions"
"${CODE_SERVER[@]}" --force --install-extension "$VSIX" >&2

log "copying the demo workspace to $DEMO_DIR"
rm -rf "$DEMO_DIR"
cp -r "$REPO_ROOT/media/demo" "$DEMO_DIR"
# The recorded vLLM runs go where the Runs view looks, each under its own run id.
for run in "$REPO_ROOT"/media/demo/runs/*/; do
  id="$(node -p 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).id' "$run/meta.json")"
  mkdir -p "$DEMO_DIR/.memlens/runs/$id"
  cp "$run"/* "$DEMO_DIR/.memlens/runs/$id/"
done

cat >&2 <<EOF

  MemLens is ready. Open this URL in a browser:

      http://127.0.0.1:$PORT/

  The demo workspace ($DEMO_DIR) opens with its README. Open memlens_demo/loader.py,
  right-click inside load_weights and pick "Measure Here": a few seconds later a lens above it
  shows the measured delta (about +256 MiB of host RSS without a GPU). The Runs view also lists
  five recorded runs of real vLLM loading gpt-oss-20b on H200s (runs/README.md).
  (Through ssh: ssh -L $PORT:127.0.0.1:$PORT this-machine, then open the same URL locally.)

  Ctrl-C stops it.

EOF
exec "${CODE_SERVER[@]}" --bind-addr "127.0.0.1:$PORT" --auth none --disable-telemetry --disable-update-check \
  --disable-workspace-trust "$DEMO_DIR"
