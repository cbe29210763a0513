#!/usr/bin/env bash
# Installs what the real-browser checks in tests/browser/ need on Debian/Ubuntu, skipping
# what is already there: the system Chromium (never a downloaded browser build), the npm
# packages of tests/browser (playwright-core only, from package-lock.json), and a Python
# venv at target/apps-venv with the pinned JupyterLab and TensorBoard the checks run
# (tests/browser/selftest.sh shows them working; curl is what it waits for servers with).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

need_apt=()
for pkg in chromium python3-venv curl; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install-browser-deps: apt packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

command -v npm >/dev/null || { echo "install-browser-deps: Node.js 20+ with npm is required" >&2; exit 1; }

# npm ci when node_modules is missing or older than the lock file (npm writes its own
# node_modules/.package-lock.json on every install).
B=tests/browser
if [ ! -f "$B/node_modules/.package-lock.json" ] || [ "$B/package-lock.json" -nt "$B/node_modules/.package-lock.json" ]; then
  echo "install-browser-deps: npm ci in $B"
  (cd "$B" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# The apps venv, rebuilt only when the requirements file changed (a copy of it is the stamp).
VENV=target/apps-venv
REQ=$B/requirements-apps.txt
STAMP=$VENV/.requirements-apps.txt
if [ ! -x "$VENV/bin/jupyter-lab" ] || [ ! -x "$VENV/bin/tensorboard" ] || ! cmp -s "$REQ" "$STAMP"; then
  echo "install-browser-deps: jupyterlab and tensorboard into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ"
  cp "$REQ" "$STAMP"
fi
