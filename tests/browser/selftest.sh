#!/usr/bin/env bash
# Runs the browser checks against real local apps, without Porthole, to show that the checks
# themselves work: two JupyterLab servers (each with its own HOME and root dir, started the
# way Backend.AI containers run them: no token, XSRF on), TensorBoard on logs from
# write_tb_logs.py, and a plain http.server. Checks:
#   a) jupyter.mjs on one http://127.0.0.1:P/
#   b) jupyter.mjs on http://jupyterlab-a.localhost:P1/ and http://jupyterlab-b.localhost:P2/
#      together (one browser context)
#   c) jupyter.mjs on http://127.0.0.1:P1/ and http://127.0.0.1:P2/ together: cookies ignore
#      ports, so this shows whether the servers' cookies collide (reported, not asserted)
#   d) tensorboard.mjs sees the scalar tag
#   e) browser-check.mjs: ok:true on JupyterLab, ok:false on http.server
# Needs scripts/install-browser-deps.sh first. Every server started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=tests/browser
VENV=target/apps-venv
[ -x "$VENV/bin/jupyter-lab" ] && [ -d "$B/node_modules/playwright-core" ] ||
  { echo "selftest: run scripts/install-browser-deps.sh first" >&2; exit 1; }

WORK=$(mktemp -d /tmp/porthole-browser-selftest.XXXXXX)
export PORTHOLE_SHOT_DIR=${PORTHOLE_SHOT_DIR:-$WORK/shots}
PIDS=()
passed=0 failed=0
cleanup() { # stops the servers; keeps $WORK (logs, screenshots) only when a check failed
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$failed" -eq 0 ]; then rm -rf "$WORK"; else echo "selftest: logs and screenshots kept in $WORK" >&2; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # URL NAME LOG
  local t0=$SECONDS
  until curl -sf -o /dev/null "$1"; do
    if [ $((SECONDS - t0)) -ge 60 ]; then echo "selftest: $2 did not come up; log:" >&2; cat "$3" >&2; exit 1; fi
    sleep 0.2
  done
}
start_jupyter() { # NAME PORT
  local d=$WORK/$1 root_flag=()
  mkdir -p "$d/home" "$d/root"
  [ "$(id -u)" -ne 0 ] || root_flag=(--allow-root)
  HOME=$d/home "$VENV/bin/jupyter" lab --no-browser "${root_flag[@]}" --ip 127.0.0.1 --port "$2" \
    --IdentityProvider.token='' --ServerApp.password='' --ServerApp.allow_remote_access=True \
    --ServerApp.root_dir="$d/root" >"$d/log" 2>&1 </dev/null &
  PIDS+=($!)
}
timed() { # LABEL CMD... : runs CMD, prints its JSON line and how long it took
  local label=$1 t0 rc=0 out
  shift
  t0=$(date +%s%N)
  out=$("$@" 2>"$WORK/stderr") || rc=$?
  echo "selftest: $label ($(( ($(date +%s%N) - t0) / 1000000 )) ms, exit $rc): $out"
  [ $rc -eq 0 ] || sed 's/^/    /' "$WORK/stderr"
  return $rc
}

P1=$(free_port); P2=$(free_port); PT=$(free_port); PH=$(free_port)
t0=$(date +%s%N)
start_jupyter a "$P1"; start_jupyter b "$P2"
TB_LOGS=$WORK/tb/run1
"$VENV/bin/python" $B/write_tb_logs.py "$TB_LOGS" porthole/loss >/dev/null
"$VENV/bin/tensorboard" --logdir "$WORK/tb" --host 127.0.0.1 --port "$PT" >"$WORK/tb.log" 2>&1 </dev/null &
PIDS+=($!)
mkdir -p "$WORK/www"
"$VENV/bin/python" -m http.server "$PH" --bind 127.0.0.1 --directory "$WORK/www" >"$WORK/www.log" 2>&1 </dev/null &
PIDS+=($!)
wait_http "http://127.0.0.1:$P1/api" jupyterlab-a "$WORK/a/log"
wait_http "http://127.0.0.1:$P2/api" jupyterlab-b "$WORK/b/log"
wait_http "http://127.0.0.1:$PT/" tensorboard "$WORK/tb.log"
wait_http "http://127.0.0.1:$PH/" http.server "$WORK/www.log"
echo "selftest: servers up in $(( ($(date +%s%N) - t0) / 1000000 )) ms (jupyterlab $P1 $P2, tensorboard $PT, http.server $PH)"

check() { if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi; }
fails() { ! "$@"; }
check timed "a) jupyter one URL" node $B/jupyter.mjs "http://127.0.0.1:$P1/"
check timed "b) jupyter two *.localhost" node $B/jupyter.mjs "http://jupyterlab-a.localhost:$P1/" "http://jupyterlab-b.localhost:$P2/"
timed "c) jupyter two 127.0.0.1 ports (informational)" node $B/jupyter.mjs "http://127.0.0.1:$P1/" "http://127.0.0.1:$P2/" || true
check timed "d) tensorboard" node $B/tensorboard.mjs "http://127.0.0.1:$PT/" porthole/loss
export PORTHOLE_BROWSER_RESULT=$WORK/browser-results.jsonl
check timed "e) browser-check on JupyterLab" $B/browser-check.sh "http://jupyterlab-a.localhost:$P1/"
check fails timed "e) browser-check on http.server (must say ok:false)" $B/browser-check.sh "http://127.0.0.1:$PH/"
check python3 -c 'import json, sys; rows = [json.loads(l) for l in open(sys.argv[1])]; sys.exit([r["ok"] for r in rows] != [True, False])' "$PORTHOLE_BROWSER_RESULT"
echo "selftest: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
