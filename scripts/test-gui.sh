#!/usr/bin/env bash
# Sets up and runs the desktop app's end-to-end tests: the real app binary in a real window
# under Xvfb, driven through WebDriver (tauri-driver + WebKitWebDriver), inside its own
# D-Bus session with an unlocked gnome-keyring as the Secret Service, against
# porthole-emulator with a real HTTP server and a real OpenSSH sshd behind it.
# Screenshots of each screen land in target/screenshots/.
#
#   scripts/test-gui.sh            install what is missing, build, run the GUI tests
#   scripts/test-gui.sh --deb      also build the .deb with the Tauri CLI, install it and
#                                  check that the installed app starts (adds ~10 min)
set -euo pipefail
cd "$(dirname "$0")/.."

WITH_DEB=0
for arg in "$@"; do
  case "$arg" in
    --deb) WITH_DEB=1 ;;
    *) echo "usage: $0 [--deb]" >&2; exit 2 ;;
  esac
done

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# Build and run-time packages of the app and of the GUI tests.
need_apt=()
for pkg in pkg-config libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev \
  libayatana-appindicator3-1 xvfb xauth webkit2gtk-driver gnome-keyring dbus-x11 \
  libsecret-tools openssh-server openssh-client python3 nodejs dropbear-bin util-linux; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "test-gui: apt packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "test-gui: Node.js 20 or newer is required (found $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi
# Backend.AI containers run sshd for `work`; the tests log in as it when it exists
# (scripts/install-test-deps.sh makes its key-only login work), else as the current user.
[ -d /run/sshd ] || $SUDO mkdir -p /run/sshd

export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v tauri-driver >/dev/null || ! tauri-driver --help 2>&1 | grep -q -- '--native-port'; then
  echo "test-gui: cargo install tauri-driver (2.x)"
  cargo install tauri-driver --version '^2' --locked
fi

# Headless Chromium, playwright-core and JupyterLab for tests/gui/real-apps.test.mjs.
scripts/install-browser-deps.sh

echo "== cargo build (the app, porthole-emulator)"
start=$(date +%s)
cargo build --workspace --bins --locked
echo "test-gui: build took $(( $(date +%s) - start )) s"

echo "== GUI end-to-end tests (Xvfb, WebDriver, gnome-keyring)"
mkdir -p target/screenshots
rm -f target/screenshots/*.png
start=$(date +%s)
xvfb-run -a -s "-screen 0 1280x800x24" \
  dbus-run-session -- \
  node --test --test-force-exit --test-concurrency=1 --test-reporter=spec tests/gui/ \
  2> >(grep -v -e '^dbus-daemon' -e 'fd limit' >&2)
echo "test-gui: GUI tests took $(( $(date +%s) - start )) s; screenshots in target/screenshots/"

if [ "$WITH_DEB" -eq 1 ]; then
  echo "== .deb bundle (tauri build --bundles deb)"
  start=$(date +%s)
  npx --yes @tauri-apps/cli@2 build --bundles deb
  deb=$(ls -t target/release/bundle/deb/*.deb | head -n 1)
  echo "test-gui: built $deb in $(( $(date +%s) - start )) s"
  $SUDO dpkg -i "$deb" >/dev/null || { $SUDO apt-get install -f -y -qq >/dev/null && $SUDO dpkg -i "$deb"; }
  # The installed app starts (on the demo, in a clean home) and answers its WebDriver
  # session's first command; the GUI tests above cover the behaviour.
  installed=/usr/bin/porthole-desktop
  [ -x "$installed" ] || { echo "test-gui: $installed missing after dpkg -i" >&2; exit 1; }
  xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- \
    env PORTHOLE_GUI_APP="$installed" node tests/gui/installed-check.mjs
fi
