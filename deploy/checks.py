"""Structural checks of the deployment files, used by scripts/check-deploy.sh.

  python deploy/checks.py compose SECRETS < rendered.json   # `docker-compose --profile
                              # observability --profile tools config --format json`, rendered
                              # with ASTRAL_SECRETS_DIR=SECRETS (from `astral-admin secrets init`)
  python deploy/checks.py compose-loopback < rendered.json   # ports published on 127.0.0.1
                              # only, but the proxy's
  python deploy/checks.py dockerfiles                # the two Dockerfiles stay in step
  python deploy/checks.py caddy < adapted.json       # `caddy adapt` of deploy/proxy/Caddyfile
  python deploy/checks.py k8s dev|prod SECRETS < rendered.yaml   # `kubectl kustomize X`, X a
                              # copy of deploy/k8s/<overlay> whose secrets/ is SECRETS
  python deploy/checks.py nats-compose NATS_SERVER TMP < rendered.json   # runs nats-server
  python deploy/checks.py nats-k8s NATS_SERVER TMP < rendered-dev.yaml  # as Compose / dev do
  python deploy/checks.py garage GARAGE TMP < rendered.json   # runs a garage binary (1.x) with
                              # deploy/garage/garage.toml and Compose's settings, and
                              # bootstrap.sh against it, as garage-init does
  python deploy/checks.py push-compose SECRETS < rendered.json   # the Web Push (VAPID) key
  python deploy/checks.py push-k8s dev|prod SECRETS < rendered.yaml   # to messaging only,
                              # and its contact for the push services

`docker-compose config` proves the file is valid Compose; these check that it still says
what the project relies on (issue 8: two replicas each, proxy on :8000, health checks,
depends_on conditions, non-root hardening, one database per service; metrics on a port of
their own, the admin CLI, the observability services and the configs they mount; zero trust
inside: each process given its own role's secrets only, read-only, mutual TLS between them,
one database role per service, NATS with the deployment's nats.conf). Likewise
the schema validation proves that the rendered Kubernetes objects are well-formed, and `k8s`
checks what they mean: probes, limits, hardening, replicas, references, network isolation,
metrics. `caddy validate` proves the Caddyfile is valid; `caddy` checks that the proxy
refuses /metrics before it proxies anything. `nats-*` run the real nats-server with the NATS
command line of Compose or of the dev overlay and the generated nats.conf: the command line
must win over the file where it overrides it, and anonymous clients must be refused.
`garage` runs a real Garage with the repository's garage.toml (its paths and ports made
local) and the throwaway secrets, Compose's health check against it, and bootstrap.sh three
times (twice, then again after a restart): each run must succeed, and the messaging
service's key must then write and read an object of the bucket over S3 (curl's SigV4),
while another key is refused; a key of the same id with another secret makes it fail.
`push-*` check that the messaging service, and nothing else, gets the VAPID key that signs
its Web Push (`messaging.vapid.pem`, `ASTRAL_VAPID_KEY_FILE`) and a contact for the push
services (`ASTRAL_VAPID_SUBJECT`).
"""

import base64
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SERVICES = {"auth": 50051, "social": 50052, "messaging": 50053}
NEEDS = {"auth": [], "social": ["auth"], "messaging": ["auth", "social"]}
# Every Astral process serves Prometheus /metrics on a listener of its own
# (ASTRAL_METRICS_LISTEN), on this port in every container and pod; never the public port.
METRICS_PORT = 9090
METRICS_LISTEN = f"0.0.0.0:{METRICS_PORT}"
LOG_FORMATS = {"text", "json"}
# How long a gateway keeps an idle keep-alive connection (ASTRAL_IDLE_TIMEOUT_MS' default):
# a proxy in front must drop its idle connections to the gateways sooner.
GATEWAY_IDLE_TIMEOUT_S = 75
# The processes export traces over OTLP/gRPC only.
OTLP_GRPC_PORT = 4317
# Every process that has a role (`astral-admin secrets init`): its env file and its files.
ROLES = [*SERVICES, "gateway", "admin"]
# Files of a secrets directory that no process is given: the CA's private key.
NEVER_GIVEN = {"ca.key"}
# Where the Kubernetes pods mount their role's Secret.
K8S_SECRETS_DIR = "/etc/astral/secrets"
# The development mode that turns the internal plane's security off: never in a deployment.
INSECURE = "ASTRAL_INSECURE_DEV"
# The services' health probe in their image (deploy/docker/grpc-health.sh).
GRPC_HEALTH = "/usr/local/bin/astral-grpc-health"
# Garage, the attachments' object store (deploy/garage/): a pinned 1.x image, its config and
# bootstrap, the bucket the messaging service uses, its ports.
GARAGE_IMAGE = r"dxflrs/garage:v1\.[0-9]+\.[0-9]+"
GARAGE_TOML = "deploy/garage/garage.toml"
GARAGE_BOOTSTRAP = "deploy/garage/bootstrap.sh"
BUCKET = "astral-attachments"
STORAGE_URL = f"s3://{BUCKET}"
S3_PORT, GARAGE_RPC_PORT, GARAGE_ADMIN_PORT = 3900, 3901, 3903
# The one env-file variable that is a value, not a file: the S3 key's id (messaging.s3.id).
S3_KEY_ID = "ASTRAL_S3_ACCESS_KEY_ID"
S3_KEY_ID_FILE = "messaging.s3.id"
# The secret files that are no role's own, and who alone may be given each (Compose service
# or Kubernetes workload names; the bootstrap is garage-init in Compose, the Job
# garage-bootstrap in Kubernetes).
GARAGE_SECRETS = {
    "garage.rpc-secret": {"garage"},
    "garage.admin-token": {"garage", "garage-init", "garage-bootstrap"},
    "messaging.s3.id": {"messaging", "garage-init", "garage-bootstrap"},
    "messaging.s3.secret": {"messaging", "garage-init", "garage-bootstrap"},
}

# Web Push: the messaging service's VAPID key (a file of `secrets init`, its alone; a new one
# undoes every browser's subscription) and its contact for the push services (configuration).
VAPID_KEY_FILE = "messaging.vapid.pem"
VAPID_KEY_VAR = "ASTRAL_VAPID_KEY_FILE"
VAPID_SUBJECT_VAR = "ASTRAL_VAPID_SUBJECT"
# RFC 8292 §2.1: a mailto: or https: URI the push service may reach the operator at.
VAPID_SUBJECT = r"mailto:[^@\s]+@[^@\s]+\.[^@\s]+|https://[^/\s]+\.[^/\s]+(/\S*)?"
# Hosts Apple's push service refuses in the subject (403 BadJwtToken: no pushes to Safari and
# iOS): placeholders that resolve nowhere.
PLACEHOLDER_HOST = r"(.*\.)?(localhost|invalid|local|test)"


def role_env(secrets_dir, role):
    """The variables of SECRETS/<role>.env (KEY=VALUE lines: absolute paths, and the S3 key's
    id as it is)."""
    out = {}
    with open(os.path.join(secrets_dir, f"{role}.env")) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                key, _, value = line.partition("=")
                out[key] = value
    return out


def role_files(secrets_dir, role):
    """The variables of SECRETS/<role>.env that name a file: {KEY: absolute path}."""
    return {k: v for k, v in role_env(secrets_dir, role).items() if k != S3_KEY_ID}


def garage_toml():
    """deploy/garage/garage.toml, parsed."""
    import tomllib
    with open(os.path.join(ROOT, GARAGE_TOML), "rb") as f:
        return tomllib.load(f)


def check_garage_toml(need):
    """What the deployments rely on in garage.toml: one node, one copy, SQLite, both
    directories under /var/lib/garage (the volume), the APIs on their ports, no secret in it."""
    cfg = garage_toml()
    need(cfg.get("replication_factor") == 1, "garage.toml: replication_factor is not 1 (one node)")
    need(cfg.get("db_engine") == "sqlite", "garage.toml: db_engine is not sqlite")
    for d in ["metadata_dir", "data_dir"]:
        need(str(cfg.get(d, "")).startswith("/var/lib/garage/"), f"garage.toml: {d} is not under /var/lib/garage")
    need(port_number((cfg.get("s3_api") or {}).get("api_bind_addr", "0")) == S3_PORT,
         f"garage.toml: the S3 API is not on :{S3_PORT}")
    need(port_number((cfg.get("admin") or {}).get("api_bind_addr", "0")) == GARAGE_ADMIN_PORT,
         f"garage.toml: the admin API is not on :{GARAGE_ADMIN_PORT}")
    need(port_number(cfg.get("rpc_bind_addr", "0")) == GARAGE_RPC_PORT, f"garage.toml: RPC is not on :{GARAGE_RPC_PORT}")
    for key in ["rpc_secret", "rpc_secret_file"]:
        need(key not in cfg, f"garage.toml: sets {key} (the files come from GARAGE_RPC_SECRET_FILE)")
    for key in ["admin_token", "admin_token_file", "metrics_token"]:
        need(key not in (cfg.get("admin") or {}), f"garage.toml: sets admin.{key}")
    need(not cfg.get("allow_world_readable_secrets"), "garage.toml: allows world-readable secrets everywhere")
    return cfg


def nats_store_dir(conf_text):
    """The JetStream store_dir a nats.conf names."""
    m = re.search(r'^\s*store_dir:\s*"?([^"\n]+)"?\s*$', conf_text, re.M)
    return m.group(1) if m else None


def flag(args, *names):
    """The value after the first of the flags `names` in a command line (None if absent)."""
    for i, a in enumerate(args):
        if a in names and i + 1 < len(args):
            return args[i + 1]
        for n in names:
            if a.startswith(n + "="):
                return a.split("=", 1)[1]
    return None


def load_yaml(path):
    import yaml  # PyYAML: in the venv of scripts/check-deploy.sh
    with open(os.path.join(ROOT, path)) as f:
        return yaml.safe_load(f)


def mounted(svc, path, prefix=""):
    """The container path where a Compose service mounts the file `path` of this repo (the
    first one under `prefix`)."""
    for v in svc.get("volumes", []):
        if v.get("type") == "bind" and str(v.get("source", "")).endswith(path) \
                and str(v.get("target", "")).startswith(prefix):
            return v.get("target")
    return None


def secret_targets(cfg, svc):
    """A Compose service's secrets: {path in the container: file on the host}."""
    out = {}
    for s in svc.get("secrets") or []:
        out[s.get("target")] = ((cfg.get("secrets") or {}).get(s.get("source")) or {}).get("file")
    return out


def init_sql_path():
    """Where deploy/postgres/init.sh reads init.sql (its default ASTRAL_INIT_SQL)."""
    text = open(os.path.join(ROOT, "deploy/postgres/init.sh")).read()
    m = re.search(r"\$\{ASTRAL_INIT_SQL:-([^}]+)\}", text)
    return m.group(1) if m else None


