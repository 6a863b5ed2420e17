#!/usr/bin/env bash
# Installs what the tests and the quick start need on a fresh Debian 12 + Node 20 machine:
# Debian packages (Chromium, OpenSSH, pytest, black, code-server's build deps, a C compiler and
# Python's headers for the fast host reader the probe tests build) and npm packages.
# Idempotent: skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# fonts-wqy-zenhei: a CJK font, so Chromium draws the zh-CN UI in the screenshots (not boxes).
APT_PACKAGES=(python3-pytest python3-dev gcc libc6-dev black chromium openssh-server openssh-client libkrb5-dev libsecret-1-dev
  libx11-dev libxkbfile-dev ripgrep fonts-wqy-zenhei)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: missing Debian packages: ${missing[*]} — run as root or: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "install-deps: apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "install-deps: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
