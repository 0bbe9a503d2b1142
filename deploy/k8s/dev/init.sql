-- Creates the three services' databases; each service creates its own tables (migrations)
-- when it starts. Idempotent, so it serves both as the PostgreSQL image's init script
-- (docker-compose.yml mounts this folder into /docker-entrypoint-initdb.d, run once on an
-- empty volume) and for scripts/run-distributed.sh (`psql -f`, run every time).
-- psql only: \gexec runs each row of the query as a statement (CREATE DATABASE cannot run
-- inside a DO block or a function).
SELECT format('CREATE DATABASE %I', name)
FROM unnest(ARRAY['astral_auth', 'astral_social', 'astral_messaging']) AS name
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = name)
\gexec