def check_compose(cfg, secrets_dir, errors):
    services = cfg.get("services", {})

    def need(cond, msg):
        if not cond:
            errors.append(msg)

    for name in ["nats", "postgres", "garage", "garage-init", *SERVICES, "gateway", "proxy",
                 "otel-collector", "jaeger", "prometheus", "admin"]:
        need(name in services, f"service {name} is missing (rendered with every profile?)")
    if errors:
        return

    # NATS: the deployment's nats.conf, mounted read-only (a Compose secret) where the command
    # line names it; every interface; JetStream's store (the directory nats.conf names) on
    # the volume; no --store_dir, which nats-server refuses beside the file's.
    nats = services["nats"]
    nats_args = nats.get("command") or []
    conf_path = os.path.join(secrets_dir, "nats.conf")
    conf_text = open(conf_path).read()
    need(flag(nats_args, "-c", "--config") == conf_path,
         f"nats: not started with --config {conf_path} (the generated nats.conf)")
    need(secret_targets(cfg, nats) == {conf_path: conf_path},
         f"nats: given {sorted(secret_targets(cfg, nats))} rather than exactly nats.conf at its own path")
    need(flag(nats_args, "-a", "--addr", "--net") == "0.0.0.0",
         "nats: not listening on every interface (--addr 0.0.0.0): nats.conf says 127.0.0.1")
    need(flag(nats_args, "-p", "--port") == "4222", "nats: --port is not 4222")
    need(flag(nats_args, "-sd", "--store_dir") is None,
         "nats: --store_dir on the command line (nats-server refuses it beside nats.conf's store_dir)")
    store = nats_store_dir(conf_text)
    need(any(v.get("type") == "volume" and v.get("target") == store for v in nats.get("volumes", [])),
         f"nats: no named volume at the JetStream store_dir of nats.conf ({store})")
    need(re.search(r"(^|\s)(-js|--jetstream)(\s|$)", " ".join(nats_args)) or "jetstream" in conf_text,
         "nats: JetStream not enabled")
    monitor = flag(nats_args, "-m", "--http_port")
    need(monitor and f":{monitor}/healthz" in " ".join(nats.get("healthcheck", {}).get("test") or []),
         "nats: the health check does not use the monitoring port of the command line")

    pg = services["postgres"]
    need(any(v.get("target") == "/var/lib/postgresql/data" and v.get("type") == "volume"
             for v in pg.get("volumes", [])), "postgres: no named volume for its data")
    # init.sh in the init directory (run once, on an empty volume), init.sql where it reads it.
    init_sh = mounted(pg, "deploy/postgres/init.sh") or ""
    need(re.fullmatch(r"/docker-entrypoint-initdb\.d/[^/]+\.sh", init_sh),
         "postgres: deploy/postgres/init.sh not mounted as a .sh in /docker-entrypoint-initdb.d")
    need(mounted(pg, "deploy/postgres/init.sql") == init_sql_path(),
         f"postgres: deploy/postgres/init.sql not mounted at {init_sql_path()}, where init.sh reads it")
    need(not mounted(pg, "deploy/postgres/init.sql", prefix="/docker-entrypoint-initdb.d"),
         "postgres: init.sql mounted in /docker-entrypoint-initdb.d too (run without passwords)")
    need("healthcheck" in pg, "postgres: no healthcheck")
    pg_env = pg.get("environment", {})
    passwords = {n: pg_env.get(f"ASTRAL_{n.upper()}_DB_PASSWORD") for n in SERVICES}
    for n, pw in passwords.items():
        need(pw, f"postgres: ASTRAL_{n.upper()}_DB_PASSWORD not set (init.sh needs it)")
    need(len(set(passwords.values())) == len(passwords), "postgres: two services share a database password")
    need(pg_env.get("POSTGRES_PASSWORD") not in passwords.values(),
         "postgres: a service's password is the superuser's")

    # Zero trust inside: no process runs with the security of the internal plane off.
    for name, svc in services.items():
        need(INSECURE not in (svc.get("environment") or {}), f"{name}: sets {INSECURE}")
    need(INSECURE not in json.dumps(cfg), f"{INSECURE} appears in the rendered configuration")
    source_text = open(os.path.join(ROOT, "docker-compose.yml")).read()
    need(INSECURE not in re.sub(r"#.*", "", source_text), f"docker-compose.yml sets {INSECURE}")

    # Each Astral container: its own role's env file (the rendered environment holds exactly
    # the variables of SECRETS/<role>.env, and the source names that file and no other) and
    # exactly the files it names, as Compose secrets (read-only bind mounts) at the same
    # absolute path; no other file of the secrets directory, and no bind mount into it.
    source = load_yaml("docker-compose.yml")
    owners = {}
    for role in ROLES:
        svc = services[role]
        env = svc.get("environment") or {}
        want = role_env(secrets_dir, role)
        got = {k: env.get(k) for k in want}
        need(got == want, f"{role}: the environment is not {role}.env's: {got} != {want}")
        others = {k for r in ROLES if r != role for k, v in role_env(secrets_dir, r).items()
                  if env.get(k) == v and want.get(k) != v}
        need(not others, f"{role}: has another role's settings {sorted(others)}")
        env_files = source["services"][role].get("env_file") or []
        env_files = [env_files] if isinstance(env_files, str) else \
            [e if isinstance(e, str) else e.get("path") for e in env_files]
        need(env_files == [f"${{ASTRAL_SECRETS_DIR}}/{role}.env"],
             f"{role}: env_file is {env_files}, not [${{ASTRAL_SECRETS_DIR}}/{role}.env]")
        targets = secret_targets(cfg, svc)
        files = role_files(secrets_dir, role)
        need(targets == {p: p for p in files.values()},
             f"{role}: its secrets are {sorted(targets.items())}, not exactly the files of {role}.env at their paths")
        for f in targets:
            owners.setdefault(os.path.basename(f), set()).add(role)
    for name, svc in services.items():
        for v in svc.get("volumes") or []:
            need(not str(v.get("source", "")).startswith(secrets_dir),
                 f"{name}: bind-mounts {v.get('source')} from the secrets directory (use a read-only Compose secret)")
        for f in secret_targets(cfg, svc):
            need(os.path.basename(f) not in NEVER_GIVEN, f"{name}: is given {f}")
    for f, roles in owners.items():
        if f.startswith(tuple(f"{r}." for r in ROLES)):
            need(roles == {f.split(".")[0]}, f"{f}: given to {sorted(roles)}")
    # The containers read their 0600 files: they run as their owner.
    users = {services[r].get("user") for r in ROLES}
    need(len(users) == 1 and re.fullmatch(r"[0-9]+:[0-9]+", str(next(iter(users)))),
         f"the Astral containers do not all run as one numeric uid:gid (the secret files' owner): {users}")

    def hardened(name, svc):
        need(svc.get("read_only") is True, f"{name}: not read_only")
        need("ALL" in (svc.get("cap_drop") or []), f"{name}: capabilities not dropped")
        need(svc.get("healthcheck", {}).get("test"), f"{name}: no healthcheck")
        need((svc.get("deploy") or {}).get("replicas", 1) >= 2, f"{name}: fewer than 2 replicas")
        env = svc.get("environment", {})
        need("OTEL_EXPORTER_OTLP_ENDPOINT" in env, f"{name}: OTEL_EXPORTER_OTLP_ENDPOINT not passed through")
        need(env.get("ASTRAL_METRICS_LISTEN") == METRICS_LISTEN,
             f"{name}: ASTRAL_METRICS_LISTEN is not {METRICS_LISTEN} (metrics unreachable, or on the public port)")
        need(env.get("ASTRAL_LOG_FORMAT") in LOG_FORMATS,
             f"{name}: ASTRAL_LOG_FORMAT is {env.get('ASTRAL_LOG_FORMAT')!r}, not one of {sorted(LOG_FORMATS)}")
        need(port_number(env.get("ASTRAL_LISTEN", "0")) != METRICS_PORT,
             f"{name}: ASTRAL_LISTEN and ASTRAL_METRICS_LISTEN share port {METRICS_PORT}")

    for name, port in SERVICES.items():
        svc = services[name]
        env = svc.get("environment", {})
        hardened(name, svc)
        need(svc.get("build", {}).get("dockerfile") == "Dockerfile.service",
             f"{name}: not built from Dockerfile.service")
        need(svc.get("build", {}).get("args", {}).get("SERVICE") == name,
             f"{name}: build arg SERVICE is not {name}")
        need(env.get("ASTRAL_LISTEN") == f"0.0.0.0:{port}", f"{name}: ASTRAL_LISTEN is not 0.0.0.0:{port}")
        pw = passwords.get(name) or "?"
        need(env.get("DATABASE_URL") == f"postgres://astral_{name}:{pw}@postgres:5432/astral_{name}",
             f"{name}: DATABASE_URL is not role astral_{name} (with postgres's ASTRAL_{name.upper()}_DB_PASSWORD) "
             f"on database astral_{name}")
        need(env.get("NATS_URL") == "nats://nats:4222", f"{name}: NATS_URL")
        deps = svc.get("depends_on", {})
        for dep in ["postgres", "nats", *NEEDS[name]]:
            need(deps.get(dep, {}).get("condition") == "service_healthy",
                 f"{name}: does not wait for {dep} to be healthy")
        for dep in NEEDS[name]:
            key = f"ASTRAL_{dep.upper()}_URL"
            need(env.get(key) == f"https://{dep}:{SERVICES[dep]}", f"{name}: {key} is not https://{dep}:{SERVICES[dep]}")

    gw = services["gateway"]
    env = gw.get("environment", {})
    hardened("gateway", gw)
    need(gw.get("build", {}).get("dockerfile") == "Dockerfile.gateway", "gateway: not built from Dockerfile.gateway")
    need(env.get("ASTRAL_LISTEN") == "0.0.0.0:8000", "gateway: ASTRAL_LISTEN")
    # No database credentials: no URL, no password of any role.
    need("DATABASE_URL" not in env, "gateway: has a DATABASE_URL")
    for var, value in env.items():
        need("postgres://" not in str(value) and str(value) not in set(passwords.values()) | {pg_env.get("POSTGRES_PASSWORD")},
             f"gateway: {var} holds database credentials")
    for dep, port in SERVICES.items():
        need(env.get(f"ASTRAL_{dep.upper()}_URL") == f"https://{dep}:{port}", f"gateway: ASTRAL_{dep.upper()}_URL is not https://{dep}:{port}")
        need(gw.get("depends_on", {}).get(dep, {}).get("condition") == "service_healthy",
             f"gateway: does not wait for {dep}")
    need("/readyz" in " ".join(gw["healthcheck"]["test"]), "gateway: healthcheck is not /readyz")
    # One proxy in front (Caddy): the client is the last X-Forwarded-For entry.
    need(str(env.get("ASTRAL_TRUSTED_PROXY_HOPS")) == "1",
         "gateway: ASTRAL_TRUSTED_PROXY_HOPS is not 1 (Caddy in front)")
    need("ASTRAL_TRUST_FORWARDED_FOR" not in env, "gateway: sets the old ASTRAL_TRUST_FORWARDED_FOR")

    proxy = services["proxy"]
    need(any(p.get("target") == 8000 and str(p.get("published")) == "8000"
             for p in proxy.get("ports", [])), "proxy: does not publish :8000")
    need(proxy.get("depends_on", {}).get("gateway", {}).get("condition") == "service_healthy",
         "proxy: does not wait for the gateways")
    need(not set(proxy.get("networks", {})) & {"backend"}, "proxy: must not be on the backend network")
    # Only the proxy leads in (and the observability UIs, on loopback): no Astral port,
    # metrics included, is published on the host.
    for name in ["postgres", "nats", *SERVICES, "gateway", "admin"]:
        need(not services[name].get("ports"), f"{name}: publishes a port on the host")
    check_compose_loopback(cfg, errors)
    check_compose_garage(cfg, secrets_dir, need)

    # --- optional profiles ----------------------------------------------------------------
    for name, profile in [("otel-collector", "observability"), ("jaeger", "observability"),
                          ("prometheus", "observability"), ("admin", "tools")]:
        need(services[name].get("profiles") == [profile], f"{name}: not (only) in the profile {profile}")

    # The admin CLI: its own target of Dockerfile.service, the services' gRPC URLs, on the
    # backend network only, hardened like the Astral services.
    admin = services["admin"]
    env = admin.get("environment", {})
    need(admin.get("build", {}).get("dockerfile") == "Dockerfile.service"
         and admin.get("build", {}).get("target") == "admin",
         "admin: not built from Dockerfile.service, target admin")
    need("DATABASE_URL" not in env, "admin: has a DATABASE_URL")
    for dep in ["auth", "messaging"]:
        key = f"ASTRAL_{dep.upper()}_URL"
        need(env.get(key) == f"https://{dep}:{SERVICES[dep]}", f"admin: {key} is not https://{dep}:{SERVICES[dep]}")
        need(admin.get("depends_on", {}).get(dep, {}).get("condition") == "service_healthy",
             f"admin: does not wait for {dep}")
    need(set(admin.get("networks", {})) == {"backend"}, "admin: must be on the backend network only")
    need(admin.get("read_only") is True, "admin: not read_only")
    need("ALL" in (admin.get("cap_drop") or []), "admin: capabilities not dropped")

    # Prometheus scrapes every replica of each Astral service at its metrics port.
    prom = services["prometheus"]
    need("backend" in prom.get("networks", {}), "prometheus: not on the backend network")
    target = mounted(prom, "deploy/prometheus/prometheus.yml")
    need(target == "/etc/prometheus/prometheus.yml",
         "prometheus: deploy/prometheus/prometheus.yml not mounted at /etc/prometheus/prometheus.yml")
    cfg = load_yaml("deploy/prometheus/prometheus.yml") or {}
    jobs = {j.get("job_name"): j for j in cfg.get("scrape_configs") or []}
    need(len(jobs) == len(cfg.get("scrape_configs") or []), "prometheus.yml: a job_name appears twice")
    for name in [*SERVICES, "gateway"]:
        job = jobs.get(name) or {}
        sd = job.get("dns_sd_configs") or []
        need(any(name in (c.get("names") or []) and c.get("type") == "A" and c.get("port") == METRICS_PORT
                 for c in sd),
             f"prometheus.yml: job {name} does not find every {name} replica (dns_sd_configs type A) "
             f"on :{METRICS_PORT}")
        need(job.get("metrics_path", "/metrics") == "/metrics", f"prometheus.yml: job {name}: metrics_path")

    # The collector takes OTLP/gRPC on 4317 (what the processes speak) and sends traces on.
    col = services["otel-collector"]
    target = mounted(col, "deploy/otel/collector.yaml")
    need(target and any(target in a for a in col.get("command") or []),
         "otel-collector: deploy/otel/collector.yaml not mounted and passed as --config")
    cfg = load_yaml("deploy/otel/collector.yaml") or {}
    grpc_endpoint = (((cfg.get("receivers") or {}).get("otlp") or {}).get("protocols") or {}).get("grpc") or {}
    need(port_number(grpc_endpoint.get("endpoint", "0")) == OTLP_GRPC_PORT,
         f"otel/collector.yaml: no OTLP/gRPC receiver on :{OTLP_GRPC_PORT}")
    traces = (((cfg.get("service") or {}).get("pipelines") or {}).get("traces")) or {}
    need("otlp" in (traces.get("receivers") or []) and traces.get("exporters"),
         "otel/collector.yaml: the traces pipeline does not take OTLP in and export it")


