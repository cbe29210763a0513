#!/usr/bin/env bash
# Installs what the tests need on Debian/Ubuntu, skipping what is already there:
# build packages, the real servers and tools the end-to-end tests drive (and, as root, the
# host packages of the Backend.AI rigs of tests/rigs/ and of the desktop app's GUI tests, so
# that nothing later needs apt), the `work` user Backend.AI containers log in as, and the
# official backend.ai-client in a venv.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

need_apt=()
need_gui=()
# The desktop app is a workspace member, so building and linting the workspace needs
# the WebKitGTK and tray development packages too.
for pkg in pkg-config libdbus-1-dev libwebkit2gtk-4.1-dev libayatana-appindicator3-dev \
  librsvg2-dev openssh-server openssh-client curl faketime python3-venv rsync dropbear-bin \
  tinyproxy iproute2 openssl; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install-test-deps: apt packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# The desktop app's GUI tests (scripts/test-gui.sh installs the same when run alone).
for pkg in libayatana-appindicator3-1 xvfb xauth webkit2gtk-driver gnome-keyring dbus-x11 \
  libsecret-tools nodejs util-linux; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_gui+=("$pkg")
done
if [ ${#need_gui[@]} -gt 0 ]; then
  echo "install-test-deps: apt packages for the GUI tests: ${need_gui[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_gui[@]}" >/dev/null
fi
# The rigs' host packages (the rest of a rig's setup needs no apt on the host).
if [ "$(id -u)" -eq 0 ]; then
  for rig in tests/rigs/*/rig.env; do
    tests/rigs/rig "$(basename "$(dirname "$rig")")" packages
  done
fi

# The proxy tests run their own tinyproxy in a network namespace; the package's service
# must not hold the default port (no init system starts it in CI; a real one might).
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet tinyproxy 2>/dev/null; then
  $SUDO systemctl disable --now tinyproxy >/dev/null 2>&1 || true
fi

# Backend.AI containers run sshd for the user `work`; the tests log in as it when it
# exists, else as the current user. As root, it is made here, before any test runs (the
# 23.09 rig would create it otherwise, in the middle of a run). Key-only login needs a
# password field of '*': '!' means "locked", which sshd refuses.
if [ "$(id -u)" -eq 0 ]; then
  id work >/dev/null 2>&1 || useradd --create-home --shell /bin/bash --user-group work
  if [ "$(getent shadow work | cut -d: -f2)" != "*" ]; then usermod -p '*' work; fi
fi
# sshd needs its privilege-separation directory.
[ -d /run/sshd ] || $SUDO mkdir -p /run/sshd

command -v cargo >/dev/null || { echo "install-test-deps: Rust (cargo) is required: https://rustup.rs" >&2; exit 1; }
rustup component list --installed 2>/dev/null | grep -q clippy || rustup component add clippy rustfmt 2>/dev/null || true

# The official client, pinned to the dependency versions of its day (newer yarl breaks
# its request signing), in a venv under target/.
VENV=target/bai-client-venv
if [ ! -x "$VENV/bin/backend.ai" ]; then
  echo "install-test-deps: backend.ai-client 23.9.10 into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check \
    -c scripts/constraints-bai-client.txt backend.ai-client==23.9.10
fi

# Real apps and a real browser for tests/real_apps.rs and the GUI tests: Debian Chromium,
# playwright-core, and JupyterLab + TensorBoard in target/apps-venv.
scripts/install-browser-deps.sh
