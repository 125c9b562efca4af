"""tfsk.client: a light gRPC client for TF Serving and the devserver. It never imports TensorFlow.

    from tfsk.client import Client

    with Client("localhost:8500") as serving:       # or Client(): $TFSK_TARGET, else localhost:8500
        outputs = serving.predict("composed", {"tower_a__features": x, ...})
        outputs["prediction"], outputs.version
        serving.metadata("composed").signatures["part_tower_a"].inputs
        serving.parts("composed"); serving.check_consistency("composed").verdict

``AsyncClient`` offers the same calls for asyncio code (``await serving.predict(...)``).
Everything the client raises is a :class:`ClientError`; what the server answers is a
:class:`ServingError` (one subclass per gRPC status code), often with a ``hint``.
"""

from ._async import AsyncClient
from ._channel import DEFAULT_TARGET, TARGET_ENV, TLS, default_target
from ._client import Client
from ._codec import decode_tensor, encode_as_fields, encode_tensor
from ._errors import (
    AbortedError,
    AlreadyExistsError,
    CancelledError,
    ClientError,
    DataLossError,
    DeadlineExceededError,
    FailedPreconditionError,
    InputError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    OutOfRangeError,
    PermissionDeniedError,
    ResourceExhaustedError,
    ServingError,
    TargetError,
    TensorDecodeError,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
    UnknownError,
    WaitTimeoutError,
)
from ._types import (
    ConsistencyReport,
    ModelMetadata,
    PartCheck,
    PartInfo,
    Prediction,
    Signature,
    TensorSpec,
    Verdict,
    VersionStatus,
)

__all__ = [
    "DEFAULT_TARGET",
    "TARGET_ENV",
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
    "InputError",
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
    "TargetError",
    "TensorDecodeError",
    "TensorSpec",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
    "UnknownError",
    "Verdict",
    "VersionStatus",
    "WaitTimeoutError",
    "decode_tensor",
    "default_target",
    "encode_as_fields",
    "encode_tensor",
]