def check_compose_garage(cfg, secrets_dir, need):
    """Garage and its bootstrap in Compose: a pinned image, the config of deploy/garage, the
    volume, health; only Garage, garage-init and messaging on its network, nothing published;
    each secret file given to whom needs it only; the messaging service's storage settings
    matching Garage's bucket, endpoint and region, and waiting for the bootstrap."""
    services = cfg.get("services", {})
    garage, init, messaging = services["garage"], services["garage-init"], services["messaging"]
    toml = check_garage_toml(need)
    path = lambda name: os.path.join(secrets_dir, name)  # noqa: E731

    # Garage: pinned 1.x, started with deploy/garage/garage.toml, both directories on a named
    # volume, a health check, hardened, its two secrets only, from the files garage reads.
    need(re.fullmatch(GARAGE_IMAGE, garage.get("image", "")),
         f"garage: image {garage.get('image')!r} is not a pinned dxflrs/garage:v1.x.y")
    args = garage.get("command") or []
    conf = flag(args, "-c", "--config")
    need(args[-1:] == ["server"] and conf and mounted(garage, GARAGE_TOML) == conf,
         f"garage: not `garage -c <{GARAGE_TOML} mounted there> server`: {args}")
    volume = [v for v in garage.get("volumes", []) if v.get("type") == "volume"]
    need(len(volume) == 1 and all(str(toml.get(d, "")).startswith(volume[0]["target"] + "/")
                                  for d in ["metadata_dir", "data_dir"]),
         "garage: metadata_dir and data_dir are not on one named volume")
    need("garage" in " ".join(garage.get("healthcheck", {}).get("test") or []), "garage: no health check")
    need(garage.get("restart") == "unless-stopped", "garage: not restarted")
    for name, svc in [("garage", garage), ("garage-init", init)]:
        need(svc.get("read_only") is True, f"{name}: not read_only")
        need("ALL" in (svc.get("cap_drop") or []), f"{name}: capabilities not dropped")
        need("no-new-privileges:true" in (svc.get("security_opt") or []), f"{name}: no no-new-privileges")
        need(not svc.get("ports"), f"{name}: publishes a port on the host")
        need(not svc.get("privileged"), f"{name}: privileged")
    need(set(garage.get("cap_add") or []) <= {"DAC_READ_SEARCH"},
         f"garage: adds capabilities {garage.get('cap_add')} (only reading its secret files is needed)")
    env = garage.get("environment") or {}
    want = {"GARAGE_RPC_SECRET_FILE": path("garage.rpc-secret"),
            "GARAGE_ADMIN_TOKEN_FILE": path("garage.admin-token")}
    need({k: env.get(k) for k in want} == want, f"garage: GARAGE_*_FILE are not {want}")
    need(secret_targets(cfg, garage) == {p: p for p in want.values()},
         f"garage: its secrets are {sorted(secret_targets(cfg, garage))}, not exactly its RPC secret and admin token")

    # The bootstrap: pinned image with a shell, runs deploy/garage/bootstrap.sh, once per up,
    # after Garage is healthy, with the admin token and the S3 key, the bucket of the
    # messaging service's ASTRAL_STORAGE_URL.
    image = init.get("image", "")
    need(re.search(r":[0-9][^/:]*$", image), f"garage-init: image {image!r} is not pinned to a version")
    entry = (init.get("entrypoint") or []) + (init.get("command") or [])
    script = mounted(init, GARAGE_BOOTSTRAP)
    need(script and script in entry and entry[0] in ("/bin/sh", "sh"),
         f"garage-init: does not run {GARAGE_BOOTSTRAP} with sh: {entry}")
    need(init.get("restart") in (None, "no"), "garage-init: restarted (a one-shot container)")
    need((init.get("depends_on") or {}).get("garage", {}).get("condition") == "service_healthy",
         "garage-init: does not wait for Garage to be healthy")
    ienv = init.get("environment") or {}
    want = {"GARAGE_ADMIN_URL": f"http://garage:{GARAGE_ADMIN_PORT}",
            "GARAGE_ADMIN_TOKEN_FILE": path("garage.admin-token"),
            "ASTRAL_STORAGE_URL": STORAGE_URL,
            "ASTRAL_S3_ACCESS_KEY_ID_FILE": path("messaging.s3.id"),
            "ASTRAL_S3_SECRET_ACCESS_KEY_FILE": path("messaging.s3.secret")}
    need({k: ienv.get(k) for k in want} == want, f"garage-init: environment is not {want}")
    need(secret_targets(cfg, init) == {p: p for p in [path("garage.admin-token"), path("messaging.s3.id"),
                                                       path("messaging.s3.secret")]},
         f"garage-init: its secrets are {sorted(secret_targets(cfg, init))}, not exactly the admin token and the S3 key")
    users = {services[r].get("user") for r in ROLES}
    need(init.get("user") in users, "garage-init: does not run as the secret files' owner (ASTRAL_UID)")

    # The messaging service: Garage's bucket, endpoint and region; its key from its env file;
    # started once the bootstrap has succeeded.
    menv = messaging.get("environment") or {}
    want = {"ASTRAL_STORAGE_URL": STORAGE_URL,
            "ASTRAL_S3_ENDPOINT": f"http://garage:{S3_PORT}",
            "ASTRAL_S3_REGION": (toml.get("s3_api") or {}).get("s3_region")}
    need({k: menv.get(k) for k in want} == want,
         f"messaging: storage settings are {({k: menv.get(k) for k in want})}, not {want} (garage.toml, the bucket)")
    need(menv.get("ASTRAL_STORAGE_URL") == ienv.get("ASTRAL_STORAGE_URL"),
         "messaging and garage-init name different buckets")
    key_id = open(path(S3_KEY_ID_FILE)).read()
    need(menv.get(S3_KEY_ID) == key_id, f"messaging: {S3_KEY_ID} is not the id of messaging.s3.id")
    need(menv.get("ASTRAL_S3_SECRET_ACCESS_KEY_FILE") == path("messaging.s3.secret"),
         "messaging: ASTRAL_S3_SECRET_ACCESS_KEY_FILE is not messaging.s3.secret")
    need((messaging.get("depends_on") or {}).get("garage-init", {}).get("condition") == "service_completed_successfully",
         "messaging: does not wait for garage-init to complete successfully")

    # Garage's network: Garage, its bootstrap and the messaging service only, closed to the
    # outside; Garage and its bootstrap on no other.
    on = lambda svc: set(svc.get("networks") or {})  # noqa: E731
    for name in ["garage", "garage-init"]:
        need(len(on(services[name])) == 1, f"{name}: on the networks {sorted(on(services[name]))}, expected one")
    net = next(iter(on(garage)), None)
    need(net and net not in ("backend", "edge"), f"garage: on the network {net}, shared with others")
    members = {n for n, svc in services.items() if net in on(svc)}
    need(members == {"garage", "garage-init", "messaging"},
         f"network {net}: {sorted(members)} on it, expected garage, garage-init, messaging")
    need((cfg.get("networks") or {}).get(net, {}).get("internal") is True, f"network {net}: not internal")

    # Each of these files to whom needs it only; the S3 key to no other role.
    for name, svc in services.items():
        for f in secret_targets(cfg, svc):
            allowed = GARAGE_SECRETS.get(os.path.basename(f))
            need(allowed is None or name in allowed, f"{name}: is given {os.path.basename(f)}")
        for var, value in (svc.get("environment") or {}).items():
            need(name in GARAGE_SECRETS["messaging.s3.id"] or value != key_id,
                 f"{name}: {var} holds the messaging service's S3 key id")
    for name in ROLES:
        if name != "messaging":
            need(not [k for k in (services[name].get("environment") or {}) if k.startswith("ASTRAL_S3_")],
                 f"{name}: has S3 settings")


def check_compose_loopback(cfg, errors):
    """Every port published on the host but the proxy's (the way in) is bound to 127.0.0.1:
    Jaeger's and Prometheus' UIs, and anything added later, show data and take no login."""
    for name, svc in (cfg.get("services") or {}).items():
        if name == "proxy":
            continue
        for p in svc.get("ports") or []:
            if p.get("host_ip") != "127.0.0.1":
                errors.append(f"{name}: publishes {p.get('published')}:{p.get('target')} on "
                              f"{p.get('host_ip') or 'every interface'}, not 127.0.0.1")


def stage_text(path, start, end):
    """Lines of a Dockerfile from the first line matching `start` to the first matching `end`."""
    lines = open(os.path.join(ROOT, path)).read().splitlines()
    i = next(n for n, l in enumerate(lines) if re.match(start, l))
    j = next(n for n, l in enumerate(lines) if n > i and re.match(end, l))
    return lines[i:j + 1]


def check_dockerfiles(errors):
    # The dependency (cook) stages and the runtime base must be identical in both files,
    # so that BuildKit builds them once for all four images.
    for what, start, end in [
        ("dependency stages", r"ARG RUST_VERSION", r"RUN cargo chef cook"),
        ("runtime base stage", r"FROM debian:.* AS runtime", r"WORKDIR /app"),
    ]:
        a = stage_text("Dockerfile.service", start, end)
        b = stage_text("Dockerfile.gateway", start, end)
        if a != b:
            errors.append(f"Dockerfile.service and Dockerfile.gateway differ in their {what}")
    for path in ["Dockerfile.service", "Dockerfile.gateway"]:
        text = open(os.path.join(ROOT, path)).read()
        final = text[text.rindex("\nFROM "):]
        if not re.search(r"^USER [1-9][0-9]*:[1-9][0-9]*$", final, re.M):
            errors.append(f"{path}: the final stage does not run as a numeric non-root user")
        if not re.search(r"^HEALTHCHECK ", final, re.M):
            errors.append(f"{path}: the final stage has no HEALTHCHECK")
        # Metrics reachable in any container of the image, and (gateway) off the public port.
        if not re.search(rf"^\s*(ENV\s+)?ASTRAL_METRICS_LISTEN={re.escape(METRICS_LISTEN)}\b", final, re.M):
            errors.append(f"{path}: the final stage does not set ENV ASTRAL_METRICS_LISTEN={METRICS_LISTEN}")
        if not re.search(rf"^EXPOSE .*\b{METRICS_PORT}\b", final, re.M):
            errors.append(f"{path}: the final stage does not EXPOSE {METRICS_PORT}")

    # The admin CLI: a named stage of Dockerfile.service, not the last one (a plain `docker
    # build` still makes a service image), with only astral-admin, non-root.
    text = open(os.path.join(ROOT, "Dockerfile.service")).read()
    stages = re.split(r"\n(?=FROM )", text)
    admin = [st for st in stages if re.match(r"FROM \S+ AS admin\s*$", st.splitlines()[0])]
    if len(admin) != 1:
        errors.append("Dockerfile.service: no stage `admin` (astral-admin's image)")
    else:
        st = admin[0]
        if stages[-1] is st:
            errors.append("Dockerfile.service: the admin stage is the last one (the default target)")
        if not st.startswith("FROM runtime AS admin"):
            errors.append("Dockerfile.service: the admin stage is not based on the shared runtime stage")
        if not re.search(r"^USER [1-9][0-9]*:[1-9][0-9]*$", st, re.M):
            errors.append("Dockerfile.service: the admin stage does not run as a numeric non-root user")
        if not re.search(r'^ENTRYPOINT \["/usr/local/bin/astral-admin"\]', st, re.M):
            errors.append("Dockerfile.service: the admin stage's ENTRYPOINT is not astral-admin")
        copies = re.findall(r"^COPY .*$", st, re.M)
        if copies != ["COPY --from=admin-builder /out/astral-admin /usr/local/bin/astral-admin"]:
            errors.append(f"Dockerfile.service: the admin stage copies more or less than astral-admin: {copies}")
    if not re.search(r"cargo build --release --locked --workspace --bin astral-admin\b", text):
        errors.append("Dockerfile.service: astral-admin is not built with --release --locked --workspace")


# ---------------------------------------------------------------------------------------
# Caddy: the JSON of `caddy adapt --config deploy/proxy/Caddyfile`.

