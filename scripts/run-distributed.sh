#!/usr/bin/env bash
# Runs Astral distributed on this machine: astral-auth, astral-social, astral-messaging and
# astral-gateway as four processes, against PostgreSQL (127.0.0.1:5432, user postgres, trust
# auth) and a NATS server of its own, secured as a deployment is: the secrets of
# `astral-admin secrets init` (mutual TLS between the processes, a NATS user per role,
# signed events, the auth service's key-encryption key).
#
#   scripts/run-distributed.sh            # build, start, wait until ready, run until Ctrl-C
#   scripts/run-distributed.sh --no-build # use the binaries already in target/release
#
# What it does:
#   1. makes sure PostgreSQL answers, starting the local one if it does not (needs root for
#      that; the server is left running afterwards);
#   2. creates the databases astral_auth, astral_social, astral_messaging if missing
#      (deploy/postgres/init.sql);
#   3. cargo build --release of the four binaries and astral-admin;
#   4. writes the deployment's secrets into $ASTRAL_SECRETS_DIR if it does not exist yet
#      (`astral-admin secrets init`; kept for the next run), starts nats-server with its
#      nats.conf, then the four processes in dependency order (auth, social, messaging,
#      gateway), each with its role's env file and once the one before answers gRPC health
#      (asked with the admin certificate); logs in $ASTRAL_LOG_DIR;
#   5. waits for the gateway's /readyz, prints the URL, and runs until Ctrl-C or until one
#      of the processes exits; on any exit it stops them all (SIGTERM, then SIGKILL).
#
# Settings (environment):
#   ASTRAL_HTTP_PORT (8000), ASTRAL_AUTH_PORT (50051), ASTRAL_SOCIAL_PORT (50052),
#   ASTRAL_MESSAGING_PORT (50053)       where the processes listen, on 127.0.0.1
#   ASTRAL_PG_URL (postgres://postgres@127.0.0.1:5432)  server of the three databases
#   ASTRAL_NATS_PORT (4322)             where this deployment's own NATS listens, on 127.0.0.1
#                                       (not 4222: a development NATS may be there already)
#   ASTRAL_SECRETS_DIR (target/distributed-secrets)  the deployment's secrets, made once
#   ASTRAL_LOG_DIR (target/distributed-logs)  one <process>.log each, replaced on each run
#   ASTRAL_STORAGE_URL (file://<repo>/target/distributed-attachments)  where attachments'
#                                       bytes go (s3://bucket with ASTRAL_S3_* for S3)
#   ASTRAL_START_TIMEOUT (90)           seconds to wait for each process to be ready
#   ASTRAL_NO_BUILD=1                   same as --no-build
#   RUST_LOG (info), OTEL_EXPORTER_OTLP_ENDPOINT  passed through to the processes
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

no_build=${ASTRAL_NO_BUILD:-0}
for arg in "$@"; do
  case "$arg" in
    --no-build) no_build=1 ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg (try --help)" >&2; exit 64 ;;
  esac
done

HTTP_PORT=${ASTRAL_HTTP_PORT:-8000}
AUTH_PORT=${ASTRAL_AUTH_PORT:-50051}
SOCIAL_PORT=${ASTRAL_SOCIAL_PORT:-50052}
MESSAGING_PORT=${ASTRAL_MESSAGING_PORT:-50053}
PG_URL=${ASTRAL_PG_URL:-postgres://postgres@127.0.0.1:5432}
PG_URL=${PG_URL%/}
NATS_PORT=${ASTRAL_NATS_PORT:-4322}
NATS_URL=nats://127.0.0.1:$NATS_PORT
SECRETS_DIR=${ASTRAL_SECRETS_DIR:-$ROOT/target/distributed-secrets}
LOG_DIR=${ASTRAL_LOG_DIR:-$ROOT/target/distributed-logs}
TIMEOUT=${ASTRAL_START_TIMEOUT:-90}
BIN_DIR=${CARGO_TARGET_DIR:-$ROOT/target}/release
export RUST_LOG=${RUST_LOG:-info}

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'run-distributed: %s\n' "$*" >&2; exit 1; }

# True if something accepts TCP connections on host:port (no nc here: bash's /dev/tcp).
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

