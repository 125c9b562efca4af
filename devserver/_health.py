"""``--enable_grpc_healthcheck_service``: the standard ``grpc.health.v1.Health`` service, as TF Serving sets it.

TF Serving enables gRPC's default health service (whose overall service ``""`` is SERVING) and marks
the unqualified names ``ModelService`` and ``PredictionService`` SERVING once the port is open. On
shutdown every name turns NOT_SERVING, so a load balancer stops sending before the port closes.
"""

from __future__ import annotations

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

__all__ = ["HEALTH_SERVICE_NAMES", "add_health_service"]

#: The names TF Serving registers (``model_servers/server.cc``), plus gRPC's overall name "".
HEALTH_SERVICE_NAMES = ("", "ModelService", "PredictionService")


def add_health_service(server: grpc.Server) -> health.HealthServicer:
    """Register the health service on ``server`` with TF Serving's names SERVING; returns it (for shutdown)."""
    servicer = health.HealthServicer()
    for name in HEALTH_SERVICE_NAMES:
        servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    return servicer