def check_caddy(cfg, errors):
    servers = (((cfg.get("apps") or {}).get("http") or {}).get("servers") or {})
    if not servers:
        errors.append("Caddyfile: no HTTP server")

    def handlers(route):
        for h in route.get("handle") or []:
            yield h
            if h.get("handler") == "subroute":
                for r in h.get("routes") or []:
                    yield from handlers(r)

    for sname, server in servers.items():
        routes = server.get("routes") or []
        proxy_at = next((i for i, r in enumerate(routes)
                         if any(h.get("handler") == "reverse_proxy" for h in handlers(r))), None)
        if proxy_at is None:
            errors.append(f"Caddyfile: server {sname} proxies nothing")
            continue
        blocked = set()
        for r in routes[:proxy_at]:
            # An unconditional refusal by path: every matcher set is a path matcher only.
            matchers = r.get("match") or []
            if not matchers or any(set(m) != {"path"} for m in matchers):
                continue
            status = [h.get("status_code") for h in r.get("handle") or [] if h.get("handler") == "static_response"]
            if status and str(status[0]) == "404":
                for m in matchers:
                    blocked.update(m["path"])
        for path in ["/metrics", "/metrics/*"]:
            if path not in blocked:
                errors.append(f"Caddyfile: server {sname} does not answer 404 to {path} before proxying")
        # Idle upstream connections are dropped before the gateway's idle timeout drops them.
        for r in routes:
            for h in handlers(r):
                if h.get("handler") != "reverse_proxy":
                    continue
                idle = ((h.get("transport") or {}).get("keep_alive") or {}).get("idle_timeout")
                if not idle or idle >= GATEWAY_IDLE_TIMEOUT_S * 10**9:
                    errors.append(f"Caddyfile: server {sname} keeps idle upstream connections "
                                  f"{'2 minutes (the default)' if not idle else f'{idle / 1e9:g} s'}: "
                                  f"not below the gateways' {GATEWAY_IDLE_TIMEOUT_S} s idle timeout")


# ---------------------------------------------------------------------------------------
# Kubernetes (deploy/k8s): the output of `kubectl kustomize deploy/k8s/<overlay>`.

NAMESPACE = "astral"
APP_USER = 10001
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod")
CLUSTER_KINDS = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass",
                 "StorageClass", "IngressClass", "CustomResourceDefinition", "PersistentVolume"}
# Who may connect to which port of whom (NetworkPolicy ingress), by the pods'
# app.kubernetes.io/name and the container port's name ("*": every port, "(other)" stands
# for ports the pod does not declare). Sources: pods of this namespace by
# app.kubernetes.io/name; "monitoring", the namespace of that name (Prometheus); "outside",
# any other peer with a namespaceSelector or an ipBlock (the ingress controller); "anyone",
# a rule without `from`.
MONITORING_NAMESPACE = "monitoring"
ALLOWED_SOURCES = {
    # The Ingress reaches the public port only; the metrics port only Prometheus.
    "gateway": {"http": {"outside"}, "metrics": {"monitoring"}},
    **{s: {"grpc": {"gateway", *SERVICES}, "metrics": {"monitoring"}} for s in SERVICES},
    "postgres": {"*": set(SERVICES)},
    "nats": {"*": {"gateway", *SERVICES}},
    # Garage's S3 API from the messaging service only, its admin API from its bootstrap only,
    # its RPC from Garage only; the bootstrap's pods from no one.
    "garage": {"s3": {"messaging"}, "admin": {"garage-bootstrap"}, "rpc": {"garage"}},
}
REQUIRED_SOURCES = {
    "gateway": {"http": {"outside"}, "metrics": {"monitoring"}},
    **{s: {"grpc": {"gateway"}, "metrics": {"monitoring"}} for s in SERVICES},
    "garage": {"s3": {"messaging"}, "admin": {"garage-bootstrap"}},
}


def pod_spec(obj):
    spec = obj.get("spec", {})
    if obj["kind"] == "Pod":
        return spec
    if obj["kind"] == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"]
    return spec.get("template", {}).get("spec", {})


def pod_labels(obj):
    if obj["kind"] == "Pod":
        return obj["metadata"].get("labels", {})
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["metadata"].get("labels", {})
    return obj["spec"]["template"]["metadata"].get("labels", {})


def selects(selector, labels):
    """Whether a LabelSelector matches these labels (None matches nothing, {} everything)."""
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        k, op, values = e["key"], e["operator"], e.get("values") or []
        if op == "In" and labels.get(k) not in values:
            return False
        if op == "NotIn" and labels.get(k) in values:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


def port_number(value):
    return int(str(value).rsplit(":", 1)[-1])


