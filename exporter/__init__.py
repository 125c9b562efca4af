"""tfsk.exporter: Keras 3 models to versioned SavedModels with explicit signatures, published atomically.

- :func:`export_part` writes one model (a part) as ``<base>/<name>/<version>/``.
- :func:`export_composed` assembles ``head(concat(parts))`` from exported part versions into a
  self-contained composed model with a signature for the whole and one for each part.
- A new version must keep the newest version's serving contract (:class:`ContractChangeError`,
  :func:`compare_signatures`); a composed version stores its head for reuse (:class:`HeadRef`).
- :func:`list_models` and :func:`prune_versions` show and trim what is on disk.
- :func:`export_demo` exports the demo towers and their composed model.
"""

from ._composed import (
    HEAD_OUTPUT_NAME,
    PART_SIGNATURE_PREFIX,
    SEPARATOR,
    export_composed,
)
from ._contract import compare_signatures
from ._errors import (
    ContractChangeError,
    ExportError,
    HeadReuseError,
    InputNamingError,
    InvalidNameError,
    ModelSourceError,
    PartNotFoundError,
    VerificationError,
    VersionExistsError,
    WidthMismatchError,
)
from ._head import HeadRef
from ._inventory import ModelInfo, VersionInfo, list_models
from ._lineage import read_lineage
from ._part import export_part
from ._parts import PartRef
from ._result import EXPORT_STEPS, ExportResult
from ._retention import PruneResult, prune_versions
from ._specs import SignatureSpec, TensorSpecInfo
from .demo import export_demo

__all__ = [
    "EXPORT_STEPS",
    "HEAD_OUTPUT_NAME",
    "PART_SIGNATURE_PREFIX",
    "SEPARATOR",
    "ContractChangeError",
    "ExportError",
    "ExportResult",
    "HeadRef",
    "HeadReuseError",
    "InputNamingError",
    "InvalidNameError",
    "ModelInfo",
    "ModelSourceError",
    "PartNotFoundError",
    "PartRef",
    "PruneResult",
    "SignatureSpec",
    "TensorSpecInfo",
    "VerificationError",
    "VersionExistsError",
    "VersionInfo",
    "WidthMismatchError",
    "compare_signatures",
    "export_composed",
    "export_demo",
    "export_part",
    "list_models",
    "prune_versions",
    "read_lineage",
]
