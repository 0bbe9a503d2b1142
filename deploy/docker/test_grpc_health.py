"""Self-test of deploy/docker/grpc-health.sh against a real gRPC health server (grpcio).

Run by scripts/check-deploy.sh: the probe writes gRPC frames by hand, so it is checked
against a real implementation of grpc.health.v1 rather than trusted. Runs the script under
/bin/sh (dash on Debian, as in the images).
"""

import os
import subprocess
import sys
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "grpc-health.sh")


def probe(*args, env=None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ASTRAL_")}
    full_env.update(env or {})
    result = subprocess.run(
        ["/bin/sh", SCRIPT, *args], env=full_env, capture_output=True, text=True, timeout=20
    )
    return result.returncode


def main():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    servicer.set("astral.auth.v1.AuthService", health_pb2.HealthCheckResponse.SERVING)
    servicer.set("astral.down.v1.Down", health_pb2.HealthCheckResponse.NOT_SERVING)

    cases = [
        ("whole server SERVING", (f"127.0.0.1:{port}",), None, 0),
        ("bare port", (str(port),), None, 0),
        ("port from ASTRAL_LISTEN", (), {"ASTRAL_LISTEN": f"0.0.0.0:{port}"}, 0),
        ("named service SERVING", (f"127.0.0.1:{port}", "astral.auth.v1.AuthService"), None, 0),
        ("named service NOT_SERVING", (f"127.0.0.1:{port}", "astral.down.v1.Down"), None, 1),
        ("unknown service", (f"127.0.0.1:{port}", "no.such.Service"), None, 1),
    ]
    failures = 0
    passed = 0

    def check(name, args, env, want):
        nonlocal failures, passed
        got = probe(*args, env=env)
        ok = got == want
        passed += ok
        failures += not ok
        print(f"  {'ok  ' if ok else 'FAIL'} {name}: exit {got} (want {want})")

    for name, args, env, want in cases:
        check(name, args, env, want)

    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    check("whole server NOT_SERVING", (f"127.0.0.1:{port}",), None, 1)

    server.stop(None).wait()
    check("nothing listening", (f"127.0.0.1:{port}",), None, 1)

    print(f"grpc-health.sh: {passed} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
