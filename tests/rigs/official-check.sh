#!/usr/bin/env bash
# The official client of the rig's own release (backend.ai-client, in the rig's venv) against
# the running rig, end to end: proof that the rig is a Backend.AI a real client works with,
# the same checks on every release. Usage: official-check.sh VERSION (or `rig VERSION
# official-check`). Prints one line per check and exits 0 only if all pass.
#
#   listing      backend.ai ps: rig-running RUNNING and rig-pending PENDING
#   echo         backend.ai app rig-running echo -b 127.0.0.1:P; 200 kB echoed
#   ttyd         backend.ai app rig-running ttyd; HTTP GET /health and a WebSocket echo
#   jupyter      backend.ai app rig-running jupyter; GET / follows to JupyterLab's page
#   ssh          backend.ai session download id_container + app sshd + ssh work@ 'echo ok'
#   session-ssh  backend.ai session ssh rig-running (its own key download, tunnel and ssh)
#   web-login    session mode through the web server: backend.ai login, ps
#   web-echo     session mode: backend.ai app rig-running echo; 200 kB echoed
#   web-logout   session mode: backend.ai logout
set -uo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
rig_load "${1:?usage: official-check.sh VERSION}"
T0=$SECONDS
TMP=$(mktemp -d "$R/tmp/official-check.XXXXXX")   # visible in the rig's root as ${TMP#$R}
chmod 755 "$TMP"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do timeout 10 tail --pid="$p" -f /dev/null 2>/dev/null || kill -KILL "$p" 2>/dev/null; done
  rm -rf "$TMP"
}
trap cleanup EXIT
failed=0
pass() { printf '  pass  %-12s %s\n' "$1" "$2"; }
fail() { printf '  FAIL  %-12s %s\n' "$1" "$2"; failed=$((failed + 1)); }

