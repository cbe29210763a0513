#!/usr/bin/env bash
# Conformance: Porthole and the emulator against REAL Backend.AI managers and web servers,
# the rigs of tests/rigs/ (23.09.10 and 26.9.6), one rig at a time:
#
#   1. sets the rig up when needed (tests/rigs/rig VERSION setup; idempotent),
#   2. starts it (re-seeds its sessions),
#   3. runs the official client of the same release against it (rig VERSION official-check),
#   4. runs tests/conformance.rs on its manager (API mode) and web server (session mode),
#      each beside an emulator configured like it and diffed against it,
#   5. runs the desktop app's WebDriver test against it in both modes (tests/gui/rig/),
#   6. stops it (also on failure);
#
# then the emulator alone at API v7, v8 and v9 (no rig), and prints the scenario table and
# the time of every step.
#
# Run as root on Debian 12 (the rigs need apt, chroot and setpriv). Environment:
#   PORTHOLE_RIGS                  which rigs (default "23.09 26.9")
#   PORTHOLE_EMULATOR_APIS         emulator-only versions (default "v7.20230615 v8.20240915 v9.20250722")
#   PORTHOLE_SKIP_OFFICIAL_CHECK=1 skip step 3
#   PORTHOLE_SKIP_GUI_CHECK=1      skip step 5
#   PORTHOLE_KEEP_RIG=1            leave the last rig running
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
T0=$SECONDS
say() { echo "== test-conformance: $*" >&2; }
die() { echo "test-conformance: ERROR: $*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || die "run as root: the rigs need apt-get, chroot and setpriv"
command -v cargo >/dev/null || die "cargo is not installed"

RIGS=${PORTHOLE_RIGS:-"23.09 26.9"}
APIS=${PORTHOLE_EMULATOR_APIS:-"v7.20230615 v8.20240915 v9.20250722"}
REPORT=$ROOT/target/conformance-report
rm -rf "$REPORT"; mkdir -p "$REPORT"
TIMES=()
failed=()
timed() {  # timed LABEL CMD...: runs CMD, records how long it took
  local label=$1 t=$SECONDS rc=0
  shift
  "$@" || rc=$?
  TIMES+=("$(printf '%-34s %4d s%s' "$label" $((SECONDS - t)) "$( ((rc == 0)) || echo "  FAILED (exit $rc)")")")
  return $rc
}

say "building porthole, porthole-emulator and the desktop app"
cargo build --locked --workspace --bins

CURRENT_RIG=""
stop_rig() {
  if [[ -n $CURRENT_RIG && ${PORTHOLE_KEEP_RIG:-0} != 1 ]]; then
    tests/rigs/rig "$CURRENT_RIG" stop >/dev/null 2>&1 || echo "test-conformance: warning: stopping rig $CURRENT_RIG failed" >&2
  fi
  CURRENT_RIG=""
}
trap stop_rig EXIT

gui_check() {  # gui_check RIG
  local keys=/opt/porthole-rigs/$1/keys.env api
  api=$(curl -fsS "$(sed -n 's/^BACKEND_ENDPOINT=//p' "$keys")/" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
  mkdir -p target/screenshots
  PATH="$HOME/.cargo/bin:$PATH" PORTHOLE_RIG_GUI=1 PORTHOLE_RIG_KEYS=$keys PORTHOLE_RIG_API=$api \
    PORTHOLE_RIG_RELEASE=$1 \
    xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- \
    node --test --test-force-exit --test-concurrency=1 --test-reporter=spec tests/gui/rig/ \
    2> >(grep -v -e '^dbus-daemon' -e 'fd limit' >&2)
}

conformance() {  # conformance REPORT_DIR ENV...: the Rust suite with ENV
  mkdir -p "$1"
  local dir=$1
  shift
  env "$@" PORTHOLE_CONFORMANCE_REPORT="$dir" cargo test --locked -p porthole-e2e --test conformance
}

for rig in $RIGS; do
  say "rig $rig: setup"
  timed "rig $rig: setup" tests/rigs/rig "$rig" setup || die "setting up rig $rig failed (see above)"
  say "rig $rig: start"
  CURRENT_RIG=$rig
  timed "rig $rig: start" tests/rigs/rig "$rig" start >/dev/null || die "rig $rig does not start (logs in /opt/porthole-rigs/$rig/state/log)"
  if [[ ${PORTHOLE_SKIP_OFFICIAL_CHECK:-0} != 1 ]]; then
    say "rig $rig: the official client"
    timed "rig $rig: official client" bash -c "set -o pipefail; tests/rigs/rig $rig official-check | tee '$REPORT/official-$rig.log'" \
      || failed+=("the official client on rig $rig (the rig is broken, or the client: $REPORT/official-$rig.log)")
  fi
  say "rig $rig: conformance (manager and web server, each beside the emulator)"
  timed "rig $rig: conformance suite" conformance "$REPORT/rig-$rig" PORTHOLE_RIG="$rig" \
    PORTHOLE_CONFORMANCE_TARGETS=manager,webserver || failed+=("conformance on rig $rig")
  if [[ ${PORTHOLE_SKIP_GUI_CHECK:-0} != 1 ]]; then
    say "rig $rig: the desktop app, both modes (tests/gui/rig/)"
    timed "rig $rig: desktop app" gui_check "$rig" || failed+=("the desktop app on rig $rig")
  fi
  stop_rig
done

for api in $APIS; do
  say "the emulator alone at $api"
  timed "emulator $api" conformance "$REPORT/emulator-$api" PORTHOLE_CONFORMANCE_API="$api" \
    PORTHOLE_CONFORMANCE_TARGETS=emulator || failed+=("conformance of the emulator at $api")
done

# ---- the table: one row per scenario, one column per target -----------------------------
cols=()
for api in $APIS; do cols+=("emulator-$api/emulator-api" "emulator-$api/emulator-session"); done
for rig in $RIGS; do cols+=("rig-$rig/manager" "rig-$rig/webserver"); done
echo
printf '%-18s' SCENARIO
for c in "${cols[@]}"; do printf ' %-22s' "${c/emulator-v/emu v}"; done
echo
for f in "$REPORT"/emulator-"${APIS%% *}"/*.emulator-api; do
  [[ -e $f ]] || continue
  s=$(basename "$f" .emulator-api)
  printf '%-18s' "$s"
  for c in "${cols[@]}"; do printf ' %-22s' "$(head -c 22 "$REPORT/${c%/*}/$s.${c##*/}" 2>/dev/null || echo "not run")"; done
  echo
done
echo
say "observations per target: $REPORT/*/SCENARIO.TARGET.obs; screenshots: target/screenshots/1[12]-rig-*.png"
say "times:"
printf '  %s\n' "${TIMES[@]}" >&2
say "total $((SECONDS - T0)) s"
if ((${#failed[@]})); then
  printf 'test-conformance: FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
say "all green"
