"""A Keras model kept beside its SavedModel as a ``.keras`` file in ``assets.extra/``.

A SavedModel is what TF Serving runs, but Keras 3 cannot load one back as a trainable model. So a
version also keeps the Keras model it was made from (a composed version its head, a part version
the part), checked at export to load back and compute the same, with what is needed to call the
reloaded model by the signature's names. A model Keras cannot save (e.g. a custom layer without
``get_config``) is still exported; only this file is missing, and the lineage says why.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np

from tfsk._base import layout

from ._errors import ExportError
from ._examples import synthesize_examples
from ._keras_interface import KerasInterface, describe_keras_model
from ._sources import sha256_of

__all__ = ["interface_of_stored", "load_keras_file", "store_keras_model"]

logger = logging.getLogger(__name__)


def _has_symbolic_inputs(model: keras.Model) -> bool:
    try:
        return bool(model.inputs)
    except (AttributeError, ValueError):
        return False


def interface_of_stored(model: keras.Model, facts: Mapping[str, Any]) -> KerasInterface:
    """The reloaded ``model`` seen through the signature names its lineage ``facts`` record."""
    specs = facts.get("input_specs")
    if specs:  # a subclassed model: its inputs were named by input_specs at export
        return describe_keras_model(model, input_specs={k: (tuple(v["shape"]), v["dtype"]) for k, v in specs.items()},
                                    output_names=facts["output_names"])
    return describe_keras_model(model, input_names=facts["input_names"], output_names=facts["output_names"])


def _same(got: Any, want: Any) -> bool:
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return False
    if want.dtype.kind in "fc":
        return bool(np.allclose(got, want, atol=1e-6, rtol=1e-5))
    return bool(np.array_equal(got, want))


def store_keras_model(
    interface: KerasInterface,
    folder: Path,
    file_name: str,
    *,
    what: str,
    probe: Mapping[str, np.ndarray] | None = None,
) -> tuple[Path | None, dict[str, Any]]:
    """Save ``interface.model`` as ``folder/file_name``; check it loads back and computes the same on ``probe``.

    Returns the file (None when the model does not round-trip) and its lineage facts: the file, its
    sha256, and the signature's input and output names in the order the model takes and returns
    them (:func:`interface_of_stored` calls the reloaded model by them), or ``not_stored``: why not.
    """
    path = folder / file_name
    probe = probe if probe is not None else synthesize_examples(interface.inputs, batch=2)
    try:
        want = interface(probe)
        facts: dict[str, Any] = {"input_names": list(interface.inputs), "output_names": list(want)}
        if not _has_symbolic_inputs(interface.model):
            facts["input_specs"] = {k: {"shape": None if v.shape is None else list(v.shape), "dtype": v.dtype}
                                    for k, v in interface.inputs.items()}
        interface.model.save(path)
        reloaded = interface_of_stored(keras.models.load_model(path, compile=False), facts)
        got = reloaded(probe)
        for key, value in want.items():
            if key not in got or not _same(got[key], value):
                raise ValueError(f"the reloaded model's output '{key}' differs from the model's")
    except Exception as error:  # any failure only means this version keeps no Keras model
        reason = f"{what} does not round-trip through a .keras file: {type(error).__name__}: {error}"
        logger.warning("not storing %s as a .keras file: %s", what, reason)
        return None, {"file": None, "not_stored": reason}
    return path, {"file": file_name, "sha256": sha256_of(path), "format": "keras", "keras": keras.__version__,
                  **facts}


def load_keras_file(
    version_dir: Path, facts: Mapping[str, Any], *, where: str, what: str, error: type[ExportError], remedy: str
) -> tuple[keras.Model, str]:
    """The model a version keeps as ``facts["file"]`` and its sha256, checked against the lineage's.

    ``error`` is raised for a missing, changed or unloadable file, saying ``remedy``.
    """
    path = Path(version_dir) / layout.ASSETS_EXTRA / facts["file"]
    if not path.is_file():
        raise error(f"{where}: {what} file {path} is missing; {remedy}")
    digest = sha256_of(path)
    if facts.get("sha256") and digest != facts["sha256"]:
        raise error(f"{where}: {path} was changed after export (checksum differs from the lineage's); {remedy}")
    try:
        return keras.models.load_model(path, compile=False), digest
    except Exception as failure:  # Keras raises many kinds; all mean "this file cannot be used"
        raise error(f"{where}: cannot load {what} {path}: {type(failure).__name__}: {failure}; {remedy}") from failure
