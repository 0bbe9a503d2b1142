#!/bin/sh
# Entrypoint of the service images (Dockerfile.service): runs astral-$ASTRAL_SERVICE.
# Its only job is the default listen address: the binaries default to 127.0.0.1 (right on a
# developer's machine, unreachable in a container), so unless ASTRAL_LISTEN is set the
# service listens on 0.0.0.0 at its standard port. `exec` keeps the binary as PID 1, so it
# receives SIGTERM itself and drains.
set -eu

case "${ASTRAL_SERVICE:-}" in
  auth) port=50051 ;;
  social) port=50052 ;;
  messaging) port=50053 ;;
  *) echo "astral-service: ASTRAL_SERVICE must be auth, social or messaging" >&2; exit 64 ;;
esac

: "${ASTRAL_LISTEN:=0.0.0.0:${port}}"
export ASTRAL_LISTEN

exec "/usr/local/bin/astral-${ASTRAL_SERVICE}" "$@"
