#!/bin/sh
# Init script of the PostgreSQL image (run once, on an empty data directory, from
# /docker-entrypoint-initdb.d): runs init.sql with the services' passwords from the
# environment, so that each service's role can log in with the password in its DATABASE_URL.
# Used by docker-compose.yml and deploy/k8s/dev (scripts/run-distributed.sh runs init.sql
# itself, without passwords, under trust authentication).
#
#   ASTRAL_AUTH_DB_PASSWORD, ASTRAL_SOCIAL_DB_PASSWORD, ASTRAL_MESSAGING_DB_PASSWORD  required
#   ASTRAL_INIT_SQL   where init.sql is (/etc/astral-postgres/init.sql)
set -eu

: "${ASTRAL_AUTH_DB_PASSWORD:?password of the role astral_auth}"
: "${ASTRAL_SOCIAL_DB_PASSWORD:?password of the role astral_social}"
: "${ASTRAL_MESSAGING_DB_PASSWORD:?password of the role astral_messaging}"

# The image's entrypoint has started a server on the local socket only, and set PGPASSWORD.
psql -X -q -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
  -v auth_password="$ASTRAL_AUTH_DB_PASSWORD" \
  -v social_password="$ASTRAL_SOCIAL_DB_PASSWORD" \
  -v messaging_password="$ASTRAL_MESSAGING_DB_PASSWORD" \
  -f "${ASTRAL_INIT_SQL:-/etc/astral-postgres/init.sql}"
