"""Structural checks of the deployment files, used by scripts/check-deploy.sh.

  python deploy/checks.py compose < rendered.json   # `docker-compose config --format json`
  python deploy/checks.py dockerfiles                # the two Dockerfiles stay in step

`docker-compose config` proves the file is valid Compose; these check that it still says
what the project relies on (issue 8: two replicas each, proxy on :8000, health checks,
depends_on conditions, non-root hardening, one database per service).
"""

import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SERVICES = {"auth": 50051, "social": 50052, "messaging": 50053}
NEEDS = {"auth": [], "social": ["auth"], "messaging": ["auth", "social"]}


def check_compose(cfg, errors):
    services = cfg.get("services", {})

    def need(cond, msg):
        if not cond:
            errors.append(msg)

    for name in ["nats", "postgres", *SERVICES, "gateway", "proxy"]:
        need(name in services, f"service {name} is missing")
    if errors:
        return

    nats_cmd = " ".join(services["nats"].get("command") or [])
    need(re.search(r"(^|\s)(-js|--jetstream)(\s|$)", nats_cmd), "nats: JetStream not enabled")

    pg = services["postgres"]
    need(any(v.get("target") == "/var/lib/postgresql/data" and v.get("type") == "volume"
             for v in pg.get("volumes", [])), "postgres: no named volume for its data")
    need(any(str(v.get("target", "")).startswith("/docker-entrypoint-initdb.d")
             and str(v.get("source", "")).endswith("deploy/postgres/init.sql")
             for v in pg.get("volumes", [])), "postgres: init.sql not mounted")
    need("healthcheck" in pg, "postgres: no healthcheck")

    def hardened(name, svc):
        need(svc.get("read_only") is True, f"{name}: not read_only")
        need("ALL" in (svc.get("cap_drop") or []), f"{name}: capabilities not dropped")
        need(svc.get("healthcheck", {}).get("test"), f"{name}: no healthcheck")
        need((svc.get("deploy") or {}).get("replicas", 1) >= 2, f"{name}: fewer than 2 replicas")
        need("OTEL_EXPORTER_OTLP_ENDPOINT" in svc.get("environment", {}),
             f"{name}: OTEL_EXPORTER_OTLP_ENDPOINT not passed through")

    for name, port in SERVICES.items():
        svc = services[name]
        env = svc.get("environment", {})
        hardened(name, svc)
        need(svc.get("build", {}).get("dockerfile") == "Dockerfile.service",
             f"{name}: not built from Dockerfile.service")
        need(svc.get("build", {}).get("args", {}).get("SERVICE") == name,
             f"{name}: build arg SERVICE is not {name}")
        need(env.get("ASTRAL_LISTEN") == f"0.0.0.0:{port}", f"{name}: ASTRAL_LISTEN is not 0.0.0.0:{port}")
        need(re.fullmatch(rf"postgres://[^@]+@postgres:5432/astral_{name}", env.get("DATABASE_URL") or ""),
             f"{name}: DATABASE_URL does not point at astral_{name}")
        need(env.get("NATS_URL") == "nats://nats:4222", f"{name}: NATS_URL")
        deps = svc.get("depends_on", {})
        for dep in ["postgres", "nats", *NEEDS[name]]:
            need(deps.get(dep, {}).get("condition") == "service_healthy",
                 f"{name}: does not wait for {dep} to be healthy")
        for dep in NEEDS[name]:
            key = f"ASTRAL_{dep.upper()}_URL"
            need(env.get(key) == f"http://{dep}:{SERVICES[dep]}", f"{name}: {key}")

    gw = services["gateway"]
    env = gw.get("environment", {})
    hardened("gateway", gw)
    need(gw.get("build", {}).get("dockerfile") == "Dockerfile.gateway", "gateway: not built from Dockerfile.gateway")
    need(env.get("ASTRAL_LISTEN") == "0.0.0.0:8000", "gateway: ASTRAL_LISTEN")
    for dep, port in SERVICES.items():
        need(env.get(f"ASTRAL_{dep.upper()}_URL") == f"http://{dep}:{port}", f"gateway: ASTRAL_{dep.upper()}_URL")
        need(gw.get("depends_on", {}).get(dep, {}).get("condition") == "service_healthy",
             f"gateway: does not wait for {dep}")
    need("/readyz" in " ".join(gw["healthcheck"]["test"]), "gateway: healthcheck is not /readyz")

    proxy = services["proxy"]
    need(any(p.get("target") == 8000 and str(p.get("published")) == "8000"
             for p in proxy.get("ports", [])), "proxy: does not publish :8000")
    need(proxy.get("depends_on", {}).get("gateway", {}).get("condition") == "service_healthy",
         "proxy: does not wait for the gateways")
    need(not set(proxy.get("networks", {})) & {"backend"}, "proxy: must not be on the backend network")
    for name in ["postgres", "nats", *SERVICES]:
        need(not services[name].get("ports"), f"{name}: publishes a port on the host")


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


def main():
    errors = []
    if sys.argv[1:] == ["compose"]:
        check_compose(json.load(sys.stdin), errors)
    elif sys.argv[1:] == ["dockerfiles"]:
        check_dockerfiles(errors)
    else:
        sys.exit(__doc__)
    for e in errors:
        print(f"  {e}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
