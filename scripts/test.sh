#!/usr/bin/env bash
# Sets up and runs every test: installs what the tests need, checks formatting and lints,
# builds the binaries the end-to-end tests drive, runs the whole suite, the desktop app's
# GUI tests, and the conformance tests against the real Backend.AI servers of tests/rigs/.
#
# The rigs' setup (a Debian 13 root, Python venvs, databases; minutes on a fresh machine,
# mostly downloads) runs in the background while the Rust code compiles and its tests run;
# the conformance step waits for it. Each step's time is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
T0=$SECONDS
TIMES=()
# The times so far, also when a step fails (set -e ends the script there).
print_times() {
  echo
  echo "== times"
  ((${#TIMES[@]} == 0)) || printf '  %s\n' "${TIMES[@]}"
  echo "  total $((SECONDS - T0)) s"
}
trap print_times EXIT
step() {  # step LABEL CMD...
  local label=$1 t=$SECONDS
  shift
  echo "== $label"
  "$@"
  TIMES+=("$(printf '%-44s %5d s' "$label" $((SECONDS - t)))")
}

step "install test dependencies" ./scripts/install-test-deps.sh

# The rigs need root (apt was done above; the rest needs chroot, mounts and setpriv).
RIG_LOG=target/rigs-setup.log
RIG_PID=""
if [[ $(id -u) == 0 ]]; then
  mkdir -p target
  (
    t=$SECONDS
    for rig in 23.09 26.9; do tests/rigs/rig "$rig" setup || exit 1; done
    echo "rigs set up in $((SECONDS - t)) s"
  ) >"$RIG_LOG" 2>&1 &
  RIG_PID=$!
fi

step "cargo fmt --check" cargo fmt --all -- --check
step "cargo clippy" cargo clippy --workspace --all-targets --locked -- -D warnings
step "cargo build (binaries for the end-to-end tests)" cargo build --workspace --bins --locked
step "cargo test (unit, engine, CLI end-to-end tests)" cargo test --workspace --locked
step "desktop app end-to-end tests (Xvfb, WebDriver, keychain)" ./scripts/test-gui.sh

if [[ -n $RIG_PID ]]; then
  t=$SECONDS
  if ! wait "$RIG_PID"; then
    tail -n 40 "$RIG_LOG" >&2
    echo "test.sh: setting up the Backend.AI rigs failed (whole log: $RIG_LOG)" >&2
    exit 1
  fi
  TIMES+=("$(printf '%-44s %5d s  (%s)' "waiting for the rigs' setup" $((SECONDS - t)) "$(tail -n 1 "$RIG_LOG")")")
  step "conformance: the real Backend.AI 23.09 and 26.9" ./scripts/test-conformance.sh
else
  echo "test.sh: not root: skipping the conformance tests against the real Backend.AI rigs" >&2
fi