def check_k8s(overlay, docs, secrets_dir, errors):
    def need(cond, msg):
        if not cond:
            errors.append(msg)

    objs = {}
    for d in docs:
        key = (d.get("kind"), d.get("metadata", {}).get("name"))
        need(key not in objs, f"{key[0]} {key[1]} appears twice")
        objs[key] = d

    def get(kind, name):
        return objs.get((kind, name))

    def of_kind(kind):
        return [o for (k, _), o in sorted(objs.items()) if k == kind]

    # Everything namespaced is in the one namespace, which is defined and enforces the
    # restricted Pod Security Standard.
    for (kind, name), o in objs.items():
        if kind not in CLUSTER_KINDS:
            need(o["metadata"].get("namespace") == NAMESPACE, f"{kind} {name}: not in namespace {NAMESPACE}")
        need(o["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") == "astral",
             f"{kind} {name}: no label app.kubernetes.io/part-of=astral")
    ns = get("Namespace", NAMESPACE)
    need(ns is not None, f"Namespace {NAMESPACE} is missing")
    if ns:
        need(ns["metadata"].get("labels", {}).get("pod-security.kubernetes.io/enforce") == "restricted",
             f"Namespace {NAMESPACE}: does not enforce the restricted Pod Security Standard")

    workloads = [o for (k, _), o in sorted(objs.items()) if k in WORKLOAD_KINDS]
    deployments = {o["metadata"]["name"]: o for o in of_kind("Deployment")}
    statefulsets = {o["metadata"]["name"]: o for o in of_kind("StatefulSet")}
    need(set(deployments) == {*SERVICES, "gateway"},
         f"Deployments are {sorted(deployments)}, expected auth, gateway, messaging, social")
    if errors:
        return

    # References from pods to ConfigMaps and Secrets resolve (kustomize renames generated
    # ConfigMaps; a reference it did not rewrite would point at nothing).
    def data_keys(kind, name):
        o = get(kind, name)
        if o is None:
            return None
        return set(o.get("data") or {}) | set(o.get("stringData") or {}) | set(o.get("binaryData") or {})

    def secret_value(name, key):
        """A Secret's value (stringData, or data decoded)."""
        o = get("Secret", name) or {}
        if key in (o.get("stringData") or {}):
            return o["stringData"][key]
        if key in (o.get("data") or {}):
            return base64.b64decode(o["data"][key]).decode()
        return None

    def volume_files(v):
        """{file name: content} of a ConfigMap or Secret volume (its items, if listed)."""
        src = v.get("configMap") or v.get("secret")
        if src is None:
            return None
        kind, name = ("ConfigMap", src["name"]) if "configMap" in v else ("Secret", src["secretName"])
        o = get(kind, name) or {}
        if kind == "ConfigMap":
            values = dict(o.get("data") or {})
        else:
            values = {k: secret_value(name, k) for k in (o.get("data") or {}) | (o.get("stringData") or {})}
        items = src.get("items")
        if items:
            return {i["path"]: values.get(i["key"]) for i in items}
        return values

    def pod_dir(spec, c, path, kind=None):
        """{name: content} of the files a container sees in the directory `path`, if it is a
        ConfigMap or Secret volume (kind "configMap" or "secret" to require one)."""
        vols = {v["name"]: v for v in spec.get("volumes") or []}
        for m in c.get("volumeMounts") or []:
            v = vols.get(m["name"], {})
            if m["mountPath"] == path and not m.get("subPath") and (kind is None or kind in v):
                return volume_files(v)
        return None

    def pod_file(spec, c, path, kind=None):
        """The content of the file `path` in a container's ConfigMap or Secret volume."""
        files = pod_dir(spec, c, os.path.dirname(path), kind) or {}
        return files.get(os.path.basename(path))

    # --- secrets: nothing insecure, never the CA's key, mounted read-only -------------------
    for (kind, name), o in objs.items():
        if kind == "ConfigMap":
            need(INSECURE not in (o.get("data") or {}), f"ConfigMap {name}: sets {INSECURE}")
        if kind == "Secret":
            need(not set(o.get("data") or {}) & NEVER_GIVEN, f"Secret {name}: holds {NEVER_GIVEN}")
            ca_key = open(os.path.join(secrets_dir, "ca.key")).read()
            need(all(secret_value(name, k) != ca_key for k in (o.get("data") or {})),
                 f"Secret {name}: holds the CA's private key")

    # --- every pod: probes, resources, hardening -------------------------------------------
    for w in workloads:
        wname = f"{w['kind']} {w['metadata']['name']}"
        spec = pod_spec(w)
        psc = spec.get("securityContext") or {}
        need(spec.get("automountServiceAccountToken") is False, f"{wname}: mounts a service account token")
        need(not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"),
             f"{wname}: uses the host's namespaces")
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        claims = {c["metadata"]["name"] for c in (w.get("spec", {}).get("volumeClaimTemplates") or [])}
        for vname, v in volumes.items():
            need("hostPath" not in v, f"{wname}: volume {vname} is a hostPath")
            if "configMap" in v:
                need(data_keys("ConfigMap", v["configMap"]["name"]) is not None or v["configMap"].get("optional"),
                     f"{wname}: volume {vname}: no ConfigMap {v['configMap']['name']}")
            if "secret" in v:
                need(data_keys("Secret", v["secret"]["secretName"]) is not None or v["secret"].get("optional"),
                     f"{wname}: volume {vname}: no Secret {v['secret']['secretName']}")
        all_containers = [(c, False) for c in spec.get("containers") or []] + \
                         [(c, True) for c in spec.get("initContainers") or []]
        for c, init in all_containers:
            cname = f"{wname} container {c['name']}"
            csc = c.get("securityContext") or {}

            def effective(key):
                return csc.get(key, psc.get(key))

            image = c.get("image", "")
            need(re.search(r":[^/:]+$", image) and not image.endswith(":latest"),
                 f"{cname}: image {image!r} has no fixed tag")
            if not init and w["kind"] not in ("Job", "CronJob"):
                for probe in ["readinessProbe", "livenessProbe"]:
                    need(c.get(probe), f"{cname}: no {probe}")
            res = c.get("resources") or {}
            for kind in ["requests", "limits"]:
                for r in ["cpu", "memory"]:
                    need((res.get(kind) or {}).get(r), f"{cname}: no {r} in resources.{kind}")
            need(effective("runAsNonRoot") is True, f"{cname}: runAsNonRoot is not true")
            need(effective("runAsUser") not in (None, 0), f"{cname}: no non-root runAsUser")
            need((effective("seccompProfile") or {}).get("type") == "RuntimeDefault",
                 f"{cname}: seccompProfile is not RuntimeDefault")
            need(csc.get("readOnlyRootFilesystem") is True, f"{cname}: root filesystem not read-only")
            need(csc.get("allowPrivilegeEscalation") is False, f"{cname}: allowPrivilegeEscalation is not false")
            need(not csc.get("privileged"), f"{cname}: privileged")
            need("ALL" in ((csc.get("capabilities") or {}).get("drop") or []), f"{cname}: capabilities not dropped")
            need(not (csc.get("capabilities") or {}).get("add"), f"{cname}: adds capabilities")
            for m in c.get("volumeMounts") or []:
                need(m["name"] in volumes or m["name"] in claims, f"{cname}: mounts unknown volume {m['name']}")
                if "secret" in volumes.get(m["name"], {}):
                    need(m.get("readOnly") is True, f"{cname}: Secret volume {m['name']} not mounted readOnly")
            for e in c.get("env") or []:
                need(e["name"] != INSECURE, f"{cname}: sets {INSECURE}")
            for e in c.get("env") or []:
                src = e.get("valueFrom") or {}
                for ref_key, kind in [("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")]:
                    ref = src.get(ref_key)
                    if ref and not ref.get("optional"):
                        keys = data_keys(kind, ref["name"])
                        need(keys is not None, f"{cname}: env {e['name']}: no {kind} {ref['name']}")
                        need(keys is None or ref["key"] in keys,
                             f"{cname}: env {e['name']}: {kind} {ref['name']} has no key {ref['key']}")
            for ef in c.get("envFrom") or []:
                for ref_key, kind in [("configMapRef", "ConfigMap"), ("secretRef", "Secret")]:
                    ref = ef.get(ref_key)
                    if ref and not ref.get("optional"):
                        need(data_keys(kind, ref["name"]) is not None, f"{cname}: envFrom: no {kind} {ref['name']}")

    # --- the Astral Deployments -------------------------------------------------------------
    min_replicas = 3 if overlay == "prod" else 2

    def container(name):
        return pod_spec(deployments[name])["containers"][0]

    def env_of(name):
        """name -> (literal value, or (kind, object, key) of the reference)."""
        out = {}
        for e in container(name).get("env") or []:
            if "value" in e:
                out[e["name"]] = e["value"]
            else:
                src = e.get("valueFrom") or {}
                if "configMapKeyRef" in src:
                    r = src["configMapKeyRef"]
                    out[e["name"]] = ("ConfigMap", r["name"], r["key"])
                elif "secretKeyRef" in src:
                    r = src["secretKeyRef"]
                    out[e["name"]] = ("Secret", r["name"], r["key"])
        return out

    def env_value(name, var):
        v = env_of(name).get(var)
        if isinstance(v, tuple):
            o = get(v[0], v[1]) or {}
            return (o.get("data") or {}).get(v[2], (o.get("stringData") or {}).get(v[2]))
        return v

    for name, d in deployments.items():
        spec = d["spec"]
        pspec = pod_spec(d)
        c = container(name)
        need(len(pspec["containers"]) == 1, f"Deployment {name}: expected one container")
        need(spec.get("replicas", 1) >= min_replicas, f"Deployment {name}: fewer than {min_replicas} replicas")
        need(pspec.get("securityContext", {}).get("runAsUser") == APP_USER,
             f"Deployment {name}: does not run as uid {APP_USER} (the images' user)")
        need(pspec.get("terminationGracePeriodSeconds", 30) >= 15,
             f"Deployment {name}: terminationGracePeriodSeconds below 15 (drain takes ~5 s)")
        need(selects(spec["selector"], pod_labels(d)), f"Deployment {name}: selector does not match its pods")
        need(pod_labels(d).get("app.kubernetes.io/name") == name, f"Deployment {name}: pods not labelled app.kubernetes.io/name={name}")
        need(c["image"].rsplit(":", 1)[0].endswith(f"astral-{name}"), f"Deployment {name}: image is {c['image']}")
        env = env_of(name)
        port = SERVICES.get(name, 8000)
        need(env.get("ASTRAL_LISTEN") == f"0.0.0.0:{port}", f"Deployment {name}: ASTRAL_LISTEN is not 0.0.0.0:{port}")
        pname = "grpc" if name in SERVICES else "http"
        need([(p.get("name"), p["containerPort"]) for p in c.get("ports", [])] == [(pname, port), ("metrics", METRICS_PORT)],
             f"Deployment {name}: container ports are not {pname} {port} and metrics {METRICS_PORT}")
        # Metrics on a listener of their own; for the gateway this also takes /metrics off
        # the public port.
        metrics_listen = env_value(name, "ASTRAL_METRICS_LISTEN")
        need(metrics_listen == METRICS_LISTEN, f"Deployment {name}: ASTRAL_METRICS_LISTEN is {metrics_listen!r}, not {METRICS_LISTEN}")
        need(port_number(metrics_listen or "0") != port, f"Deployment {name}: metrics on the public port {port}")
        ann = d["spec"]["template"]["metadata"].get("annotations") or {}
        need(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == str(METRICS_PORT)
             and ann.get("prometheus.io/path") == "/metrics",
             f"Deployment {name}: pods not annotated prometheus.io/scrape=true, port={METRICS_PORT}, path=/metrics")
        log_format = env_value(name, "ASTRAL_LOG_FORMAT")
        want_format = {"json"} if overlay == "prod" else LOG_FORMATS
        need(log_format in want_format, f"Deployment {name}: ASTRAL_LOG_FORMAT is {log_format!r}, not one of {sorted(want_format)}")
        need(env_value(name, "NATS_URL"), f"Deployment {name}: no NATS_URL")
        need("OTEL_EXPORTER_OTLP_ENDPOINT" in env, f"Deployment {name}: OTEL_EXPORTER_OTLP_ENDPOINT not passed")
        # The role's files: env as in <role>.env but at the mount point, from one Secret holding
        # exactly those files (their content), mounted read-only there.
        want = {k: f"{K8S_SECRETS_DIR}/{os.path.basename(v)}" for k, v in role_files(secrets_dir, name).items()}
        got = {k: env.get(k) for k in want}
        need(got == want, f"Deployment {name}: role settings are {got}, not {want}")
        mounts = {m["mountPath"]: m for m in c.get("volumeMounts") or []}
        vol = {v["name"]: v for v in pspec.get("volumes") or []}.get((mounts.get(K8S_SECRETS_DIR) or {}).get("name"), {})
        secret_name = (vol.get("secret") or {}).get("secretName", "")
        need(re.fullmatch(rf"{name}-secrets(-[a-z0-9]+)?", secret_name),
             f"Deployment {name}: {K8S_SECRETS_DIR} is not the Secret {name}-secrets")
        files = {os.path.basename(v): v for v in role_files(secrets_dir, name).values()}
        # The S3 key's id, a value in the env file: from its file in the role's own Secret.
        for key, value in role_env(secrets_dir, name).items():
            if key in role_files(secrets_dir, name):
                continue
            ref = env.get(key)
            need(ref == ("Secret", secret_name, S3_KEY_ID_FILE) and secret_value(secret_name, S3_KEY_ID_FILE) == value,
                 f"Deployment {name}: {key} is not {S3_KEY_ID_FILE} of {secret_name} (the value of {name}.env)")
            files[S3_KEY_ID_FILE] = os.path.join(secrets_dir, S3_KEY_ID_FILE)
        keys = data_keys("Secret", secret_name) or set()
        need(keys == set(files), f"Secret {secret_name}: holds {sorted(keys)}, not exactly {sorted(files)}")
        for key, path in files.items():
            need(key not in keys or secret_value(secret_name, key) == open(path).read(),
                 f"Secret {secret_name}: {key} is not secrets/{key}")
        need(vol.get("secret", {}).get("defaultMode", 0o644) & 0o007 == 0,
             f"Deployment {name}: the secret files are readable by others (defaultMode)")
        need(pspec.get("securityContext", {}).get("fsGroup") == APP_USER,
             f"Deployment {name}: no fsGroup {APP_USER}: the group-readable secret files are unreadable")
        # Only its own Secrets: its role's files, and a service its own database.
        own = {secret_name, f"{name}-database"}
        refs = {v[1] for v in env.values() if isinstance(v, tuple) and v[0] == "Secret"}
        refs |= {v["secret"]["secretName"] for v in pspec.get("volumes") or [] if "secret" in v}
        refs |= {ef["secretRef"]["name"] for ef in c.get("envFrom") or [] if "secretRef" in ef}
        need(refs <= own, f"Deployment {name}: uses the Secrets {sorted(refs - own)} of others")
        if name in SERVICES:
            component = "service"
            need(env.get("DATABASE_URL") == ("Secret", f"{name}-database", "DATABASE_URL"),
                 f"Deployment {name}: DATABASE_URL is not the Secret {name}-database's DATABASE_URL")
            url = env_value(name, "DATABASE_URL") or ""
            need(re.fullmatch(rf"postgres://astral_{name}:[^@/]+@[^/]+:5432/astral_{name}(\?.*)?", url),
                 f"Deployment {name}: DATABASE_URL is not role astral_{name} on database astral_{name}: {url}")
            deps = NEEDS[name]
            # Mutual TLS on the gRPC port: the kubelet's native gRPC probes cannot speak it;
            # the image's probe does, with the container's own certificate.
            for probe in ["readinessProbe", "livenessProbe", "startupProbe"]:
                need((c.get(probe) or {}).get("exec", {}).get("command") == [GRPC_HEALTH],
                     f"Deployment {name}: {probe} is not {GRPC_HEALTH} (grpc.health.v1 over mutual TLS)")
                need((c.get(probe) or {}).get("timeoutSeconds", 1) >= 4,
                     f"Deployment {name}: {probe} times out before the probe's own 3 s")
        else:
            component = "gateway"
            deps = list(SERVICES)
            need("DATABASE_URL" not in env, "Deployment gateway: has a DATABASE_URL")
            need(not [v for v in env.values() if "postgres://" in str(v)],
                 "Deployment gateway: holds a database URL")
            need(env.get("ASTRAL_WEB_DIR") == "/app/web", "Deployment gateway: ASTRAL_WEB_DIR is not /app/web")
            for var in ["ASTRAL_SECURE_COOKIES", "ASTRAL_TRUSTED_PROXY_HOPS", "ASTRAL_ALLOWED_ORIGINS"]:
                need(var in env, f"Deployment gateway: {var} not set")
            need(env_value(name, "ASTRAL_TRUSTED_PROXY_HOPS") == "1",
                 "Deployment gateway: ASTRAL_TRUSTED_PROXY_HOPS is not 1 behind the ingress")
            need("ASTRAL_TRUST_FORWARDED_FOR" not in env,
                 "Deployment gateway: sets the old ASTRAL_TRUST_FORWARDED_FOR")
            for probe, path in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")]:
                need((c.get(probe) or {}).get("httpGet", {}).get("path") == path,
                     f"Deployment gateway: {probe} is not GET {path}")
        need(pod_labels(d).get("app.kubernetes.io/component") == component,
             f"Deployment {name}: pods not labelled app.kubernetes.io/component={component}")
        for dep in deps:
            need(env_value(name, f"ASTRAL_{dep.upper()}_URL") == f"https://{dep}:{SERVICES[dep]}",
                 f"Deployment {name}: ASTRAL_{dep.upper()}_URL is not https://{dep}:{SERVICES[dep]}")

    # --- Services ---------------------------------------------------------------------------
    services = {o["metadata"]["name"]: o for o in of_kind("Service")}
    for name in [*SERVICES, "gateway"]:
        need(name in services, f"Service {name} is missing")
    for name, svc in services.items():
        sspec = svc["spec"]
        backends = [w for w in workloads if selects(sspec.get("selector"), pod_labels(w))]
        need(backends, f"Service {name}: selects no pods")
        ports = {p.get("name") for w in backends for c in pod_spec(w)["containers"] for p in c.get("ports", [])}
        numbers = {p["containerPort"] for w in backends for c in pod_spec(w)["containers"] for p in c.get("ports", [])}
        for p in sspec.get("ports", []):
            t = p.get("targetPort", p["port"])
            need(t in ports or t in numbers, f"Service {name}: targetPort {t} is no container port")
        for p in sspec.get("ports", []):
            if p.get("name") == "metrics" or p.get("targetPort") in ("metrics", METRICS_PORT):
                need(p.get("name") == "metrics" and p.get("targetPort") in ("metrics", METRICS_PORT),
                     f"Service {name}: port {p.get('name')} and the metrics port mixed up")
        main_ports = [p for p in sspec.get("ports", []) if p.get("name") != "metrics"]
        if name in SERVICES:
            # gRPC clients balance over the pods themselves (one HTTP/2 connection each).
            need(sspec.get("clusterIP") == "None", f"Service {name}: not headless (clusterIP: None)")
            need([p["port"] for p in main_ports] == [SERVICES[name]], f"Service {name}: port is not {SERVICES[name]}")
        if name == "gateway":
            need(sspec.get("type", "ClusterIP") == "ClusterIP" and sspec.get("clusterIP") != "None",
                 "Service gateway: not a plain ClusterIP")
            # The port the Ingress uses leads to the public port, not to /metrics.
            http = [p for p in main_ports if p.get("name") == "http"]
            need(len(http) == 1 and http[0].get("targetPort") in ("http", 8000),
                 "Service gateway: port http does not lead to the container port http (8000)")
    for w in statefulsets.values():
        need(w["spec"].get("serviceName") in services, f"StatefulSet {w['metadata']['name']}: no governing Service")
    need(not [s for s in services.values() if s["spec"].get("type") in ("NodePort", "LoadBalancer")],
         "a Service is exposed as NodePort or LoadBalancer (only the Ingress leads in)")

    # --- autoscaling and disruption budgets -------------------------------------------------
    hpas = {o["metadata"]["name"]: o for o in of_kind("HorizontalPodAutoscaler")}
    need({"gateway", "messaging"} <= set(hpas), f"HPAs are {sorted(hpas)}, gateway and messaging needed")
    for name, h in hpas.items():
        ref = h["spec"]["scaleTargetRef"]
        target = get(ref["kind"], ref["name"])
        need(target is not None, f"HPA {name}: no {ref['kind']} {ref['name']}")
        lo, hi = h["spec"].get("minReplicas", 1), h["spec"]["maxReplicas"]
        need(min_replicas <= lo < hi, f"HPA {name}: replicas {lo}..{hi}")
        need(h["spec"].get("metrics"), f"HPA {name}: no metrics")
        if target:
            need(target["spec"].get("replicas", 1) >= lo, f"HPA {name}: the Deployment's replicas are below minReplicas")
    pdbs = of_kind("PodDisruptionBudget")
    for name, d in deployments.items():
        matching = [p for p in pdbs if selects(p["spec"]["selector"], pod_labels(d))]
        need(len(matching) == 1, f"Deployment {name}: {len(matching)} PodDisruptionBudgets select it, expected 1")
        for p in matching:
            need(p["spec"].get("maxUnavailable", 0) in (1, "1") or
                 int(p["spec"].get("minAvailable", 0)) in range(1, min_replicas),
                 f"PodDisruptionBudget {p['metadata']['name']}: neither maxUnavailable 1 nor minAvailable below the replicas")

    # --- Ingress ------------------------------------------------------------------------------
    ingresses = of_kind("Ingress")
    need(len(ingresses) == 1, f"{len(ingresses)} Ingresses, expected 1")
    hosts, tls_hosts = set(), set()
    for ing in ingresses:
        iname = f"Ingress {ing['metadata']['name']}"
        ann = ing["metadata"].get("annotations", {})
        for a in ["proxy-read-timeout", "proxy-send-timeout"]:
            v = ann.get(f"nginx.ingress.kubernetes.io/{a}", "0")
            need(v.isdigit() and int(v) >= 3600, f"{iname}: {a} is {v}, WebSocket connections need >= 3600")
        need(ing["spec"].get("ingressClassName"), f"{iname}: no ingressClassName")
        for rule in ing["spec"].get("rules", []):
            need(rule.get("host"), f"{iname}: a rule without host")
            hosts.add(rule.get("host"))
            for path in rule.get("http", {}).get("paths", []):
                svc = path["backend"].get("service", {})
                need(svc.get("name") == "gateway" and svc.get("port", {}).get("name") == "http",
                     f"{iname}: a path leads elsewhere than the gateway's http port")
        for t in ing["spec"].get("tls") or []:
            tls_hosts.update(t.get("hosts") or [])
    https = bool(hosts) and hosts <= tls_hosts
    need(env_value("gateway", "ASTRAL_SECURE_COOKIES") == ("true" if https else "false"),
         f"gateway: ASTRAL_SECURE_COOKIES must be {'true' if https else 'false'} when the Ingress "
         f"{'serves HTTPS' if https else 'serves plain HTTP'}")
    origins = set(filter(None, (env_value("gateway", "ASTRAL_ALLOWED_ORIGINS") or "").split(",")))
    want = {f"{'https' if https else 'http'}://{h}" for h in hosts}
    need(origins == want, f"gateway: ASTRAL_ALLOWED_ORIGINS is {sorted(origins)}, the Ingress serves {sorted(want)}")

    # --- NetworkPolicies: who can reach whom ---------------------------------------------------
    policies = [p for p in of_kind("NetworkPolicy") if "Ingress" in p["spec"].get("policyTypes", ["Ingress"])]
    need([p for p in policies if p["spec"].get("podSelector") == {} and not p["spec"].get("ingress")],
         "no default-deny NetworkPolicy (podSelector {} and no ingress rules): new pods would be open")
    pods = {pod_labels(w).get("app.kubernetes.io/name"): pod_labels(w) for w in workloads}
    pod_ports = {pod_labels(w).get("app.kubernetes.io/name"):
                 [(p.get("name"), p["containerPort"]) for c in pod_spec(w).get("containers") or []
                  for p in c.get("ports") or []] for w in workloads}

    def peer_sources(peer):
        if "ipBlock" in peer:
            return {"outside"}
        if "namespaceSelector" in peer:
            # Named by kubernetes.io/metadata.name (set on every namespace); anything else may
            # select any namespace.
            ns_sel = peer["namespaceSelector"] or {}
            ns = None if ns_sel.get("matchExpressions") else \
                (ns_sel.get("matchLabels") or {}).get("kubernetes.io/metadata.name")
            if ns == MONITORING_NAMESPACE:
                return {"monitoring"}
            if ns != NAMESPACE:
                return {"outside"}
        return {n for n, l in pods.items() if selects(peer.get("podSelector"), l)}

    def rule_ports(rule, pname):
        """The names of the pod's ports a rule admits to ("(other)": undeclared ports)."""
        declared = pod_ports.get(pname, [])
        if not rule.get("ports"):
            return {n for n, _ in declared} | {"(other)"}
        out = set()
        for rp in rule["ports"]:
            want, end = rp.get("port"), rp.get("endPort")
            if want is None:
                return {n for n, _ in declared} | {"(other)"}
            hit = {n for n, num in declared
                   if want == n or (isinstance(want, int) and want <= num <= (end or want))}
            if isinstance(want, int) and not hit:
                hit = {"(other)"}
            out |= hit
        return out

    for pname, labels in pods.items():
        applying = [p for p in policies if selects(p["spec"].get("podSelector"), labels)]
        need(applying, f"pods {pname}: no NetworkPolicy isolates them (default deny missing)")
        sources = {}
        for p in applying:
            for rule in p["spec"].get("ingress") or []:
                peers = rule.get("from")
                srcs = set().union(*(peer_sources(peer) for peer in peers)) if peers else {"anyone"}
                for port in rule_ports(rule, pname):
                    sources.setdefault(port, set()).update(srcs)
        allowed = ALLOWED_SOURCES.get(pname, {})
        for port, srcs in sorted(sources.items()):
            ok = allowed.get(port, allowed.get("*", set()))
            need(srcs <= ok, f"pods {pname} port {port}: reachable from {sorted(srcs - ok)} (allowed: {sorted(ok)})")
        for port, req in REQUIRED_SOURCES.get(pname, {}).items():
            need(req <= sources.get(port, set()),
                 f"pods {pname} port {port}: not reachable from {sorted(req - sources.get(port, set()))}")

    check_k8s_garage(objs, secrets_dir, need, secret_value, pod_file, env_value)

    # --- per overlay --------------------------------------------------------------------------
    urls = [env_value(s, "DATABASE_URL") or "" for s in SERVICES]
    nats_url = env_value("gateway", "NATS_URL")
    if overlay == "dev":
        need(set(statefulsets) == {"postgres", "nats", "garage"},
             f"dev: StatefulSets are {sorted(statefulsets)}, expected garage, nats, postgres")
        need(nats_url == "nats://nats:4222", f"dev: NATS_URL is {nats_url}")
        if "nats" in statefulsets:
            # The deployment's nats.conf, from its Secret, included by the pod's configuration,
            # which puts the JetStream store on the volume; every interface; no --store_dir.
            nats = statefulsets["nats"]
            spec = pod_spec(nats)
            c = spec["containers"][0]
            args = c.get("command", []) + c.get("args", [])
            need(re.search(r"(^|\s)(-js|--jetstream)(\s|$)", " ".join(args)), "dev: nats: JetStream not enabled (-js)")
            need(nats["spec"].get("volumeClaimTemplates"), "dev: nats: no volume for the JetStream store")
            need(flag(args, "-a", "--addr", "--net") == "0.0.0.0", "dev: nats: not on every interface (--addr 0.0.0.0)")
            need(flag(args, "-sd", "--store_dir") is None,
                 "dev: nats: --store_dir on the command line (nats-server refuses it beside nats.conf's)")
            conf_path = flag(args, "-c", "--config") or "?"
            conf = pod_file(spec, c, conf_path)
            need(conf is not None, f"dev: nats: {conf_path} is in no mounted ConfigMap or Secret")
            include = re.search(r'^\s*include\s+"?([^"\s]+)"?', conf or "", re.M)
            need(include, f"dev: nats: {conf_path} does not include the deployment's nats.conf")
            if include:
                included = os.path.normpath(os.path.join(os.path.dirname(conf_path), include.group(1)))
                want = open(os.path.join(secrets_dir, "nats.conf")).read()
                need(pod_file(spec, c, included, kind="secret") == want,
                     f"dev: nats: {included} is not secrets/nats.conf, from a Secret")
            store = nats_store_dir((conf or "").split("include", 1)[-1])
            data = [m for m in c.get("volumeMounts", []) if m["name"] == "data"]
            need(data and store == data[0]["mountPath"],
                 f"dev: nats: the JetStream store_dir ({store}) is not the volume's mount point")
        if "postgres" in statefulsets:
            pg = statefulsets["postgres"]
            spec = pod_spec(pg)
            c = spec["containers"][0]
            need(pg["spec"].get("volumeClaimTemplates"), "dev: postgres: no volume for its data")
            # init.sh, the only file of /docker-entrypoint-initdb.d (an .sql there would run
            # without the passwords), executable; init.sql where init.sh reads it.
            initdb = pod_dir(spec, c, "/docker-entrypoint-initdb.d")
            want_sh = open(os.path.join(ROOT, "deploy/postgres/init.sh")).read()
            want_sql = open(os.path.join(ROOT, "deploy/postgres/init.sql")).read()
            need(initdb and list(initdb.values()) == [want_sh] and list(initdb)[0].endswith(".sh"),
                 "dev: postgres: /docker-entrypoint-initdb.d does not hold exactly deploy/postgres/init.sh "
                 "(copy it to deploy/k8s/dev/init.sh)")
            need(pod_file(spec, c, init_sql_path()) == want_sql,
                 f"dev: postgres: {init_sql_path()} is not deploy/postgres/init.sql (copy it to deploy/k8s/dev/init.sql)")
            pg_env = {}
            for e in c.get("env", []):
                r = (e.get("valueFrom") or {}).get("secretKeyRef")
                pg_env[e["name"]] = secret_value(r["name"], r["key"]) if r else e.get("value")
            passwords = {n: pg_env.get(f"ASTRAL_{n.upper()}_DB_PASSWORD") for n in SERVICES}
            need(all(passwords.values()) and len(set(passwords.values())) == len(SERVICES)
                 and pg_env.get("POSTGRES_PASSWORD") not in passwords.values(),
                 "dev: postgres: the services' passwords are missing, shared, or the superuser's")
            for n in SERVICES:
                url = env_value(n, "DATABASE_URL") or ""
                want = f"postgres://astral_{n}:{passwords[n]}@postgres:5432/astral_{n}"
                need(url == want, f"dev: {n}: DATABASE_URL is {url}, not {want} (the password init.sh gives)")
    if overlay == "prod":
        need(set(statefulsets) <= {"garage"},
             f"prod: has StatefulSets {sorted(set(statefulsets) - {'garage'})} (use managed PostgreSQL and NATS)")
        need(not of_kind("PersistentVolumeClaim"), "prod: has PersistentVolumeClaims")
        need(https, "prod: the Ingress does not serve every host over TLS")
        for url in urls:
            need(not re.match(r"postgres://[^@]*@postgres[:/]", url), f"prod: {url} points at the dev in-cluster PostgreSQL")
        need(nats_url != "nats://nats:4222", "prod: NATS_URL points at the dev in-cluster NATS")
        for name in deployments:
            image = container(name)["image"]
            need("/" in image.split(":")[0], f"prod: Deployment {name}: image {image} names no registry")


