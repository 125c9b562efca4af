"""One exception hierarchy for everything the exporter refuses or fails to do.

Every message says what was wrong, what was expected, and what to do; every failure leaves the
model folder as it was (no numeric version folder is created or touched).
"""

from __future__ import annotations

from tfsk._base import layout
from tfsk._base.errors import EXIT_NOT_RIGHT, TfskError

__all__ = [
    "ContractChangeError",
    "ExportError",
    "HeadReuseError",
    "InputNamingError",
    "InvalidNameError",
    "KerasModelNotStoredError",
    "LoadComposedError",
    "ModelSourceError",
    "PartNotFoundError",
    "SplitError",
    "VerificationError",
    "VersionExistsError",
    "WidthMismatchError",
]


class ExportError(TfskError):
    """Base class: an export, assembly, listing or pruning that did not happen."""


class InvalidNameError(ExportError, layout.InvalidNameError):
    """A model or part name that cannot be a folder under the model base path."""


class VersionExistsError(ExportError):
    """The requested version is already on disk; versions are never overwritten."""


class PartNotFoundError(ExportError):
    """A part named for assembly has no such model folder or version."""


class WidthMismatchError(ExportError):
    """The head's input width differs from the width of the concatenated part outputs."""


class InputNamingError(ExportError):
    """The model's inputs or outputs cannot be given signature names."""


class ModelSourceError(ExportError):
    """A ``.keras`` file, factory or model object that could not be turned into a Keras model."""


class ContractChangeError(ExportError):
    """The new version would break the serving contract of the previous one; nothing was published.

    ``changes`` lists each difference (``before -> after``); ``previous_version`` is the version
    compared with. Pass ``allow_contract_change=True`` (``--allow-contract-change``) when intended.
    """

    exit_code = EXIT_NOT_RIGHT

    def __init__(self, message: str, *, previous_version: int | None = None, changes: list[str] | None = None) -> None:
        super().__init__(message)
        self.previous_version = previous_version
        self.changes = list(changes or [])


class SplitError(ExportError):
    """A joint model that does not separate into towers and one head at a concatenation."""

    exit_code = EXIT_NOT_RIGHT


class HeadReuseError(ExportError):
    """The head of an existing composed version cannot be reused for the new parts."""

    exit_code = EXIT_NOT_RIGHT


class LoadComposedError(ExportError):
    """A composed version that cannot be loaded back into Keras (no lineage, not composed, parts gone)."""


class KerasModelNotStoredError(LoadComposedError):
    """A part or head of the composed version keeps no usable ``.keras`` file (older export, unsaveable
    model, file changed or missing); re-exporting it is the remedy."""


class VerificationError(ExportError):
    """The written SavedModel is not what was asked for; nothing was published."""

    exit_code = EXIT_NOT_RIGHT


def check_name(name: str, what: str = "model name") -> str:
    """:func:`tfsk._base.layout.check_model_name`, raising this package's :class:`InvalidNameError`."""
    try:
        return layout.check_model_name(name, what)
    except layout.InvalidNameError as error:
        raise InvalidNameError(str(error)) from None
