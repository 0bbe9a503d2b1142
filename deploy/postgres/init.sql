-- One role and one database per service: astral_auth, astral_social, astral_messaging, each
-- a LOGIN role owning the database of the same name, which no other role may connect to
-- (CONNECT is revoked from PUBLIC; superusers are not affected). Each service creates its
-- own tables (migrations) when it starts, as that role.
--
-- Idempotent, so it serves both the PostgreSQL image's first start (init.sh runs it with the
-- passwords from the environment; docker-compose.yml, deploy/k8s/dev) and
-- scripts/run-distributed.sh (`psql -f`, every time, trust authentication, no passwords).
--
-- Passwords are psql variables: `psql -v auth_password=... -v social_password=...
-- -v messaging_password=... -f init.sql`. A role's password is set whenever its variable is
-- given and not empty; without it a new role has none (it can log in only where pg_hba.conf
-- trusts the connection) and an existing one keeps its own.
--
-- A database made by an earlier version of this script belongs to the superuser, and so may
-- the tables its service created in it while connecting as the superuser: both are handed to
-- the service's role.
--
-- psql only: \gexec runs each row of a query as a statement (CREATE DATABASE cannot run
-- inside a DO block or a function); :'name' is a psql variable as a quoted literal.
\if :{?auth_password}
\else
  \set auth_password ''
\endif
\if :{?social_password}
\else
  \set social_password ''
\endif
\if :{?messaging_password}
\else
  \set messaging_password ''
\endif

CREATE TEMPORARY TABLE astral_service (name name PRIMARY KEY, password text NOT NULL);
INSERT INTO astral_service VALUES
  ('astral_auth', :'auth_password'),
  ('astral_social', :'social_password'),
  ('astral_messaging', :'messaging_password');

SELECT format('CREATE ROLE %I LOGIN', name)
FROM astral_service
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = name)
\gexec

SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', name, password)
FROM astral_service
WHERE password <> ''
\gexec

SELECT format('CREATE DATABASE %I OWNER %I', name, name)
FROM astral_service
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = name)
\gexec

-- Owned by its role (a database made by an earlier version belongs to the superuser), and
-- closed to everyone else: PUBLIC has CONNECT and TEMPORARY on every new database.
SELECT format('ALTER DATABASE %I OWNER TO %I', name, name),
       format('REVOKE ALL ON DATABASE %I FROM PUBLIC', name)
FROM astral_service
\gexec

-- The tables (with their sequences and indexes) that the superuser created in a service's
-- database before the service had a role of its own. Each \connect ends this session's
-- temporary table, which is no longer needed.
\connect astral_auth
SELECT format('ALTER TABLE public.%I OWNER TO astral_auth', tablename)
FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user
\gexec
\connect astral_social
SELECT format('ALTER TABLE public.%I OWNER TO astral_social', tablename)
FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user
\gexec
\connect astral_messaging
SELECT format('ALTER TABLE public.%I OWNER TO astral_messaging', tablename)
FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user
\gexec