def check_k8s_garage(objs, secrets_dir, need, secret_value, pod_file, env_value):
    """Garage in Kubernetes: a pinned single-node StatefulSet with a volume and the config of
    deploy/garage, the Job garage-bootstrap running bootstrap.sh, each with exactly its
    secrets; the messaging service's storage settings matching them; the Garage secrets in no
    other workload's reach. (Who reaches which port: the NetworkPolicy check.)"""
    toml = check_garage_toml(need)
    content = {f: open(os.path.join(secrets_dir, f)).read() for f in GARAGE_SECRETS}

    def resolve(c):
        """A container's env: {name: value}, references resolved."""
        out = {}
        for e in c.get("env") or []:
            src = e.get("valueFrom") or {}
            if "configMapKeyRef" in src:
                r = src["configMapKeyRef"]
                out[e["name"]] = ((objs.get(("ConfigMap", r["name"])) or {}).get("data") or {}).get(r["key"])
            elif "secretKeyRef" in src:
                r = src["secretKeyRef"]
                out[e["name"]] = secret_value(r["name"], r["key"])
            else:
                out[e["name"]] = e.get("value")
        return out

    def secret_volume(spec, prefix):
        """The one Secret volume of a pod: its name, and its keys (it must be `prefix`-*)."""
        secrets = [v["secret"]["secretName"] for v in spec.get("volumes") or [] if "secret" in v]
        need(len(secrets) == 1 and re.fullmatch(rf"{prefix}(-[a-z0-9]+)?", secrets[0]),
             f"{prefix}: the pod's Secret volumes are {secrets}, not the one Secret {prefix}")
        o = objs.get(("Secret", secrets[0] if secrets else "")) or {}
        return set(o.get("data") or {}) | set(o.get("stringData") or {})

    sts = objs.get(("StatefulSet", "garage"))
    need(sts is not None, "no StatefulSet garage")
    if sts:
        spec = sts["spec"]["template"]["spec"]
        c = spec["containers"][0]
        need(len(spec["containers"]) == 1, "StatefulSet garage: expected one container")
        need(re.fullmatch(GARAGE_IMAGE, c.get("image", "")),
             f"StatefulSet garage: image {c.get('image')!r} is not a pinned dxflrs/garage:v1.x.y")
        need(sts["spec"].get("replicas", 1) == 1, "StatefulSet garage: more than one replica (a single node)")
        args = (c.get("command") or []) + (c.get("args") or [])
        conf = flag(args, "-c", "--config") or "?"
        need(args[-1:] == ["server"], f"StatefulSet garage: not `garage ... server`: {args}")
        need(pod_file(spec, c, conf, kind="configMap") == open(os.path.join(ROOT, GARAGE_TOML)).read(),
             f"StatefulSet garage: {conf} is not {GARAGE_TOML} (copy it to deploy/k8s/base/garage.toml)")
        claims = {t["metadata"]["name"] for t in sts["spec"].get("volumeClaimTemplates") or []}
        data = [m for m in c.get("volumeMounts") or [] if m["name"] in claims]
        need(len(data) == 1 and all(str(toml.get(d, "")).startswith(data[0]["mountPath"].rstrip("/") + "/")
                                    for d in ["metadata_dir", "data_dir"]),
             "StatefulSet garage: metadata_dir and data_dir are not on its volume claim")
        need([(p.get("name"), p["containerPort"]) for p in c.get("ports") or []] ==
             [("s3", S3_PORT), ("rpc", GARAGE_RPC_PORT), ("admin", GARAGE_ADMIN_PORT)],
             f"StatefulSet garage: container ports are not s3 {S3_PORT}, rpc {GARAGE_RPC_PORT}, admin {GARAGE_ADMIN_PORT}")
        env = resolve(c)
        for var, f in [("GARAGE_RPC_SECRET_FILE", "garage.rpc-secret"), ("GARAGE_ADMIN_TOKEN_FILE", "garage.admin-token")]:
            need(env.get(var) and pod_file(spec, c, env[var], kind="secret") == content[f],
                 f"StatefulSet garage: {var} does not name secrets/{f} in a Secret volume")
        need(secret_volume(spec, "garage-secrets") == {"garage.rpc-secret", "garage.admin-token"},
             "Secret garage-secrets: does not hold exactly garage.rpc-secret and garage.admin-token")
    svc = objs.get(("Service", "garage")) or {}
    need([(p.get("name"), p.get("port")) for p in (svc.get("spec") or {}).get("ports") or []][:1] == [("s3", S3_PORT)],
         f"Service garage: its first port is not s3 {S3_PORT}")

    job = objs.get(("Job", "garage-bootstrap"))
    need(job is not None, "no Job garage-bootstrap")
    if job:
        spec = job["spec"]["template"]["spec"]
        c = spec["containers"][0]
        image = c.get("image", "")
        need(re.search(r":[0-9][^/:]*$", image), f"Job garage-bootstrap: image {image!r} is not pinned to a version")
        cmd = (c.get("command") or []) + (c.get("args") or [])
        need(len(cmd) == 2 and cmd[0] in ("/bin/sh", "sh")
             and pod_file(spec, c, cmd[1], kind="configMap") == open(os.path.join(ROOT, GARAGE_BOOTSTRAP)).read(),
             f"Job garage-bootstrap: does not run {GARAGE_BOOTSTRAP} (copy it to deploy/k8s/base/garage-bootstrap.sh) with sh: {cmd}")
        need(job["spec"].get("ttlSecondsAfterFinished") is not None,
             "Job garage-bootstrap: never deleted (ttlSecondsAfterFinished): a later apply could not run it again")
        env = resolve(c)
        need(env.get("GARAGE_ADMIN_URL") == f"http://garage:{GARAGE_ADMIN_PORT}",
             f"Job garage-bootstrap: GARAGE_ADMIN_URL is not http://garage:{GARAGE_ADMIN_PORT}")
        need(env.get("ASTRAL_STORAGE_URL") == STORAGE_URL, f"Job garage-bootstrap: ASTRAL_STORAGE_URL is not {STORAGE_URL}")
        for var, f in [("GARAGE_ADMIN_TOKEN_FILE", "garage.admin-token"), ("ASTRAL_S3_ACCESS_KEY_ID_FILE", "messaging.s3.id"),
                       ("ASTRAL_S3_SECRET_ACCESS_KEY_FILE", "messaging.s3.secret")]:
            need(env.get(var) and pod_file(spec, c, env[var], kind="secret") == content[f],
                 f"Job garage-bootstrap: {var} does not name secrets/{f} in a Secret volume")
        need(secret_volume(spec, "garage-bootstrap-secrets") == {"garage.admin-token", "messaging.s3.id", "messaging.s3.secret"},
             "Secret garage-bootstrap-secrets: does not hold exactly the admin token and the S3 key")

    # The messaging service: Garage's bucket, endpoint and region.
    want = {"ASTRAL_STORAGE_URL": STORAGE_URL, "ASTRAL_S3_ENDPOINT": f"http://garage:{S3_PORT}",
            "ASTRAL_S3_REGION": (toml.get("s3_api") or {}).get("s3_region")}
    got = {k: env_value("messaging", k) for k in want}
    need(got == want, f"Deployment messaging: storage settings are {got}, not {want}")

    # Garage's secrets and the S3 key: only in Secrets that the workloads allowed them use.
    for (kind, wname), w in objs.items():
        if kind not in WORKLOAD_KINDS:
            continue
        spec = pod_spec(w)
        name = pod_labels(w).get("app.kubernetes.io/name")
        used = {v["secret"]["secretName"] for v in spec.get("volumes") or [] if "secret" in v}
        for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
            used |= {e["valueFrom"]["secretKeyRef"]["name"] for e in c.get("env") or []
                     if "secretKeyRef" in (e.get("valueFrom") or {})}
            used |= {ef["secretRef"]["name"] for ef in c.get("envFrom") or [] if "secretRef" in ef}
        for secret in used:
            o = objs.get(("Secret", secret)) or {}
            for key in set(o.get("data") or {}) | set(o.get("stringData") or {}):
                value = secret_value(secret, key)
                for f, allowed in GARAGE_SECRETS.items():
                    need(value != content[f] or name in allowed, f"{kind} {wname}: is given {f} (Secret {secret})")


