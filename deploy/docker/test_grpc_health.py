"""Self-test of deploy/docker/grpc-health.sh against a real gRPC health server (grpcio).

Run by scripts/check-deploy.sh: the probe writes gRPC frames by hand, so it is checked
against a real implementation of grpc.health.v1 rather than trusted. Runs the script under
/bin/sh (dash on Debian, as in the images).

  python test_grpc_health.py [ASTRAL_ADMIN]

With the path of an `astral-admin` binary, the mutual-TLS cases run too: two deployments'
secrets are made with `astral-admin secrets init`, a server presents the auth certificate
of the first and requires a client certificate from its CA, and the probe runs with a role's
ASTRAL_TLS_* settings, as in the images.
"""

import os
import subprocess
import sys
import tempfile
from concurrent import futures

# grpcio logs every failed handshake (the refusals tested here) unless told otherwise.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import grpc  # noqa: E402
from grpc_health.v1 import health, health_pb2, health_pb2_grpc  # noqa: E402

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "grpc-health.sh")


def probe(*args, env=None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ASTRAL_")}
    full_env.update(env or {})
    result = subprocess.run(
        ["/bin/sh", SCRIPT, *args], env=full_env, capture_output=True, text=True, timeout=20
    )
    return result.returncode


def serve(credentials=None):
    """A health server on a free port of 127.0.0.1: (server, servicer, port)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    if credentials is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    servicer.set("astral.auth.v1.AuthService", health_pb2.HealthCheckResponse.SERVING)
    servicer.set("astral.down.v1.Down", health_pb2.HealthCheckResponse.NOT_SERVING)
    return server, servicer, port


def secrets(admin, parent, name):
    """A new deployment's secrets (astral-admin secrets init): {file name: path}."""
    path = os.path.join(parent, name)
    subprocess.run([admin, "secrets", "init", path], check=True, capture_output=True, timeout=60)
    return {f: os.path.join(path, f) for f in os.listdir(path)}


def tls_env(files, role):
    return {"ASTRAL_TLS_CA": files["ca.pem"], "ASTRAL_TLS_CERT": files[f"{role}.pem"],
            "ASTRAL_TLS_KEY": files[f"{role}.key"]}


def main():
    admin = sys.argv[1] if len(sys.argv) > 1 else None
    failures = 0
    passed = 0

    def check(name, args, env, want):
        nonlocal failures, passed
        got = probe(*args, env=env)
        ok = got == want
        passed += ok
        failures += not ok
        print(f"  {'ok  ' if ok else 'FAIL'} {name}: exit {got} (want {want})")

    # --- HTTP/2 cleartext (ASTRAL_INSECURE_DEV servers) -----------------------------------
    server, servicer, port = serve()
    cases = [
        ("whole server SERVING", (f"127.0.0.1:{port}",), None, 0),
        ("bare port", (str(port),), None, 0),
        ("port from ASTRAL_LISTEN", (), {"ASTRAL_LISTEN": f"0.0.0.0:{port}"}, 0),
        ("named service SERVING", (f"127.0.0.1:{port}", "astral.auth.v1.AuthService"), None, 0),
        ("named service NOT_SERVING", (f"127.0.0.1:{port}", "astral.down.v1.Down"), None, 1),
        ("unknown service", (f"127.0.0.1:{port}", "no.such.Service"), None, 1),
    ]
    for name, args, env, want in cases:
        check(name, args, env, want)

    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    check("whole server NOT_SERVING", (f"127.0.0.1:{port}",), None, 1)

    server.stop(None).wait()
    check("nothing listening", (f"127.0.0.1:{port}",), None, 1)

    # --- mutual TLS, with a deployment's real certificates -------------------------------
    if admin is None:
        print("  skipped: the mutual-TLS cases (no astral-admin given)")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            ours = secrets(admin, tmp, "ours")
            theirs = secrets(admin, tmp, "theirs")
            read = lambda path: open(path, "rb").read()  # noqa: E731
            credentials = grpc.ssl_server_credentials(
                [(read(ours["auth.key"]), read(ours["auth.pem"]))],
                root_certificates=read(ours["ca.pem"]),
                require_client_auth=True,
            )
            server, servicer, port = serve(credentials)
            target = f"127.0.0.1:{port}"
            listen = {"ASTRAL_LISTEN": f"0.0.0.0:{port}"}
            check("TLS: the server's own certificate (as in its container)", (),
                  {**listen, **tls_env(ours, "auth")}, 0)
            check("TLS: another role's certificate of the deployment", (target,), tls_env(ours, "gateway"), 0)
            check("TLS: named service SERVING", (target, "astral.auth.v1.AuthService"),
                  tls_env(ours, "auth"), 0)
            check("TLS: named service NOT_SERVING", (target, "astral.down.v1.Down"), tls_env(ours, "auth"), 1)
            check("TLS: cleartext against a TLS server", (target,), None, 1)
            check("TLS: a client certificate of another deployment", (target,),
                  {**tls_env(theirs, "auth"), "ASTRAL_TLS_CA": ours["ca.pem"]}, 1)
            check("TLS: a server the CA did not sign (another deployment's CA)", (target,),
                  tls_env(theirs, "auth"), 1)
            check("TLS: only some ASTRAL_TLS_* set", (target,), {"ASTRAL_TLS_CA": ours["ca.pem"]}, 64)
            servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
            check("TLS: whole server NOT_SERVING", (target,), tls_env(ours, "auth"), 1)
            server.stop(None).wait()

    print(f"grpc-health.sh: {passed} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
