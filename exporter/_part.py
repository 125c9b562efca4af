"""Export one Keras model (a part, or any standalone model) as a versioned SavedModel."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from tfsk._base.naming import DEFAULT_SIGNATURE as SERVING_DEFAULT

from ._errors import check_name
from ._examples import Examples, normalize_examples, synthesize_examples
from ._keras_file import store_keras_model
from ._keras_interface import DEFAULT_OUTPUT_NAME, InputSpecs, describe_keras_model
from ._result import ExportResult, ProgressCallback, no_progress
from ._sources import ModelSource, load_model_source
from ._specs import SignatureSpec, TensorSpecInfo
from ._verify import SignatureRun
from ._write import write_and_publish

__all__ = ["PART_FILE", "export_part"]

#: The part's Keras model in a part version's ``assets.extra/`` (``load_composed`` trains it again).
PART_FILE = "tfsk_part.keras"


def _spec_of(array: np.ndarray) -> TensorSpecInfo:
    dtype = "string" if array.dtype.kind in "OSU" else str(array.dtype)
    return TensorSpecInfo(dtype, (None, *array.shape[1:]))


def export_part(
    model: ModelSource,
    base: str | os.PathLike[str],
    name: str,
    *,
    version: int | None = None,
    input_names: Sequence[str] | None = None,
    input_specs: InputSpecs | None = None,
    output_names: Sequence[str] | None = None,
    default_output_name: str = DEFAULT_OUTPUT_NAME,
    examples: Examples | None = None,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    allow_contract_change: bool = False,
    provenance: Mapping[str, Any] | None = None,
    on_step: ProgressCallback = no_progress,
) -> ExportResult:
    """Export ``model`` as ``<base>/<name>/<version>/`` with a named ``serving_default`` signature.

    ``model`` is a Keras model, a ``.keras`` file or a ``module:function`` factory. Inputs are
    named after the model's ``Input`` names (or ``input_names``; ``input_specs`` for subclassed
    models), outputs after the model's dict keys or output layers (a single output is called
    ``default_output_name``). ``examples`` (one batch or a list of batches) are checked against
    the written model and stored as TF Serving warmup requests; without them, made-up inputs are
    used for the check only. The version is ``version`` or the next free number; it appears on
    disk only complete and verified. The Keras model is kept beside it as
    ``assets.extra/tfsk_part.keras`` (unless Keras cannot save it; the lineage's ``keras_file``
    says), so :func:`load_composed` can train it again.

    Input names Keras made up (``input_layer``, ``keras_tensor_1``, ...) are refused: name the
    ``keras.Input`` or pass ``input_names``. A version whose signature breaks the newest one's
    (see :func:`compare_signatures`) raises :class:`ContractChangeError` unless
    ``allow_contract_change``. ``provenance`` (JSON-able) is recorded in the lineage as where
    this version came from.
    """
    check_name(name, "part name")
    on_step("load")
    keras_model, origin = load_model_source(model, what=f"part '{name}'")
    interface = describe_keras_model(
        keras_model,
        input_names=input_names,
        input_specs=input_specs,
        output_names=output_names,
        default_output_name=default_output_name,
        refuse_generated_names=True,
    )
    what = f"part '{name}'"
    batches = normalize_examples(examples, interface.inputs, what) if examples is not None else [
        synthesize_examples(interface.inputs)
    ]
    references = [{k: np.asarray(v) for k, v in interface(batch).items()} for batch in batches]
    outputs = interface.expected_outputs or {k: _spec_of(v) for k, v in references[0].items()}
    expected = {SERVING_DEFAULT: SignatureSpec(dict(interface.inputs), outputs)}

    archive = keras.export.ExportArchive()
    archive.track(keras_model)
    archive.add_endpoint(SERVING_DEFAULT, interface, input_signature=[interface.tensor_specs()])
    facts: dict[str, Any] = {"source": origin,
                             "keras_model": {"class": type(keras_model).__qualname__, "name": keras_model.name}}
    with tempfile.TemporaryDirectory(prefix="tfsk-part-") as scratch:
        stored, facts["keras_file"] = store_keras_model(interface, Path(scratch), PART_FILE, what=what,
                                                        probe=batches[0])
        return write_and_publish(
            archive,
            model_dir=Path(base) / name,
            model_name=name,
            kind="part",
            version=version,
            expected=expected,
            runs=[SignatureRun(SERVING_DEFAULT, b, r) for b, r in zip(batches, references)],
            warmup=[(SERVING_DEFAULT, b) for b in batches] if examples is not None else [],
            facts=facts,
            provenance=provenance,
            atol=atol,
            rtol=rtol,
            on_step=on_step,
            allow_contract_change=allow_contract_change,
            extra_files={PART_FILE: stored} if stored is not None else None,
        )