# ---------------------------------------------------------------------------------------
# Web Push: the VAPID key to the messaging service alone.

def check_vapid_files(secrets_dir, need):
    """SECRETS/messaging.vapid.pem: a PKCS#8 PEM private key, 0600, named by messaging.env's
    ASTRAL_VAPID_KEY_FILE and by no other role's env file. Its content."""
    path = os.path.join(secrets_dir, VAPID_KEY_FILE)
    if not os.path.isfile(path):
        need(False, f"secrets: no {VAPID_KEY_FILE} (astral-admin secrets init writes it)")
        return None
    content = open(path).read()
    need(content.startswith("-----BEGIN PRIVATE KEY-----"), f"secrets: {VAPID_KEY_FILE} is not a PKCS#8 PEM key")
    need(os.stat(path).st_mode & 0o777 == 0o600, f"secrets: {VAPID_KEY_FILE} is not 0600")
    for role in ROLES:
        env = role_env(secrets_dir, role)
        if role == "messaging":
            need(env.get(VAPID_KEY_VAR) == path, f"messaging.env: {VAPID_KEY_VAR} is not {path}")
        else:
            need(not [k for k, v in env.items() if k.startswith("ASTRAL_VAPID_") or v == path],
                 f"{role}.env: names the VAPID key")
    return content


def check_vapid_subject(where, value, overlay, need):
    """A contact push services accept: mailto: or https:, not a placeholder in prod."""
    need(value and re.fullmatch(VAPID_SUBJECT, value),
         f"{where}: {VAPID_SUBJECT_VAR} is {value!r}, not a mailto: or https: contact")
    host = re.sub(r"^(mailto:[^@]*@|https://)", "", value or "").split("/")[0]
    need(overlay != "prod" or not re.fullmatch(PLACEHOLDER_HOST, host),
         f"{where}: {VAPID_SUBJECT_VAR} {value!r} is a placeholder, which Apple's push service refuses")


def check_compose_push(cfg, secrets_dir, errors):
    """Compose: the messaging service gets messaging.vapid.pem (a Compose secret at its own
    path, which ASTRAL_VAPID_KEY_FILE of its env file names) and ASTRAL_VAPID_SUBJECT; no
    other service gets the file or any ASTRAL_VAPID_* setting."""
    def need(cond, msg):
        if not cond:
            errors.append(msg)

    services = cfg.get("services", {})
    if check_vapid_files(secrets_dir, need) is None or "messaging" not in services:
        need("messaging" in services, "no service messaging")
        return
    path = os.path.join(secrets_dir, VAPID_KEY_FILE)
    messaging = services["messaging"]
    env = messaging.get("environment") or {}
    need(env.get(VAPID_KEY_VAR) == path, f"messaging: {VAPID_KEY_VAR} is {env.get(VAPID_KEY_VAR)!r}, not {path}")
    need(secret_targets(cfg, messaging).get(path) == path,
         f"messaging: {VAPID_KEY_FILE} is not one of its secrets, at {path}")
    check_vapid_subject("messaging", env.get(VAPID_SUBJECT_VAR), "compose", need)
    for name, svc in services.items():
        if name == "messaging":
            continue
        given = {t for t, f in secret_targets(cfg, svc).items() if VAPID_KEY_FILE in (os.path.basename(t), os.path.basename(f or ""))}
        need(not given, f"{name}: is given {VAPID_KEY_FILE}")
        need(not [v for v in svc.get("volumes") or [] if str(v.get("source", "")).endswith(VAPID_KEY_FILE)],
             f"{name}: mounts {VAPID_KEY_FILE}")
        senv = svc.get("environment") or {}
        need(not [k for k, v in senv.items() if k.startswith("ASTRAL_VAPID_") or v == path],
             f"{name}: has Web Push settings")


def check_k8s_push(overlay, docs, secrets_dir, errors):
    """Kubernetes: the messaging Deployment's ASTRAL_VAPID_KEY_FILE names messaging.vapid.pem
    of its Secret messaging-secrets (that file's content) mounted at /etc/astral/secrets, and
    its ASTRAL_VAPID_SUBJECT is a contact (prod: a real one); no other Secret holds the key and
    no other workload has an ASTRAL_VAPID_* setting or messaging's Secret."""
    def need(cond, msg):
        if not cond:
            errors.append(msg)

    content = check_vapid_files(secrets_dir, need)
    objs = {(d.get("kind"), d.get("metadata", {}).get("name")): d for d in docs}

    def secret_value(name, key):
        o = objs.get(("Secret", name)) or {}
        if key in (o.get("stringData") or {}):
            return o["stringData"][key]
        if key in (o.get("data") or {}):
            return base64.b64decode(o["data"][key]).decode()
        return None

    def resolve(e):
        src = e.get("valueFrom") or {}
        if "configMapKeyRef" in src:
            r = src["configMapKeyRef"]
            return ((objs.get(("ConfigMap", r["name"])) or {}).get("data") or {}).get(r["key"])
        if "secretKeyRef" in src:
            r = src["secretKeyRef"]
            return secret_value(r["name"], r["key"])
        return e.get("value")

    own = re.compile(r"messaging-secrets(-[a-z0-9]+)?")
    d = objs.get(("Deployment", "messaging"))
    need(d is not None and content is not None, "no Deployment messaging")
    if d is None or content is None:
        return
    spec = pod_spec(d)
    c = (spec.get("containers") or [{}])[0]
    env = {e["name"]: resolve(e) for e in c.get("env") or []}
    want = f"{K8S_SECRETS_DIR}/{VAPID_KEY_FILE}"
    need(env.get(VAPID_KEY_VAR) == want, f"Deployment messaging: {VAPID_KEY_VAR} is {env.get(VAPID_KEY_VAR)!r}, not {want}")
    vols = {v["name"]: v for v in spec.get("volumes") or []}
    mount = [m for m in c.get("volumeMounts") or [] if m["mountPath"] == K8S_SECRETS_DIR and not m.get("subPath")]
    src = (vols.get(mount[0]["name"]) if mount else None) or {}
    secret = (src.get("secret") or {}).get("secretName", "")
    need(own.fullmatch(secret), f"Deployment messaging: {K8S_SECRETS_DIR} is not the Secret messaging-secrets")
    items = (src.get("secret") or {}).get("items")
    key = next((i["key"] for i in items if i["path"] == VAPID_KEY_FILE), None) if items else VAPID_KEY_FILE
    need(key is not None and secret_value(secret, key) == content,
         f"Deployment messaging: {want} is not secrets/{VAPID_KEY_FILE} (Secret {secret})")
    check_vapid_subject("Deployment messaging", env.get(VAPID_SUBJECT_VAR), overlay, need)

    # The key in messaging's Secret only; that Secret and any ASTRAL_VAPID_* in messaging only.
    for (kind, name), o in objs.items():
        if kind == "Secret":
            held = [k for k in set(o.get("data") or {}) | set(o.get("stringData") or {})
                    if secret_value(name, k) == content]
            need(not held or own.fullmatch(name), f"Secret {name}: holds the VAPID key")
        if kind not in WORKLOAD_KINDS or (kind, name) == ("Deployment", "messaging"):
            continue
        wspec = pod_spec(o)
        used = {v["secret"]["secretName"] for v in wspec.get("volumes") or [] if "secret" in v}
        for wc in (wspec.get("containers") or []) + (wspec.get("initContainers") or []):
            used |= {e["valueFrom"]["secretKeyRef"]["name"] for e in wc.get("env") or []
                     if "secretKeyRef" in (e.get("valueFrom") or {})}
            used |= {ef["secretRef"]["name"] for ef in wc.get("envFrom") or [] if "secretRef" in ef}
            need(not [e for e in wc.get("env") or [] if e["name"].startswith("ASTRAL_VAPID_")],
                 f"{kind} {name}: has Web Push settings")
        need(not [u for u in used if own.fullmatch(u)], f"{kind} {name}: uses the messaging service's Secret")


