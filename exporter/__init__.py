"""tfsk.exporter: Keras 3 models to versioned SavedModels with explicit signatures, published atomically.

- :func:`export_part` writes one model (a part) as ``<base>/<name>/<version>/``.
- :func:`export_split` splits a jointly trained model at its concatenation into parts and its
  trained head, and publishes them as parts plus the composed model.
- :func:`export_composed` assembles ``head(concat(parts))`` from exported part versions into a
  self-contained composed model with a signature for the whole and one for each part.
- A new version must keep the newest version's serving contract (:class:`ContractChangeError`,
  :func:`compare_signatures`); a composed version stores its head for reuse (:class:`HeadRef`).
- Every part version keeps its Keras model too: :func:`load_composed` loads a served composed
  version back into Keras (parts as named, trainable sub-models, then the head) to retrain a tower.
- :func:`list_models` and :func:`prune_versions` show and trim what is on disk.

Names are imported on first use (module ``__getattr__``), so ``import tfsk.exporter`` (and so
``tfsk export --help``) does not load TensorFlow until something that needs it is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tfsk._base.lazy import lazy_exports

# public name -> the private module that defines it
_WHERE = {
    "EXPORT_STEPS": "._result",
    "HEAD_OUTPUT_NAME": "._composed",
    "PART_SIGNATURE_PREFIX": "._composed",
    "SEPARATOR": "._composed",
    "ContractChangeError": "._errors",
    "ExportError": "._errors",
    "ExportResult": "._result",
    "HeadRef": "._head",
    "HeadReuseError": "._errors",
    "InputNamingError": "._errors",
    "InvalidNameError": "._errors",
    "KerasModelNotStoredError": "._errors",
    "LoadComposedError": "._errors",
    "ModelInfo": "._inventory",
    "ModelSourceError": "._errors",
    "PartNotFoundError": "._errors",
    "PartRef": "._parts",
    "PruneResult": "._retention",
    "SignatureSpec": "._specs",
    "SplitError": "._errors",
    "TensorSpecInfo": "._specs",
    "VerificationError": "._errors",
    "VersionExistsError": "._errors",
    "VersionInfo": "._inventory",
    "WidthMismatchError": "._errors",
    "compare_signatures": "._contract",
    "export_composed": "._composed",
    "export_part": "._part",
    "export_split": "._split",
    "list_models": "._inventory",
    "load_composed": "._load",
    "prune_versions": "._retention",
    "read_lineage": "._lineage",
}

# Written out (not sorted(_WHERE)) so type checkers and linters see it; tests/test_public_api.py
# checks it against _WHERE.
__all__ = [
    "ContractChangeError",
    "EXPORT_STEPS",
    "ExportError",
    "ExportResult",
    "HEAD_OUTPUT_NAME",
    "HeadRef",
    "HeadReuseError",
    "InputNamingError",
    "InvalidNameError",
    "KerasModelNotStoredError",
    "LoadComposedError",
    "ModelInfo",
    "ModelSourceError",
    "PART_SIGNATURE_PREFIX",
    "PartNotFoundError",
    "PartRef",
    "PruneResult",
    "SEPARATOR",
    "SignatureSpec",
    "SplitError",
    "TensorSpecInfo",
    "VerificationError",
    "VersionExistsError",
    "VersionInfo",
    "WidthMismatchError",
    "compare_signatures",
    "export_composed",
    "export_part",
    "export_split",
    "list_models",
    "load_composed",
    "prune_versions",
    "read_lineage",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)


if TYPE_CHECKING:  # what type checkers and IDEs see: the eager imports
    from ._composed import HEAD_OUTPUT_NAME, PART_SIGNATURE_PREFIX, SEPARATOR, export_composed
    from ._contract import compare_signatures
    from ._errors import (
        ContractChangeError,
        ExportError,
        HeadReuseError,
        InputNamingError,
        InvalidNameError,
        KerasModelNotStoredError,
        LoadComposedError,
        ModelSourceError,
        PartNotFoundError,
        SplitError,
        VerificationError,
        VersionExistsError,
        WidthMismatchError,
    )
    from ._head import HeadRef
    from ._inventory import ModelInfo, VersionInfo, list_models
    from ._lineage import read_lineage
    from ._load import load_composed
    from ._part import export_part
    from ._parts import PartRef
    from ._result import EXPORT_STEPS, ExportResult
    from ._retention import PruneResult, prune_versions
    from ._specs import SignatureSpec, TensorSpecInfo
    from ._split import export_split
