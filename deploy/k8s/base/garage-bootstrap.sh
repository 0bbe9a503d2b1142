#!/bin/sh
# Makes Astral's Garage ready for the messaging service, idempotently, through Garage's admin
# API (v1, Garage 1.x): waits for the node, gives it a role in a layout and applies that
# layout if it has none yet, creates the bucket of ASTRAL_STORAGE_URL if it is missing,
# imports the messaging service's S3 key (from `astral-admin secrets init`) if Garage does
# not know it yet, and allows that key to read and write the bucket. Anything already there
# is left as it is, so it runs on every start: Compose's `garage-init` before the messaging
# service starts, Kubernetes' Job `garage-bootstrap` on every apply. Exit status 0 only when
# the key can read and write the bucket.
#
# Garage's own image holds the garage binary and nothing else (no shell), so this runs in a
# small image with sh and curl (curlimages/curl) and speaks HTTP to Garage's admin port.
#
# Settings (environment):
#   GARAGE_ADMIN_URL                  Garage's admin API (http://garage:3903)
#   GARAGE_ADMIN_TOKEN_FILE           the file holding its token (garage.admin-token)
#   ASTRAL_STORAGE_URL                s3://<bucket>, the messaging service's own setting: the
#                                     bucket to create
#   ASTRAL_S3_ACCESS_KEY_ID_FILE      the file holding the messaging service's key id
#                                     (messaging.s3.id: GK and 24 hex digits)
#   ASTRAL_S3_SECRET_ACCESS_KEY_FILE  the file holding its secret (messaging.s3.secret)
#   GARAGE_ZONE                       zone of the node's role in a new layout (astral)
#   GARAGE_CAPACITY                   capacity of that role in bytes (10000000000): with one
#                                     node a weight only, it limits nothing
#   GARAGE_WAIT_SECONDS               how long to wait for Garage to answer (180)
set -eu

