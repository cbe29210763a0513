#!/usr/bin/env bash
# Sets up (build packages when missing) and launches the Porthole desktop app. With no
# saved profile it starts on the built-in demo (local demo sessions, nothing to configure);
# otherwise it signs in with the active profile.
#
#   scripts/run.sh              build (release) and launch
#   scripts/run.sh --debug      build the debug profile instead (faster first build)
#   PORTHOLE_DEMO=1 scripts/run.sh    always start on the demo
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
args=()
for arg in "$@"; do
  case "$arg" in
    --debug) profile=debug ;;
    *) args+=("$arg") ;;
  esac
done

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
need_apt=()
for pkg in pkg-config libdbus-1-dev libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev \
  libayatana-appindicator3-1 openssh-client; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "run: apt packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "run: Rust (cargo) is required: https://rustup.rs" >&2; exit 1; }

if [ "$profile" = release ]; then
  cargo build --release -p porthole-desktop
else
  cargo build -p porthole-desktop
fi

if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "run: no display (\$DISPLAY / \$WAYLAND_DISPLAY); start it from a desktop session," >&2
  echo "     or under a virtual one: xvfb-run -a scripts/run.sh" >&2
  exit 1
fi

# The demo when no profile exists; the active profile otherwise.
export PORTHOLE_DEMO="${PORTHOLE_DEMO:-auto}"
exec "target/$profile/porthole-desktop" "${args[@]}"
