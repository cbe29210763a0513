#!/usr/bin/env bash
# Conformance: Porthole and the emulator against the REAL Backend.AI manager and web server
# 23.09.10 of the real-manager rig (../shared/rigs/real-manager beside this repository).
#
#   1. sets the rig up when it is missing (its setup.sh: apt packages, venvs, database),
#   2. starts it (start.sh; idempotent, re-seeds the sessions),
#   3. runs the rig's own check-official-client.sh (the official `backend.ai` client, a-l),
#   4. runs tests/conformance.rs against the emulator, the manager (API mode) and the web
#      server (session mode), with the emulator diffed against both, then the desktop app's
#      WebDriver test in session mode against the web server (tests/gui/rig/),
#   5. prints the scenario table and the timings, and stops the rig (also on failure).
#
# Run as root on Debian 12 with Rust installed. Idempotent. Environment:
#   PORTHOLE_RIG_DIR                 the rig's scripts (default: ../shared/rigs/real-manager)
#   PORTHOLE_SKIP_OFFICIAL_CHECK=1   skip step 3
#   PORTHOLE_SKIP_GUI_CHECK=1        skip the desktop app's test in step 4
#   PORTHOLE_KEEP_RIG=1              leave the rig running at the end
#   PORTHOLE_CONFORMANCE_TARGETS     default all (emulator,manager,webserver)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
T0=$(date +%s)
say() { echo "== test-conformance: $*" >&2; }
die() { echo "test-conformance: ERROR: $*" >&2; exit 1; }
elapsed() { echo $(( $(date +%s) - $1 ))s; }

RIG_DIR=${PORTHOLE_RIG_DIR:-$ROOT/../shared/rigs/real-manager}
[[ -f $RIG_DIR/setup.sh && -f $RIG_DIR/start.sh && -f $RIG_DIR/stop.sh ]] \
  || die "the real-manager rig is not at $RIG_DIR (set PORTHOLE_RIG_DIR; in CI shared/ sits beside the repository)"
RIG_DIR=$(cd "$RIG_DIR" && pwd)
export PORTHOLE_RIG_DIR=$RIG_DIR
[[ $(id -u) == 0 ]] || die "run as root: the rig needs apt-get, a 'work' user and setpriv"
command -v cargo >/dev/null || die "cargo is not installed"
# Where the rig keeps its state, and the container user's home (rig.env / lib.sh).
RIG_ROOT=$(bash -c "source '$RIG_DIR/rig.env' >/dev/null 2>&1; echo \$RIG_ROOT")
WORK_HOME=$RIG_ROOT/data/home/work

