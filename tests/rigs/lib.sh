# Helpers of the Backend.AI rigs (sourced by ./rig). One rig per Backend.AI release; the
# release's own settings are in VERSION/rig.env, everything else is the same for all of them.
# shellcheck shell=bash

RIGS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$RIGS_DIR/../.." && pwd)"

log() { echo "[rig $RIG_VERSION $(date +%H:%M:%S)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# What every rig shares (accounts, ids); ports, keys and paths differ per release.
# shellcheck source=rig.env
source "$RIGS_DIR/rig.env"

# The variables the rig's processes get (they run with `env -i`).
RIG_VARS=($(sed -n 's/^\([A-Z_0-9]*\)=.*/\1/p' "$RIGS_DIR/rig.env") BAI_VERSION BAI_API_VERSION IMAGE ACCESS_KEY SECRET_KEY
  MANAGER_PORT MANAGER_INTERNAL_PORT WEB_PORT PG_PORT REDIS_PORT ETCD_PORT ETCD_PEER_PORT
  ETCD_NAMESPACE AGENT_RPC_PORT AIOMON_TERMUI_PORT AIOMON_WEBUI_PORT SSHD_PORT TTYD_PORT
  JUPYTER_PORT ECHO_PORT ECHO2_PORT VNC_PORT RIG_ETC RIG_RUN RIG_LOG RIG_DATA RIG_BIN
  WORK_HOME WEB_STATIC ENDPOINT WEB_ENDPOINT)

# rig_load VERSION: reads VERSION/rig.env and derives the paths.
rig_load() {
  RIG_VERSION=$1
  [[ -f $RIGS_DIR/$RIG_VERSION/rig.env ]] \
    || { echo "rig: no rig for Backend.AI '$RIG_VERSION' (there are: $(rig_versions))" >&2; exit 2; }
  MANAGER_INTERNAL_PORT=""
  # shellcheck source=/dev/null
  source "$RIGS_DIR/$RIG_VERSION/rig.env"
  R=$RIG_CHROOT                       # the root the processes run in ("" = the host)
  H=$R$IN_STATE                       # the state directory, as the host sees it
  RIG_ETC=$IN_STATE/etc               # configs, keys
  RIG_RUN=$IN_STATE/run               # PID files, fault switches
  RIG_LOG=$IN_STATE/log
  RIG_DATA=$IN_STATE/data             # PostgreSQL, Redis, etcd
  RIG_BIN=$IN_STATE/bin               # copies of our scripts (a chroot cannot see this repository)
  RIG_VENV=$IN_STATE/venv             # manager, web server and official client of this release
  RIG_JUPYTER_VENV=$IN_STATE/jupyter-venv
  WEB_STATIC=$RIG_ETC/webui-static
  BAI=$RIG_VENV/bin/backend.ai
  PG_BIN=/usr/lib/postgresql/$PG_VERSION_MAJOR/bin
  ENDPOINT=http://$HOST:$MANAGER_PORT
  WEB_ENDPOINT=http://$HOST:$WEB_PORT
}

rig_versions() { (cd "$RIGS_DIR" && ls -d */ | tr -d / | tr '\n' ' '); }

# ---- running things in the rig's root ---------------------------------------------------
# rig_prefix USER: sets PFX to the argv prefix that runs a command in the rig's root as USER
# with a clean environment. chroot, env and setpriv all exec, so the command keeps the PID of
# the first process (which is what the PID files record).
rig_prefix() {
  local user=$1 v home
  PFX=()
  [[ -n $R ]] && PFX=(chroot "$R")
  PFX+=(/usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    LANG=C.UTF-8 TZ=UTC)
  for v in "${RIG_VARS[@]}"; do PFX+=("$v=${!v}"); done
  if [[ $user == root ]]; then
    PFX+=(HOME=/root)
  else
    home=$(awk -F: -v u="$user" '$1 == u {print $6}' "$R/etc/passwd")
    PFX+=(HOME="$home" USER="$user" /usr/bin/setpriv --reuid="$user" --regid="$user" --init-groups)
  fi
}
in_rig() { local PFX; rig_prefix root; "${PFX[@]}" "$@"; }
as_user() { local user=$1 PFX; shift; rig_prefix "$user"; "${PFX[@]}" "$@"; }

# The kernel file systems a chroot needs; only the mounts this rig made are released.
ensure_mounts() {
  [[ -n $R ]] || return 0
  [[ -x $R$PYTHON ]] || die "no root at $R (run: tests/rigs/rig $RIG_VERSION setup)"
  mountpoint -q "$R/proc" || mount -t proc proc "$R/proc"
  mountpoint -q "$R/sys" || mount --bind /sys "$R/sys"
  mountpoint -q "$R/dev" || mount --bind /dev "$R/dev"
  mountpoint -q "$R/dev/pts" || mount --bind /dev/pts "$R/dev/pts"
  if [[ -d /dev/shm ]] && ! mountpoint -q "$R/dev/shm"; then mount --bind /dev/shm "$R/dev/shm"; fi
}
release_mounts() {
  [[ -n $R ]] || return 0
  local m
  for m in dev/shm dev/pts dev sys proc; do
    if mountpoint -q "$R/$m"; then umount "$R/$m" || umount -l "$R/$m"; fi
  done
}

# ---- services: $H/run/NAME.pid holds the PID, NAME.cmd a pattern its command line matches,
# so that only processes this rig started are ever signalled.
service_exists() { [[ -f $H/run/$1.pid ]] && kill -0 "$(<"$H/run/$1.pid")" 2>/dev/null; }

service_alive() {
  local pid try
  [[ -f $H/run/$1.pid && -f $H/run/$1.cmd ]] || return 1
  pid=$(<"$H/run/$1.pid")
  for try in 1 2 3; do   # a process renaming itself (setproctitle) shows a torn cmdline briefly
    [[ -r /proc/$pid/cmdline ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qE -- "$(<"$H/run/$1.cmd")" && return 0
    sleep 0.1
  done
  return 1
}

# start_service NAME PATTERN USER CMD...: starts CMD detached in the rig's root as USER.
start_service() {
  local name=$1 pattern=$2 user=$3 PFX pid i
  shift 3
  if service_alive "$name"; then return 0; fi
  rig_prefix "$user"
  mkdir -p "$H/run" "$H/log"
  echo "===== $(date -Is) start $name =====" >>"$H/log/$name.log"
  setsid "${PFX[@]}" "$@" </dev/null >>"$H/log/$name.log" 2>&1 &
  pid=$!
  echo "$pid" >"$H/run/$name.pid"
  printf '%s' "$pattern" >"$H/run/$name.cmd"
  for ((i = 0; i < 100; i++)); do
    service_alive "$name" && { log "started $name (pid $pid)"; return 0; }
    service_exists "$name" || break
    sleep 0.05
  done
  service_exists "$name" && { log "started $name (pid $pid)"; return 0; }
  log "$name exited at once; its log ends:"; tail -n 20 "$H/log/$name.log" >&2
  return 1
}

# stop_service NAME [SIGNAL]: signals it and waits (20 s, then KILL) until it is gone.
stop_service() {
  local name=$1 sig=${2:-TERM} pid i
  [[ -f $H/run/$name.pid ]] || return 0
  pid=$(<"$H/run/$name.pid")
  if service_alive "$name"; then
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do service_alive "$name" || break; sleep 0.2; done
    if service_alive "$name"; then
      log "$name (pid $pid) ignored SIG$sig for 20 s: KILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped $name"
  fi
  rm -f "$H/run/$name.pid" "$H/run/$name.cmd"
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# wait_port SERVICE PORT SECONDS: until something accepts on PORT, or SERVICE died.
wait_port() {
  local name=$1 port=$2 secs=$3 i
  for ((i = 0; i < secs * 5; i++)); do
    port_open "$port" && return 0
    service_exists "$name" || break
    sleep 0.2
  done
  log "$name does not accept on port $port (waited up to ${secs} s); its log ends:"
  tail -n 30 "$H/log/$name.log" >&2
  return 1
}

# wait_http SERVICE URL SECONDS: until URL answers 2xx; prints the body.
wait_http() {
  local name=$1 url=$2 secs=$3 i body
  for ((i = 0; i < secs * 3; i++)); do
    body=$(curl -fsS --max-time 5 "$url" 2>/dev/null) && { printf '%s' "$body"; return 0; }
    service_exists "$name" || break
    sleep 0.3
  done
  log "$name does not answer GET $url; its log ends:"; tail -n 30 "$H/log/$name.log" >&2
  return 1
}

# ---- infrastructure ---------------------------------------------------------------------
start_postgres() {
  mkdir -p "$H/run/pgsock"; in_rig chown postgres:postgres "$RIG_RUN/pgsock"
  start_service postgres "postgres -D $RIG_DATA/pg" postgres "$PG_BIN/postgres" -D "$RIG_DATA/pg" \
    -c listen_addresses="$HOST" -p "$PG_PORT" -c unix_socket_directories="$RIG_RUN/pgsock" \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200
  wait_port postgres "$PG_PORT" 60
  local i
  for ((i = 0; i < 100; i++)); do
    as_user postgres "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PG_PORT" && return 0
    sleep 0.2
  done
  die "PostgreSQL does not get ready"
}

start_redis() {
  mkdir -p "$H/data/redis"; in_rig chown redis:redis "$RIG_DATA/redis"
  start_service redis "redis-server.*:$REDIS_PORT" redis /usr/bin/redis-server --bind "$HOST" \
    --port "$REDIS_PORT" --dir "$RIG_DATA/redis" --save "" --appendonly no --daemonize no
  wait_port redis "$REDIS_PORT" 30
}

start_etcd() {
  mkdir -p "$H/data/etcd"; chmod 700 "$H/data/etcd"; in_rig chown etcd:etcd "$RIG_DATA/etcd"
  start_service etcd "etcd --name $ETCD_NAMESPACE" etcd /usr/bin/etcd --name "$ETCD_NAMESPACE" \
    --data-dir "$RIG_DATA/etcd" \
    --listen-client-urls "http://$HOST:$ETCD_PORT" --advertise-client-urls "http://$HOST:$ETCD_PORT" \
    --listen-peer-urls "http://$HOST:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://$HOST:$ETCD_PEER_PORT" \
    --initial-cluster "$ETCD_NAMESPACE=http://$HOST:$ETCD_PEER_PORT" --log-level warn
  wait_port etcd "$ETCD_PORT" 30
}

psql_admin() {
  as_user postgres "$PG_BIN/psql" -h "$RIG_RUN/pgsock" -p "$PG_PORT" -U postgres \
    -v ON_ERROR_STOP=1 -qAt "$@"
}

# ---- configuration ----------------------------------------------------------------------
# render TEMPLATE OUT: ${VARS} substituted (only the rig's own variables).
render() {
  local vars v
  vars=$(for v in "${RIG_VARS[@]}"; do printf '${%s} ' "$v"; done)
  (export "${RIG_VARS[@]}"; envsubst "$vars" <"$1" >"$2.tmp") && mv "$2.tmp" "$2"
}

write_configs() {
  local f
  mkdir -p "$H/etc" "$H/run/ipc" "$H/log" "$H/bin" "$H/data" "$R$WEB_STATIC"
  : >"$H/etc/sshd_release.conf"   # sshd_config includes it; a release may have none
  for f in "$RIGS_DIR"/conf/*.in "$RIGS_DIR/$RIG_VERSION"/*.in; do
    render "$f" "$H/etc/$(basename "${f%.in}")"
  done
  for f in agent.py apps.py seed.py; do install -m 0644 "$RIGS_DIR/$f" "$H/bin/$f"; done
  install -m 0644 "$RIGS_DIR/service-ports.json" "$H/etc/service-ports.json"
  printf '<!doctype html><title>Backend.AI %s rig</title><p>Backend.AI web server %s (a Porthole test rig).\n' \
    "$BAI_VERSION" "$BAI_VERSION" >"$R$WEB_STATIC/index.html"
  # The state directory under one name for every release (the tests read etc/, run/, log/).
  [[ -z $R ]] || ln -sfn "root$IN_STATE" "$RIG_BASE/state"
  write_keys_env
}

# keys.env: how a client reaches this rig, in the official client's variables.
write_keys_env() {
  cat >"$RIG_BASE/keys.env.tmp" <<EOT
# Backend.AI $BAI_VERSION (API $BAI_API_VERSION), a Porthole test rig. Source it.
BACKEND_ENDPOINT=$ENDPOINT
BACKEND_ENDPOINT_TYPE=api
BACKEND_ACCESS_KEY=$ACCESS_KEY
BACKEND_SECRET_KEY=$SECRET_KEY
BACKEND_SSH_KEY=$RIG_BASE/state/etc/id_container
# Session mode: the web server in front of the manager (POST /server/login, then /func/...).
BACKEND_WEB_ENDPOINT=$WEB_ENDPOINT
BACKEND_USERNAME=$RIG_USER_EMAIL
BACKEND_PASSWORD=$RIG_USER_PASSWORD
EOT
  mv "$RIG_BASE/keys.env.tmp" "$RIG_BASE/keys.env"
}
