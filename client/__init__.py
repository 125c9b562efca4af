"""tfsk.client: a light gRPC client for TF Serving and the devserver. It never imports TensorFlow.

    from tfsk.client import Client

    with Client("localhost:8500") as serving:       # or Client(): $TFSK_TARGET, else localhost:8500
        outputs = serving.predict("composed", {"tower_a__features": x, ...})
        outputs["prediction"], outputs.version
        serving.metadata("composed").signatures["part_tower_a"].inputs
        serving.parts("composed"); serving.check_consistency("composed").verdict

``AsyncClient`` offers the same calls for asyncio code (``await serving.predict(...)``).
``Client(..., route={"stable": 0.95, "canary": 0.05}, shadow={"label": "canary", "sample": 0.1},
capture=Capture("captured/"))`` splits, mirrors and captures Predict traffic (``read_capture``
reads it back). Everything the client raises is a :class:`ClientError`; what the server answers is a
:class:`ServingError` (one subclass per gRPC status code), often with a ``hint``.
"""

from ._async import AsyncClient
from ._capture import Capture, CaptureStats
from ._captured import CapturedCall, CaptureError, read_capture
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
from ._replay import ReplayReport, replay
from ._traffic import Shadow, ShadowStats, SideStats
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
    "Capture",
    "CaptureError",
    "CaptureStats",
    "CapturedCall",
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
    "ReplayReport",
    "ResourceExhaustedError",
    "ServingError",
    "Shadow",
    "ShadowStats",
    "SideStats",
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
    "read_capture",
    "replay",
]