# ---- tools the suite itself uses (the rig installs its own) --------------------------------
need=()
command -v faketime >/dev/null || need+=(faketime)
command -v ssh >/dev/null || need+=(openssh-client)
command -v curl >/dev/null || need+=(curl)
command -v python3 >/dev/null || need+=(python3)
if ((${#need[@]})); then
  say "apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || die "apt-get install ${need[*]} failed"
fi

# ---- 1. set up the rig when it is missing ----------------------------------------------------
t=$(date +%s)
if [[ -x $RIG_ROOT/venv/bin/backend.ai && -x $RIG_ROOT/jupyter-venv/bin/jupyter-lab \
      && -f $RIG_ROOT/data/pg/PG_VERSION && -f $RIG_ROOT/keys.env && -f $RIG_ROOT/etc/id_container ]] \
   && id work >/dev/null 2>&1; then
  say "rig already set up in $RIG_ROOT"
else
  say "setting up the rig ($RIG_DIR/setup.sh)"
  bash "$RIG_DIR/setup.sh" || die "the rig's setup.sh failed (see above)"
fi
SETUP_TIME=$(elapsed "$t")

# The rig's sshd reads ~work/.ssh/authorized_keys, which setup.sh writes under $WORK_HOME.
# If `work` existed before the rig (scripts/install-test-deps.sh creates it with home
# /home/work), point its home at the rig's, or the rig's sshd refuses the session key.
work_home=$(getent passwd work | cut -d: -f6)
if [[ $work_home != "$WORK_HOME" ]]; then
  say "user work has home $work_home; moving it to the rig's $WORK_HOME (its sshd reads ~work/.ssh)"
  if pgrep -u work >/dev/null; then
    bash "$RIG_DIR/stop.sh" || true    # the rig's JupyterLab runs as work
  fi
  pgrep -u work >/dev/null && die "processes of user work are running; cannot change its home"
  usermod -d "$WORK_HOME" work || die "usermod -d $WORK_HOME work failed"
fi

# ---- 2. start it, and stop it at the end whatever happens ------------------------------------
stop_rig() {
  local rc=$?
  if [[ ${PORTHOLE_KEEP_RIG:-0} == 1 ]]; then
    say "leaving the rig running (PORTHOLE_KEEP_RIG=1)"
  else
    say "stopping the rig"
    bash "$RIG_DIR/stop.sh" >/dev/null 2>&1 || echo "test-conformance: warning: stop.sh failed" >&2
  fi
  exit "$rc"
}
trap stop_rig EXIT
t=$(date +%s)
say "starting the rig"
# A run killed half-way may have left a fault switch on (start.sh clears fail-services only).
rm -f "$RIG_ROOT/run/nocheck-services" "$RIG_ROOT/run/fail-services"
bash "$RIG_DIR/start.sh" >/dev/null || die "the rig's start.sh failed (logs in $RIG_ROOT/log)"
START_TIME=$(elapsed "$t")

REPORT=$ROOT/target/conformance-report
rm -rf "$REPORT"; mkdir -p "$REPORT"

# ---- 3. the official client on the same rig ---------------------------------------------------
t=$(date +%s)
if [[ ${PORTHOLE_SKIP_OFFICIAL_CHECK:-0} == 1 ]]; then
  OFFICIAL="skipped"
else
  say "official client: $RIG_DIR/check-official-client.sh"
  out=$(bash "$RIG_DIR/check-official-client.sh" 2>&1) || {
    echo "$out" > "$REPORT/official-client.log"
    echo "$out" | tail -n 40 >&2
    die "the official backend.ai client fails on the rig, so the rig is broken (see above)"
  }
  echo "$out" > "$REPORT/official-client.log"
  OFFICIAL=$(echo "$out" | tail -n 1)
  echo "$out" | grep -E '^  \([a-l]\) ' >&2 || true
fi
OFFICIAL_TIME=$(elapsed "$t")

# ---- 4. the suite -----------------------------------------------------------------------------
t=$(date +%s)
say "building porthole and porthole-emulator"
cargo build --locked -p porthole-cli -p porthole-emulator
say "cargo test --test conformance (targets: ${PORTHOLE_CONFORMANCE_TARGETS:-all})"
set +e
PORTHOLE_CONFORMANCE_TARGETS=${PORTHOLE_CONFORMANCE_TARGETS:-all} PORTHOLE_CONFORMANCE_REPORT=$REPORT \
  cargo test --locked -p porthole-e2e --test conformance
rc=$?
set -e
SUITE_TIME=$(elapsed "$t")

# ---- 4b. the desktop app in session mode against the web server (WebDriver) ------------------
# tests/gui/rig/, run the way scripts/test-gui.sh runs tests/gui/ (Xvfb, its own D-Bus session,
# gnome-keyring); run scripts/test-gui.sh once to install what it needs.
t=$(date +%s)
if [[ ${PORTHOLE_SKIP_GUI_CHECK:-0} == 1 ]]; then
  GUI="skipped"; gui_rc=0
else
  for tool in xvfb-run dbus-run-session gnome-keyring-daemon secret-tool WebKitWebDriver node tauri-driver; do
    PATH="$HOME/.cargo/bin:$PATH" command -v "$tool" >/dev/null \
      || die "$tool is missing for the desktop check: run scripts/test-gui.sh once (or PORTHOLE_SKIP_GUI_CHECK=1)"
  done
  say "desktop app, session mode on the web server: tests/gui/rig/ (WebDriver)"
  cargo build --locked --workspace --bins
  mkdir -p target/screenshots
  set +e
  PATH="$HOME/.cargo/bin:$PATH" PORTHOLE_RIG_GUI=1 \
    xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- \
    node --test --test-force-exit --test-concurrency=1 --test-reporter=spec tests/gui/rig/ \
    2> >(grep -v -e '^dbus-daemon' -e 'fd limit' >&2)
  gui_rc=$?
  set -e
  ((gui_rc == 0)) && GUI="passed" || GUI="FAILED (exit $gui_rc)"
fi
GUI_TIME=$(elapsed "$t")

# ---- 5. the table -----------------------------------------------------------------------------
echo
printf '%-18s %-22s %-22s %-40s %s\n' SCENARIO emulator-api emulator-session manager webserver
for f in "$REPORT"/*.emulator-api; do
  [[ -e $f ]] || continue
  s=$(basename "$f" .emulator-api)
  cell() { local v; v=$(cat "$REPORT/$s.$1" 2>/dev/null || echo "not run"); echo "${v:0:$2}"; }
  printf '%-18s %-22s %-22s %-40s %s\n' "$s" "$(cell emulator-api 22)" "$(cell emulator-session 22)" \
    "$(cell manager 40)" "$(cell webserver 40)"
done
echo
say "official client: $OFFICIAL (log: $REPORT/official-client.log)"
say "observations per target: $REPORT/*.obs"
say "desktop app in session mode (tests/gui/rig/): $GUI (screenshot: target/screenshots/11-rig-session-mode.png)"
say "times: setup $SETUP_TIME, start $START_TIME, official client $OFFICIAL_TIME, suite (build + tests) $SUITE_TIME, desktop $GUI_TIME, total $(elapsed "$T0")"
((rc == 0)) || die "the conformance suite failed (exit $rc); see the failures above"
((gui_rc == 0)) || die "the desktop app's session-mode test failed (exit $gui_rc); see above"
say "all green"