# host and port of a URL like scheme://[user@]host:port[/path]
url_host() { local h=${1#*://}; h=${h%%/*}; h=${h##*@}; echo "${h%:*}"; }
url_port() { local h=${1#*://}; h=${h%%/*}; echo "${h##*:}"; }

wait_for() { # wait_for SECONDS COMMAND...: true once COMMAND succeeds, false on timeout
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}

# ---------------------------------------------------------------------------------------
# 1. PostgreSQL

pg_host=$(url_host "$PG_URL") pg_port=$(url_port "$PG_URL")
if ! port_open "$pg_host" "$pg_port"; then
  [[ $pg_host == 127.0.0.1 || $pg_host == localhost ]] ||
    die "PostgreSQL at $pg_host:$pg_port does not answer"
  [[ -d /etc/postgresql ]] || die "PostgreSQL does not answer on $pg_host:$pg_port and is not installed here"
  pg_version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)
  say "starting PostgreSQL $pg_version"
  pg_ctlcluster --skip-systemctl-redirect "$pg_version" main start ||
    die "could not start PostgreSQL (as root: pg_ctlcluster $pg_version main start)"
  wait_for 30 port_open "$pg_host" "$pg_port" || die "PostgreSQL did not come up"
fi

# ---------------------------------------------------------------------------------------
# 2. Databases

say "creating the databases if missing"
psql -X -q -v ON_ERROR_STOP=1 -d "$PG_URL/postgres" -f deploy/postgres/init.sql >/dev/null ||
  die "could not create the databases on $PG_URL"

# ---------------------------------------------------------------------------------------
# 3. Build

BINARIES=(astral-auth astral-social astral-messaging astral-gateway)
if [[ $no_build != 1 ]]; then
  say "cargo build --release"
  # --workspace: `--bin` alone only looks at the default member (the root `astral` package).
  cargo build --release --workspace "${BINARIES[@]/#/--bin=}" --bin=astral-admin
fi
for bin in "${BINARIES[@]}" astral-admin; do
  [[ -x $BIN_DIR/$bin ]] || die "$BIN_DIR/$bin is missing (run without --no-build)"
done

# ---------------------------------------------------------------------------------------
# 4. Processes

for port in "$AUTH_PORT" "$SOCIAL_PORT" "$MESSAGING_PORT" "$HTTP_PORT" "$NATS_PORT"; do
  ! port_open 127.0.0.1 "$port" || die "port $port is already taken (another Astral running?)"
done
mkdir -p "$LOG_DIR"

declare -A PIDS=()
stopping=0
stop_all() {
  ((stopping)) && return
  stopping=1
  ((${#PIDS[@]})) || return 0
  say "stopping ${!PIDS[*]}"
  local name pid deadline=$((SECONDS + 15))
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for name in "${!PIDS[@]}"; do
    pid=${PIDS[$name]}
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "$name did not stop within 15 s: SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The KEY=VALUE lines of the role's env file (comments skipped).
role_env() { grep -v '^#' "$SECRETS_DIR/$1.env"; }

start() { # start NAME ROLE ENV=VALUE...
  local name=$1 role=$2
  shift 2
  # shellcheck disable=SC2046 # one word per KEY=VALUE line: the env files hold no spaces
  env $(role_env "$role") "$@" "$BIN_DIR/$name" >"$LOG_DIR/$name.log" 2>&1 &
  PIDS[$name]=$!
}

alive_or_die() { # alive_or_die NAME: fail with the end of its log if the process exited
  kill -0 "${PIDS[$1]}" 2>/dev/null && return 0
  echo "--- last lines of $LOG_DIR/$1.log ---" >&2
  tail -n 30 "$LOG_DIR/$1.log" >&2 || true
  die "$1 exited during startup"
}

grpc_ready() { # grpc_ready NAME PORT: asked with the admin certificate
  alive_or_die "$1"
  # shellcheck disable=SC2046
  env $(role_env admin) sh deploy/docker/grpc-health.sh "127.0.0.1:$2" 2>/dev/null
}

http_ready() {
  alive_or_die astral-gateway
  curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$HTTP_PORT/readyz"
}

auth_url=https://127.0.0.1:$AUTH_PORT
social_url=https://127.0.0.1:$SOCIAL_PORT
messaging_url=https://127.0.0.1:$MESSAGING_PORT

if [[ ! -e $SECRETS_DIR ]]; then
  say "writing the deployment's secrets into $SECRETS_DIR"
  "$BIN_DIR/astral-admin" secrets init "$SECRETS_DIR" --nats-port "$NATS_PORT" >/dev/null
fi
grep -q "^listen: 127.0.0.1:$NATS_PORT\$" "$SECRETS_DIR/nats.conf" ||
  die "$SECRETS_DIR/nats.conf does not listen on port $NATS_PORT (made for another ASTRAL_NATS_PORT?)"

say "starting nats-server on :$NATS_PORT ($SECRETS_DIR/nats.conf)"
[[ -x /usr/sbin/nats-server ]] || command -v nats-server >/dev/null ||
  die "nats-server is not installed (apt-get install nats-server)"
nats_bin=$(command -v nats-server || echo /usr/sbin/nats-server)
"$nats_bin" -c "$SECRETS_DIR/nats.conf" >"$LOG_DIR/nats-server.log" 2>&1 &
PIDS[nats-server]=$!
wait_for 30 port_open 127.0.0.1 "$NATS_PORT" || die "nats-server did not come up"

say "starting astral-auth on :$AUTH_PORT"
start astral-auth auth ASTRAL_LISTEN="127.0.0.1:$AUTH_PORT" DATABASE_URL="$PG_URL/astral_auth" \
  NATS_URL="$NATS_URL"
wait_for "$TIMEOUT" grpc_ready astral-auth "$AUTH_PORT" || die "astral-auth not ready after ${TIMEOUT}s"

say "starting astral-social on :$SOCIAL_PORT"
start astral-social social ASTRAL_LISTEN="127.0.0.1:$SOCIAL_PORT" DATABASE_URL="$PG_URL/astral_social" \
  NATS_URL="$NATS_URL" ASTRAL_AUTH_URL="$auth_url"
wait_for "$TIMEOUT" grpc_ready astral-social "$SOCIAL_PORT" || die "astral-social not ready after ${TIMEOUT}s"

say "starting astral-messaging on :$MESSAGING_PORT"
start astral-messaging messaging ASTRAL_LISTEN="127.0.0.1:$MESSAGING_PORT" DATABASE_URL="$PG_URL/astral_messaging" \
  NATS_URL="$NATS_URL" ASTRAL_AUTH_URL="$auth_url" ASTRAL_SOCIAL_URL="$social_url" \
  ASTRAL_STORAGE_URL="${ASTRAL_STORAGE_URL:-file://$ROOT/target/distributed-attachments}"
wait_for "$TIMEOUT" grpc_ready astral-messaging "$MESSAGING_PORT" || die "astral-messaging not ready after ${TIMEOUT}s"

say "starting astral-gateway on :$HTTP_PORT"
start astral-gateway gateway ASTRAL_LISTEN="127.0.0.1:$HTTP_PORT" NATS_URL="$NATS_URL" \
  ASTRAL_AUTH_URL="$auth_url" ASTRAL_SOCIAL_URL="$social_url" ASTRAL_MESSAGING_URL="$messaging_url" \
  ASTRAL_WEB_DIR="$ROOT/web" ASTRAL_METRICS_LISTEN=127.0.0.1:9104
wait_for "$TIMEOUT" http_ready || die "astral-gateway not ready after ${TIMEOUT}s"

# ---------------------------------------------------------------------------------------
# 5. Run until Ctrl-C or until one of them exits

say "Astral (distributed) is up: http://127.0.0.1:$HTTP_PORT   logs: $LOG_DIR   Ctrl-C stops it"
set +e
wait -n "${PIDS[@]}"
status=$?
set -e
for name in "${!PIDS[@]}"; do
  if ! kill -0 "${PIDS[$name]}" 2>/dev/null; then
    echo "--- $name exited (status $status); last lines of $LOG_DIR/$name.log ---" >&2
    tail -n 30 "$LOG_DIR/$name.log" >&2 || true
  fi
done
exit 1