admin_url=${GARAGE_ADMIN_URL:-http://garage:3903}
zone=${GARAGE_ZONE:-astral}
capacity=${GARAGE_CAPACITY:-10000000000}
wait_seconds=${GARAGE_WAIT_SECONDS:-180}

say() { printf 'garage-bootstrap: %s\n' "$*"; }
fail() {
  say "$*" >&2
  exit 1
}

# One line, no line break: how `astral-admin secrets init` writes these files.
read_file() {
  [ -r "$1" ] || fail "cannot read $1"
  tr -d '\r\n' <"$1"
}

storage_url=${ASTRAL_STORAGE_URL:?set ASTRAL_STORAGE_URL to s3://<bucket>}
bucket=${storage_url#s3://}
case $storage_url in
  s3://*) ;;
  *) fail "ASTRAL_STORAGE_URL is $storage_url, not s3://<bucket>" ;;
esac
case $bucket in
  "" | */* | *[!a-z0-9.-]*) fail "ASTRAL_STORAGE_URL names no valid bucket: $storage_url" ;;
esac
token=$(read_file "${GARAGE_ADMIN_TOKEN_FILE:?set GARAGE_ADMIN_TOKEN_FILE}")
key_id=$(read_file "${ASTRAL_S3_ACCESS_KEY_ID_FILE:?set ASTRAL_S3_ACCESS_KEY_ID_FILE}")
secret=$(read_file "${ASTRAL_S3_SECRET_ACCESS_KEY_FILE:?set ASTRAL_S3_SECRET_ACCESS_KEY_FILE}")
# What Garage's key import accepts: GK and 12 bytes in hex, a secret of 32 bytes in hex.
case $key_id in
  GK*) key_hex=${key_id#GK} ;;
  *) key_hex= ;;
esac
case $key_hex in
  *[!0-9a-f]*) key_hex= ;;
esac
[ "${#key_hex}" -eq 24 ] ||
  fail "$ASTRAL_S3_ACCESS_KEY_ID_FILE does not hold a Garage key id (GK and 24 hex digits)"
case $secret in
  *[!0-9a-f]*) secret= ;;
esac
[ "${#secret}" -eq 64 ] || fail "$ASTRAL_S3_SECRET_ACCESS_KEY_FILE does not hold 64 hex digits"

# The token and the key's secret never appear on a command line (other processes could read
# it): curl reads the header from a file, request bodies from stdin.
umask 077
work=$(mktemp -d "${TMPDIR:-/tmp}/garage-bootstrap.XXXXXX")
trap 'rm -rf "$work"' EXIT
printf 'header = "Authorization: Bearer %s"\n' "$token" >"$work/auth"
body=$work/body

# api METHOD PATH [JSON]: the HTTP status in $status ("000" when nothing answered), the body
# in $body.
api() {
  if [ $# -ge 3 ]; then
    status=$(printf '%s' "$3" | curl -sS --connect-timeout 3 --max-time 30 -K "$work/auth" \
      -X "$1" -H 'Content-Type: application/json' --data-binary @- \
      -o "$body" -w '%{http_code}' "$admin_url$2" 2>"$work/err") || status=000
  else
    status=$(curl -sS --connect-timeout 3 --max-time 30 -K "$work/auth" -X "$1" \
      -o "$body" -w '%{http_code}' "$admin_url$2" 2>"$work/err") || status=000
  fi
  [ "$status" != 000 ] || : >"$body"
}
# expect STATUS WHAT: fails unless the last call answered STATUS.
expect() {
  [ "$status" = "$1" ] || fail "$2: HTTP $status: $(head -c 400 "$body" 2>/dev/null) $(cat "$work/err")"
}
# field NAME: the first string value of NAME in the last answer (whatever the JSON layout).
# shellcheck disable=SC2020 # each of the five characters becomes a line break
field() {
  tr ',{}[]' '\n\n\n\n\n' <"$body" |
    sed -n "s/^[[:space:]]*\"$1\"[[:space:]]*:[[:space:]]*\"\\([^\"]*\\)\"[[:space:]]*\$/\\1/p" |
    head -n 1
}
# number NAME: likewise, a number.
# shellcheck disable=SC2020
number() {
  tr ',{}[]' '\n\n\n\n\n' <"$body" |
    sed -n "s/^[[:space:]]*\"$1\"[[:space:]]*:[[:space:]]*\\([0-9][0-9]*\\)[[:space:]]*\$/\\1/p" |
    head -n 1
}

# --- the node ----------------------------------------------------------------------------
say "waiting for Garage at $admin_url (up to ${wait_seconds}s)"
deadline=$(($(date +%s) + wait_seconds))
while :; do
  api GET /v1/status
  [ "$status" = 000 ] || [ "$status" -ge 500 ] || break
  [ "$(date +%s)" -lt "$deadline" ] || fail "Garage did not answer at $admin_url within ${wait_seconds}s: $(cat "$work/err")"
  sleep 2
done
[ "$status" != 403 ] || fail "Garage refused the admin token (is GARAGE_ADMIN_TOKEN_FILE the one Garage runs with?)"
expect 200 "GET /v1/status"
node=$(field node)
layout_version=$(number layoutVersion)
[ -n "$node" ] && [ -n "$layout_version" ] || fail "unexpected answer to GET /v1/status: $(head -c 400 "$body")"
say "node $node, layout version $layout_version"

# --- the layout: one role for this node, once --------------------------------------------
if [ "$layout_version" -eq 0 ]; then
  api POST /v1/layout "[{\"id\":\"$node\",\"zone\":\"$zone\",\"capacity\":$capacity,\"tags\":[\"astral\"]}]"
  expect 200 "stage the node's role"
  api POST /v1/layout/apply '{"version":1}'
  expect 200 "apply layout version 1"
  say "layout version 1 applied: node $node in zone $zone"
else
  say "a layout exists (version $layout_version): left as it is"
fi

# Buckets and keys need the layout in force: wait until the cluster says it is usable.
while :; do
  api GET /health
  [ "$status" != 200 ] || break
  [ "$(date +%s)" -lt "$deadline" ] || fail "Garage is not healthy within ${wait_seconds}s: $(head -c 400 "$body")"
  sleep 1
done

# --- the bucket -----------------------------------------------------------------------------
api GET "/v1/bucket?globalAlias=$bucket"
if [ "$status" = 404 ]; then
  api POST /v1/bucket "{\"globalAlias\":\"$bucket\"}"
  if [ "$status" = 409 ]; then
    api GET "/v1/bucket?globalAlias=$bucket" # made meanwhile by another run
  else
    expect 200 "create bucket $bucket"
    say "bucket $bucket created"
  fi
else
  say "bucket $bucket exists"
fi
expect 200 "bucket $bucket"
bucket_id=$(field id)
[ -n "$bucket_id" ] || fail "no id for bucket $bucket: $(head -c 400 "$body")"

# --- the key --------------------------------------------------------------------------------
api GET "/v1/key?id=$key_id&showSecretKey=true"
if [ "$status" = 404 ]; then
  api POST /v1/key/import \
    "{\"accessKeyId\":\"$key_id\",\"secretAccessKey\":\"$secret\",\"name\":\"astral-messaging\"}"
  expect 200 "import key $key_id"
  say "key $key_id imported"
else
  expect 200 "key $key_id"
  # A key of that id with another secret would leave the messaging service refused with
  # every request: say so now rather than later.
  [ "$(field secretAccessKey)" = "$secret" ] ||
    fail "Garage knows key $key_id with another secret than $ASTRAL_S3_SECRET_ACCESS_KEY_FILE's; delete it (garage key delete) or give the messaging service that secret"
  say "key $key_id exists"
fi

# --- read and write for the key on the bucket (idempotent) -----------------------------------
api POST /v1/bucket/allow \
  "{\"bucketId\":\"$bucket_id\",\"accessKeyId\":\"$key_id\",\"permissions\":{\"read\":true,\"write\":true,\"owner\":false}}"
expect 200 "allow key $key_id on bucket $bucket"
say "key $key_id may read and write bucket $bucket: done"
