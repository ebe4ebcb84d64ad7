"""A grpcio server with grpcio-health-checking's servicer, for vigil's probe tests.

    health_server.py [CERT KEY [CLIENT_CA]]

Listens on a free loopback port (over TLS when given a certificate and key, requiring a client
certificate signed by CLIENT_CA when given one), prints the port,
and serves until its standard input closes. Names: "" and "up" are SERVING, "down" is
NOT_SERVING; any other name is unknown (NOT_FOUND).
"""

import sys
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc


def main():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    servicer.set("up", health_pb2.HealthCheckResponse.SERVING)
    servicer.set("down", health_pb2.HealthCheckResponse.NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    if len(sys.argv) >= 3:
        with open(sys.argv[1], "rb") as cert, open(sys.argv[2], "rb") as key:
            pair = (key.read(), cert.read())
        client_ca = None
        if len(sys.argv) == 4:
            with open(sys.argv[3], "rb") as ca:
                client_ca = ca.read()
        credentials = grpc.ssl_server_credentials(
            [pair], root_certificates=client_ca, require_client_auth=client_ca is not None
        )
        port = server.add_secure_port("127.0.0.1:0", credentials)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    sys.stdin.read()
    server.stop(grace=None)


if __name__ == "__main__":
    main()