# ---------------------------------------------------------------------------------------
# NATS: the real nats-server, run with the command line of Compose or of the dev overlay.

def run_nats(nats_server, args, tmp, errors):
    """Runs nats-server with `args` (a container's command line, its paths already made
    local), on 127.0.0.2 instead of 0.0.0.0 and on free ports: the monitoring endpoint must
    show the command line's address and port (not nats.conf's 127.0.0.1:4222) and a store
    inside `tmp`, and a client without credentials must be refused. Returns /varz."""
    import socket
    import subprocess
    import time
    import urllib.request

    def free_port():
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    host, port, monitor = "127.0.0.2", free_port(), free_port()
    local = list(args[1:])
    for names, value in [(("-a", "--addr", "--net"), host), (("-p", "--port"), str(port)),
                         (("-m", "--http_port"), str(monitor))]:
        i = next((i for i, a in enumerate(local) if a in names), None)
        if i is None:
            errors.append(f"nats: no {names[-1]} on the command line")
            return None
        local[i + 1] = value
    log = open(os.path.join(tmp, f"nats-{port}.log"), "w")
    proc = subprocess.Popen([nats_server, *local], stdout=log, stderr=subprocess.STDOUT)
    try:
        varz = None
        deadline = time.monotonic() + 10
        while varz is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://{host}:{monitor}/varz", timeout=1) as r:
                    varz = json.load(r)
            except OSError:
                time.sleep(0.1)
        if varz is None:
            errors.append(f"nats-server did not start: {open(log.name).read()[-600:]}")
            return None
        if (varz.get("host"), varz.get("port")) != (host, port):
            errors.append(f"nats: listens on {varz.get('host')}:{varz.get('port')}, not the command line's")
        if not varz.get("auth_required"):
            errors.append("nats: no authentication required")
        store = ((varz.get("jetstream") or {}).get("config") or {}).get("store_dir", "")
        if not store.startswith(tmp):
            errors.append(f"nats: JetStream not enabled, or its store is {store!r}")
        # A client without credentials: INFO, then CONNECT without any, then refused.
        with socket.create_connection((host, port), timeout=5) as sock:
            sock.recv(4096)
            sock.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n')
            answer = sock.recv(4096)
        if b"Authorization Violation" not in answer:
            errors.append(f"nats: a client without credentials was not refused: {answer[:80]!r}")
        return varz
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def check_nats_compose(cfg, nats_server, tmp, errors):
    """Compose's NATS command line, with the generated nats.conf where it names it; the store
    is the directory nats.conf names (the volume's mount point), inside the secrets dir."""
    args = (cfg.get("services", {}).get("nats") or {}).get("command") or []
    run_nats(nats_server, args, tmp, errors)


def check_nats_k8s(docs, nats_server, tmp, errors):
    """The dev overlay's NATS command line, its ConfigMap and Secret files written where the
    pod mounts them (under `tmp`), the volume's mount point made a directory of `tmp`."""
    objs = {(d.get("kind"), d.get("metadata", {}).get("name")): d for d in docs}
    nats = objs.get(("StatefulSet", "nats"))
    if nats is None:
        errors.append("no StatefulSet nats")
        return
    spec = nats["spec"]["template"]["spec"]
    c = spec["containers"][0]
    root = os.path.join(tmp, "nats-pod")
    vols = {v["name"]: v for v in spec.get("volumes") or []}

    def local(path):
        return root + path

    for m in c.get("volumeMounts") or []:
        os.makedirs(local(m["mountPath"]), exist_ok=True)
        v = vols.get(m["name"], {})
        src = v.get("configMap") or v.get("secret")
        if src is None:
            continue
        o = objs.get(("ConfigMap", src.get("name"))) or objs.get(("Secret", src.get("secretName"))) or {}
        for key, value in (o.get("data") or {}).items():
            if "secret" in v:
                value = base64.b64decode(value).decode()
            # Absolute paths in the files (the store_dir) are the pod's: make them local.
            for m2 in c.get("volumeMounts") or []:
                value = value.replace(f'"{m2["mountPath"]}"', f'"{local(m2["mountPath"])}"')
            with open(os.path.join(local(m["mountPath"]), key), "w") as f:
                f.write(value)
    args = c.get("command", []) + c.get("args", [])
    args = [local(a) if a.startswith("/") and any(a.startswith(m["mountPath"]) for m in c.get("volumeMounts") or [])
            else a for a in args]
    run_nats(nats_server, args, tmp, errors)


# ---------------------------------------------------------------------------------------
# Garage: a real garage binary with deploy/garage/garage.toml, bootstrap.sh run against it.

def check_garage_run(cfg, garage_bin, tmp, errors):
    """Compose's Garage, run here: garage.toml with local directories and free ports on
    127.0.0.2, the secret files of Compose's environment; then its health check, and
    garage-init's bootstrap.sh (with its environment, the admin URL made local), three times
    with a restart before the third; then S3 with the messaging service's key."""
    import socket
    import subprocess
    import time
    import urllib.request

    services = cfg.get("services", {})
    garage, init, messaging = services.get("garage"), services.get("garage-init"), services.get("messaging")
    if not (garage and init and messaging):
        errors.append("garage, garage-init or messaging missing from the Compose file")
        return

    def free_port():
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    host = "127.0.0.2"
    s3, rpc, admin = free_port(), free_port(), free_port()
    root = os.path.join(tmp, "garage-run")
    os.makedirs(root, exist_ok=True)
    conf_in_container = flag(garage.get("command") or [], "-c", "--config")
    text = open(os.path.join(ROOT, GARAGE_TOML)).read()
    for old, new in [("/var/lib/garage", f"{root}/var"), ("[::]:3900", f"{host}:{s3}"),
                     ("[::]:3901", f"{host}:{rpc}"), ("127.0.0.1:3901", f"{host}:{rpc}"),
                     ("[::]:3903", f"{host}:{admin}")]:
        if old not in text:
            errors.append(f"garage.toml: {old} not found (the test rewrites it)")
            return
        text = text.replace(old, new)
    conf = os.path.join(root, "garage.toml")
    with open(conf, "w") as f:
        f.write(text)
    genv = {k: v for k, v in (garage.get("environment") or {}).items() if k.startswith("GARAGE_")}
    env = {**{k: v for k, v in os.environ.items() if k in ("PATH", "HOME")}, **genv, "RUST_LOG": "garage=warn"}
    log_path = os.path.join(root, "garage.log")

    def start():
        log = open(log_path, "a")
        proc = subprocess.Popen([garage_bin, "-c", conf, "server"], env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with socket.create_connection((host, admin), timeout=1):
                    return proc, log
            except OSError:
                time.sleep(0.1)
        errors.append(f"garage did not start: {open(log_path).read()[-800:]}")
        proc.kill()
        return None, log

    def stop(proc, log):
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()

    def bootstrap(name, overrides=None):
        ienv = dict(init.get("environment") or {})
        ienv["GARAGE_ADMIN_URL"] = f"http://{host}:{admin}"
        ienv.update(overrides or {})
        script = os.path.join(ROOT, GARAGE_BOOTSTRAP)
        run = subprocess.run(["sh", script], env={"PATH": os.environ["PATH"], "TMPDIR": root, **ienv},
                             capture_output=True, text=True, timeout=240)
        return run.returncode, run.stdout + run.stderr

    def s3_request(method, key, key_id, secret, data=None):
        """An S3 request signed (SigV4) by curl; the HTTP status and the body."""
        region = (messaging.get("environment") or {}).get("ASTRAL_S3_REGION")
        bucket = (messaging.get("environment") or {}).get("ASTRAL_STORAGE_URL", "")[len("s3://"):]
        url = f"http://{host}:{s3}/{bucket}/{key}"
        config = f'user = "{key_id}:{secret}"\n'
        args = ["curl", "-sS", "-K", "-", "--aws-sigv4", f"aws:amz:{region}:s3",
                "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", "-X", method,
                "-o", os.path.join(root, "s3-body"), "-w", "%{http_code}", url]
        if data is not None:
            with open(os.path.join(root, "s3-upload"), "wb") as f:
                f.write(data)
            args[-1:-1] = ["--data-binary", "@" + os.path.join(root, "s3-upload")]
        run = subprocess.run(args, input=config, capture_output=True, text=True, timeout=30)
        body = open(os.path.join(root, "s3-body"), "rb").read() if os.path.exists(os.path.join(root, "s3-body")) else b""
        return run.stdout.strip(), body

    proc, log = start()
    if proc is None:
        return
    try:
        # Compose's health check: the same command, with this config.
        test = [a if a != conf_in_container else conf for a in (garage.get("healthcheck") or {}).get("test", [])[1:]]
        if test and test[0] == "/garage":
            test[0] = garage_bin
        deadline = time.monotonic() + 20
        while True:
            health = subprocess.run(test, env=env, capture_output=True, text=True, timeout=20)
            if health.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if health.returncode != 0:
            errors.append(f"garage: the health check {test} fails: {(health.stdout + health.stderr)[-400:]}")
        for run in ["first", "second"]:
            code, out = bootstrap(run)
            if code != 0:
                errors.append(f"bootstrap.sh ({run} run) failed: {out[-800:]}")
                return
        if "exists" not in out or "created" in out or "imported" in out:
            errors.append(f"bootstrap.sh (second run) made something again: {out[-600:]}")
        menv = messaging.get("environment") or {}
        key_id = menv.get(S3_KEY_ID)
        secret = open(menv.get("ASTRAL_S3_SECRET_ACCESS_KEY_FILE", "/nonexistent")).read()
        payload = os.urandom(64 * 1024)
        status, _ = s3_request("PUT", "check/object", key_id, secret, payload)
        if status != "200":
            errors.append(f"S3 PUT with the messaging service's key: HTTP {status}")
        status, body = s3_request("GET", "check/object", key_id, secret)
        if status != "200" or body != payload:
            errors.append(f"S3 GET with the messaging service's key: HTTP {status}, {len(body)} bytes")
        status, _ = s3_request("GET", "check/object", "GK" + "0" * 24, "0" * 64)
        if status != "403":
            errors.append(f"S3 GET with an unknown key: HTTP {status}, not 403")
        # A key of that id with another secret: refused, not silently kept.
        other = os.path.join(root, "other.secret")
        with open(other, "w") as f:
            f.write("1" * 64)
        code, out = bootstrap("other secret", {"ASTRAL_S3_SECRET_ACCESS_KEY_FILE": other})
        if code == 0 or "another secret" not in out:
            errors.append(f"bootstrap.sh accepted a key of the same id with another secret: {out[-400:]}")
        # Idempotent on every start: again after a restart, and the object is still there.
        stop(proc, log)
        proc, log = start()
        if proc is None:
            return
        code, out = bootstrap("after a restart")
        if code != 0:
            errors.append(f"bootstrap.sh (after a restart) failed: {out[-800:]}")
        status, body = s3_request("GET", "check/object", key_id, secret)
        if status != "200" or body != payload:
            errors.append(f"S3 GET after a restart: HTTP {status}, {len(body)} bytes")
        # The admin API refuses a wrong token.
        req = urllib.request.Request(f"http://{host}:{admin}/v1/status", headers={"Authorization": "Bearer wrong"})
        try:
            urllib.request.urlopen(req, timeout=5)
            errors.append("garage: the admin API answered a wrong token")
        except urllib.error.HTTPError as e:
            if e.code != 403:
                errors.append(f"garage: a wrong admin token got HTTP {e.code}, not 403")
    finally:
        if proc is not None:
            stop(proc, log)


def main():
    errors = []
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "compose":
        check_compose(json.load(sys.stdin), args[1], errors)
    elif args == ["compose-loopback"]:
        check_compose_loopback(json.load(sys.stdin), errors)
    elif args == ["dockerfiles"]:
        check_dockerfiles(errors)
    elif args == ["caddy"]:
        check_caddy(json.load(sys.stdin), errors)
    elif len(args) == 3 and args[0] == "k8s" and args[1] in ("dev", "prod"):
        import yaml  # PyYAML: in the venv of scripts/check-deploy.sh
        docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
        check_k8s(args[1], docs, args[2], errors)
    elif len(args) == 3 and args[0] == "nats-compose":
        check_nats_compose(json.load(sys.stdin), args[1], args[2], errors)
    elif len(args) == 2 and args[0] == "push-compose":
        check_compose_push(json.load(sys.stdin), args[1], errors)
    elif len(args) == 3 and args[0] == "push-k8s" and args[1] in ("dev", "prod"):
        import yaml  # PyYAML: in the venv of scripts/check-deploy.sh
        docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
        check_k8s_push(args[1], docs, args[2], errors)
    elif len(args) == 3 and args[0] == "garage":
        check_garage_run(json.load(sys.stdin), args[1], args[2], errors)
    elif len(args) == 3 and args[0] == "nats-k8s":
        import yaml  # PyYAML: in the venv of scripts/check-deploy.sh
        docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
        check_nats_k8s(docs, args[1], args[2], errors)
    else:
        sys.exit(__doc__)
    for e in errors:
        print(f"  {e}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
