"""grpc.health.v1 client for vigil's interoperability tests, built on grpcio-health-checking.

    health_client.py check ADDRESS NAME [CA]   prints the status, or the error code of a failed call
    health_client.py watch ADDRESS NAME [CA]   prints each status the stream sends, one per line

With CA (a PEM file), the channel is TLS, trusting that CA, the server named `localhost`.
"""

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def status_name(response):
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


def main():
    command, address, name = sys.argv[1:4]
    if len(sys.argv) > 4:
        with open(sys.argv[4], "rb") as ca:
            credentials = grpc.ssl_channel_credentials(root_certificates=ca.read())
        channel = grpc.secure_channel(
            address, credentials, options=[("grpc.ssl_target_name_override", "localhost")])
    else:
        channel = grpc.insecure_channel(address)
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=name)
        if command == "check":
            try:
                print(status_name(stub.Check(request, timeout=10)), flush=True)
            except grpc.RpcError as error:
                print(error.code().name, flush=True)
        elif command == "watch":
            try:
                for response in stub.Watch(request):
                    print(status_name(response), flush=True)
                print("END", flush=True)
            except grpc.RpcError as error:
                print(error.code().name, flush=True)
        else:
            sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
