"""tfsk.client: a light gRPC client for TF Serving and the devserver. It never imports TensorFlow.

    from tfsk.client import Client

    with Client("localhost:8500") as serving:
        outputs = serving.predict("composed", {"tower_a__features": x, ...})
        outputs["prediction"], outputs.version
        serving.metadata("composed").signatures["part_tower_a"].inputs
        serving.parts("composed"); serving.check_consistency("composed")

``AsyncClient`` offers the same calls (but parts and the consistency check) for asyncio code.
"""

from tfsk._base.codec import (
    TensorDecodeError,
    decode_tensor,
    encode_as_fields,
    encode_tensor,
)

from ._async import AsyncClient
from ._channel import TLS
from ._client import DEFAULT_TARGET, Client
from ._errors import (
    AbortedError,
    AlreadyExistsError,
    CancelledError,
    ClientError,
    DataLossError,
    DeadlineExceededError,
    FailedPreconditionError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    OutOfRangeError,
    PermissionDeniedError,
    ResourceExhaustedError,
    ServingError,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
    UnknownError,
)
from ._types import (
    ConsistencyReport,
    ModelMetadata,
    PartCheck,
    PartInfo,
    Prediction,
    Signature,
    TensorSpec,
    VersionStatus,
)

__all__ = [
    "DEFAULT_TARGET",
    "TLS",
    "AbortedError",
    "AlreadyExistsError",
    "AsyncClient",
    "CancelledError",
    "Client",
    "ClientError",
    "ConsistencyReport",
    "DataLossError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "InternalError",
    "InvalidArgumentError",
    "ModelMetadata",
    "NotFoundError",
    "OutOfRangeError",
    "PartCheck",
    "PartInfo",
    "PermissionDeniedError",
    "Prediction",
    "ResourceExhaustedError",
    "ServingError",
    "Signature",
    "TensorDecodeError",
    "TensorSpec",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
    "UnknownError",
    "VersionStatus",
    "decode_tensor",
    "encode_as_fields",
    "encode_tensor",
]