# bai MODE ARGS...: the official CLI in API or session mode; each mode its own HOME.
bai() { RIG_CLIENT_HOME=$TMP/home-$1 timeout 90 "$RIGS_DIR/rig" "$RIG_VERSION" client "$@"; }
# py ARGS...: the rig venv's Python (it has aiohttp).
py() { in_rig "$RIG_VENV/bin/python" "$@"; }
free_port() { py -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# app MODE APP PORT: `backend.ai app` in the background, until it listens.
app() {
  local mode=$1 name=$2 port=$3 i
  # exec: the PID is the client's own, which cleanup() sends Ctrl-C.
  RIG_CLIENT_HOME=$TMP/home-$mode exec "$RIGS_DIR/rig" "$RIG_VERSION" client "$mode" \
    app rig-running "$name" -b "127.0.0.1:$port" >"$TMP/app-$name-$mode.log" 2>&1 &
  PIDS+=($!)
  for ((i = 0; i < 150; i++)); do
    port_open "$port" && return 0
    kill -0 "${PIDS[-1]}" 2>/dev/null || break
    sleep 0.2
  done
  cat "$TMP/app-$name-$mode.log" >&2
  return 1
}

# echo_check PORT: 200 kB of random bytes come back unchanged. The socket stays open until
# then: the official client ends a tunnel when the local side half-closes.
echo_check() {
  py - "$1" <<'EOF'
import os, socket, sys
data = os.urandom(200_000)
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
s.sendall(data)
got = b""
while len(got) < len(data) and (chunk := s.recv(1 << 16)):
    got += chunk
sys.exit(0 if got == data else f"echoed {len(got)} of {len(data)} bytes")
EOF
}

ssh_work() {  # ssh_work PORT KEY CMD
  timeout 60 ssh -p "$1" -i "$2" -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=no \
    -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR work@127.0.0.1 "$3" </dev/null
}

echo "official client $BAI_VERSION against the Backend.AI $BAI_VERSION rig ($(curl -s "$ENDPOINT/"))"

out=$(bai api ps 2>&1)
if grep -qE '^rig-running .*RUNNING' <<<"$out" && grep -qE '^rig-pending .*PENDING' <<<"$out"; then
  pass listing "backend.ai ps: rig-running RUNNING, rig-pending PENDING"
else fail listing "backend.ai ps: $(tail -n 3 <<<"$out")"; fi

p=$(free_port)
if app api echo "$p" && err=$(echo_check "$p" 2>&1); then
  pass echo "backend.ai app rig-running echo -b 127.0.0.1:$p: 200 kB echoed"
else fail echo "echo tunnel: ${err:-no listener}"; fi

p=$(free_port)
if app api ttyd "$p" && err=$(py - "$p" 2>&1 <<'EOF'
import asyncio, sys, aiohttp
async def main(port):
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/health") as r:
            assert r.status == 200, r.status
        async with http.ws_connect(f"ws://127.0.0.1:{port}/ws") as ws:
            await ws.send_str("text-frame")
            assert (await ws.receive(timeout=15)).data == "text-frame"
            await ws.send_bytes(b"\x00binary")
            assert (await ws.receive(timeout=15)).data == b"\x00binary"
asyncio.run(main(int(sys.argv[1])))
EOF
); then
  pass ttyd "backend.ai app rig-running ttyd: GET /health 200, WebSocket text and binary echoed"
else fail ttyd "ttyd tunnel: $err"; fi

p=$(free_port)
if app api jupyter "$p" && code=$(curl -sS -L -o "$TMP/lab.html" -w '%{http_code}' --max-time 60 "http://127.0.0.1:$p/") \
   && [[ $code == 200 ]] && grep -q JupyterLab "$TMP/lab.html"; then
  pass jupyter "backend.ai app rig-running jupyter: GET / -> 200, JupyterLab's page"
else fail jupyter "jupyter tunnel: HTTP ${code:-none}"; fi

p=$(free_port)
mkdir -p "$TMP/key"
if out=$(bai api session download rig-running id_container --dest "${TMP#$R}/key" 2>&1) \
   && chmod 600 "$TMP/key/id_container" && app api sshd "$p" \
   && got=$(ssh_work "$p" "$TMP/key/id_container" 'echo "ok as $(whoami)"' 2>&1) && [[ $got == "ok as work" ]]; then
  pass ssh "backend.ai session download id_container + app sshd: ssh -> '$got'"
else fail ssh "ssh: ${got:-$out}"; fi

p=$(free_port)
mkdir -p "$TMP/home-api/.ssh"
# It downloads the key into its working directory (the rig's root) and moves it to ~/.ssh.
# Its own session and process group (setsid, in the background, so it does not fork) and a
# file for its output: this client now and then never exits after ssh has ended (its sshd
# proxy waits forever on the closed connection, seen on 23.09 and 26.9), and `timeout` would
# end only the first process while the rest kept a $(...) pipe open. The whole group is
# ended; what ssh printed still decides the check.
(cd "$TMP/home-api" && exec setsid "$RIGS_DIR/rig" "$RIG_VERSION" exec sh -c \
  "cd ${TMP#"$R"}/home-api && HOME=${TMP#"$R"}/home-api BACKEND_ENDPOINT=$ENDPOINT BACKEND_ACCESS_KEY=$ACCESS_KEY \
   BACKEND_SECRET_KEY=$SECRET_KEY exec backend.ai session ssh rig-running -p $p -o StrictHostKeyChecking=no \
   -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR echo session-ssh-ok" \
   </dev/null >"$TMP/session-ssh.log" 2>&1) &
ssh_pid=$!
hung=""
timeout 90 tail --pid="$ssh_pid" -f /dev/null || { hung=" (the client did not exit in 90 s: ended)"; kill -KILL -- "-$ssh_pid" 2>/dev/null; }
wait "$ssh_pid" 2>/dev/null
got=$(<"$TMP/session-ssh.log")
if grep -qx session-ssh-ok <<<"$got"; then
  pass session-ssh "backend.ai session ssh rig-running -p $p echo ... -> session-ssh-ok$hung"
else fail session-ssh "backend.ai session ssh$hung: $(tail -n 3 <<<"$got")"; fi

# Session mode: `backend.ai login` reads the user and the password from stdin when it has no
# terminal (setsid).
got=$(printf '%s\n%s\n' "$RIG_USER_EMAIL" "$RIG_USER_PASSWORD" | RIG_CLIENT_HOME=$TMP/home-session \
  timeout 60 setsid -w "$RIGS_DIR/rig" "$RIG_VERSION" client session login 2>&1)
out=$(bai session ps 2>&1)
if grep -q "Login succeeded" <<<"$got" && grep -qE '^rig-running .*RUNNING' <<<"$out"; then
  pass web-login "backend.ai login through $WEB_ENDPOINT, then ps: rig-running RUNNING"
else fail web-login "$(tail -n 2 <<<"$got") / $(tail -n 2 <<<"$out")"; fi

p=$(free_port)
if app session echo "$p" && err=$(echo_check "$p" 2>&1); then
  pass web-echo "session mode: backend.ai app rig-running echo: 200 kB echoed through the web server"
else fail web-echo "session-mode echo tunnel: ${err:-no listener}"; fi

got=$(bai session logout 2>&1)
if grep -qiE "logout done|logged out" <<<"$got"; then pass web-logout "backend.ai logout"
else fail web-logout "backend.ai logout: $got"; fi

echo "$( ((failed)) && echo "$failed FAILED" || echo "all passed") in $((SECONDS - T0)) s"
exit $((failed > 0))
