#!/usr/bin/env bash
# Sets up and runs every test: installs what the tests need, checks formatting and lints,
# builds the binaries the end-to-end tests drive, and runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-test-deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo build (binaries for the end-to-end tests)"
cargo build --workspace --bins --locked
echo "== cargo test (unit tests, engine tests, CLI end-to-end tests)"
cargo test --workspace --locked
echo "== desktop app end-to-end tests (real window under Xvfb, WebDriver, keychain)"
./scripts/test-gui.sh
echo "== conformance: the same scenarios on the emulator, the real manager and the real web server"
./scripts/test-conformance.sh
