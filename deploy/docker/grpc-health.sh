#!/bin/sh
# grpc-health.sh [HOST:PORT | PORT] [SERVICE]
#
# Asks a gRPC server grpc.health.v1.Health/Check and exits 0 only if the answer is SERVING.
# It needs nothing but curl with HTTP/2 (Debian's has it): the request is a gRPC frame
# written by hand, so no grpc_health_probe binary is needed.
#
# Transport: when ASTRAL_TLS_CA, ASTRAL_TLS_CERT and ASTRAL_TLS_KEY are set (the process's
# own role files, as in DIR/<role>.env of `astral-admin secrets init DIR`), mutual TLS: the
# server's certificate is verified against the CA (role certificates name 127.0.0.1 and
# localhost) and this one is presented as the client's. Without them, HTTP/2 cleartext
# (ASTRAL_INSECURE_DEV=1 servers). Setting only some of the three is an error (exit 64).
#
# Without HOST:PORT it checks 127.0.0.1 at the port of $ASTRAL_LISTEN, or else the standard
# port of $ASTRAL_SERVICE (auth 50051, social 50052, messaging 50053). SERVICE defaults to ""
# (the server as a whole). Used by the images' HEALTHCHECK, the Kubernetes probes and
# scripts/run-distributed.sh.
set -eu

target=${1:-}
service=${2:-}

if [ -z "$target" ]; then
  if [ -n "${ASTRAL_LISTEN:-}" ]; then
    target=127.0.0.1:${ASTRAL_LISTEN##*:}
  else
    case "${ASTRAL_SERVICE:-}" in
      auth) target=127.0.0.1:50051 ;;
      social) target=127.0.0.1:50052 ;;
      messaging) target=127.0.0.1:50053 ;;
      *) echo "usage: $0 [HOST:PORT|PORT] [SERVICE]" >&2; exit 64 ;;
    esac
  fi
fi
case "$target" in
  *:*) ;;
  *) target=127.0.0.1:$target ;;
esac

# Mutual TLS with the process's own certificate, or cleartext h2c.
ca=${ASTRAL_TLS_CA:-} cert=${ASTRAL_TLS_CERT:-} key=${ASTRAL_TLS_KEY:-}
if [ -n "$ca" ] && [ -n "$cert" ] && [ -n "$key" ]; then
  set -- --http2 --cacert "$ca" --cert "$cert" --key "$key"
  url=https://${target}/grpc.health.v1.Health/Check
elif [ -z "$ca$cert$key" ]; then
  set -- --http2-prior-knowledge
  url=http://${target}/grpc.health.v1.Health/Check
else
  echo "$0: ASTRAL_TLS_CA, ASTRAL_TLS_CERT and ASTRAL_TLS_KEY must be set together" >&2
  exit 64
fi

# One byte as an octal escape for printf.
octal() { printf '\\%03o' "$1"; }

# HealthCheckRequest { service = 1 (string) }: empty message for "", else 0x0a LEN NAME.
# Names are short (< 128 bytes), so LEN is a one-byte varint. The gRPC frame is
# 0x00 (not compressed), a 4-byte big-endian length, then the message.
len=${#service}
if [ "$len" -ge 120 ]; then
  echo "$0: service name too long" >&2
  exit 64
fi
if [ "$len" -eq 0 ]; then
  frame='\000\000\000\000\000'
else
  frame="\\000\\000\\000\\000$(octal $((len + 2)))\\012$(octal "$len")"
fi

# HealthCheckResponse { status = 1 (enum) } with SERVING = 1: frame 00 00 00 00 02 08 01.
# Any gRPC error (unknown service, server not ready) comes as an empty body with a
# non-zero grpc-status in the trailers, so comparing the body is enough.
answer=$(
  # The frame holds octal escapes for printf to turn into bytes, so it is the format.
  # shellcheck disable=SC2059
  { printf "$frame"; printf '%s' "$service"; } |
    curl --silent --show-error "$@" --max-time "${GRPC_HEALTH_TIMEOUT:-3}" \
      -H 'content-type: application/grpc' -H 'te: trailers' \
      --data-binary @- --output - "$url" |
    od -An -v -tx1 | tr -d ' \n'
) || true

if [ "$answer" = "00000000020801" ]; then
  exit 0
fi
echo "grpc health: ${target} service '${service}' is not SERVING (response: ${answer:-none})" >&2
exit 1
