#!/usr/bin/env bash
# Runs every `cargo fuzz` target in fuzz/ for N seconds each (default 60), one at a time,
# on one core, growing the committed corpus in fuzz/corpus/TARGET. Crashes land in
# fuzz/artifacts/TARGET and stop the script with a non-zero exit.
#
#   ./scripts/fuzz.sh            # every target, 60 s each
#   ./scripts/fuzz.sh 300        # every target, 5 min each
#   ./scripts/fuzz.sh 60 signing endpoint
#   FUZZ_CMIN=1 ./scripts/fuzz.sh   # then minimise each corpus (cargo fuzz cmin)
#
# cargo-fuzz needs nightly compiler flags; on stable Rust they are enabled with
# RUSTC_BOOTSTRAP=1 (only for this script's builds, in fuzz/'s own workspace and target dir).
set -euo pipefail

seconds="${1:-60}"
shift || true
cd "$(dirname "$0")/../fuzz"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --help >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

cargo fuzz build -O
for target in "${targets[@]}"; do
    echo "== $target: ${seconds}s" >&2
    mkdir -p "corpus/$target"
    log="target/fuzz-$target.log"
    mkdir -p target
    status=0
    cargo fuzz run -O "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E '^(stat::number_of_executed_units|Done )' "$log" || true
    if [ "$status" -ne 0 ]; then
        grep -A3 -E 'panicked|^SUMMARY|ERROR: libFuzzer' "$log" >&2 || true
        echo "fuzz target $target failed (log: fuzz/$log); see fuzz/artifacts/$target" >&2
        exit 1
    fi
    if [ "${FUZZ_CMIN:-0}" = 1 ]; then
        cargo fuzz cmin -O "$target" "corpus/$target" >/dev/null 2>&1
    fi
done
