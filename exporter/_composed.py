"""Assemble the concatenated model from exported parts: head(concat(part outputs)).

The composed version is one self-contained SavedModel: its ``serving_default`` takes every part's
inputs (``<part>__<input>``) and returns the head's outputs and every part's outputs
(``<part>__<output>``); ``part_<name>`` signatures return one part's outputs from the same baked-in
weights, taking the part's own input names, so a request for a standalone part works unchanged
against the composed model with ``signature_name="part_<name>"``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfsk._base.naming import DEFAULT_SIGNATURE as SERVING_DEFAULT
from tfsk._base.naming import HEAD_OUTPUT_NAME, PART_SIGNATURE_PREFIX
from tfsk._base.naming import INPUT_SEPARATOR as SEPARATOR

from ._errors import ExportError, InputNamingError, WidthMismatchError, check_name
from ._examples import Examples, normalize_examples, synthesize_examples
from ._head import HEAD_FILE, HeadRef, check_reused_layout, is_head_ref, load_head, store_head
from ._keras_interface import KerasInterface, describe_keras_model
from ._parts import LoadedPart, PartRef, load_part
from ._result import ExportResult, ProgressCallback, no_progress
from ._sources import ModelSource, load_model_source
from ._specs import SignatureSpec, TensorSpecInfo
from ._verify import SignatureRun
from ._write import write_and_publish

__all__ = ["HEAD_OUTPUT_NAME", "PART_SIGNATURE_PREFIX", "SEPARATOR", "assemble_composed", "export_composed"]



def _concatenation_layout(parts: Sequence[LoadedPart]) -> list[tuple[LoadedPart, str, int]]:
    """Each part's outputs in key order, flattened to (batch, width), laid side by side in part order."""
    return [(part, key, part.width(key)) for part in parts for key in sorted(part.outputs)]


class _Composition:
    """The parts, the head and how the parts' outputs are laid side by side."""

    def __init__(self, parts: list[LoadedPart], head: KerasInterface) -> None:
        self.parts = parts
        self.head = head
        self.head_input = next(iter(head.inputs))
        self.head_dtype = tf.as_dtype(head.inputs[self.head_input].dtype)
        self.layout = _concatenation_layout(parts)
        self.width = sum(width for _, _, width in self.layout)

    def signature_inputs(self) -> dict[str, TensorSpecInfo]:
        return {f"{p.name}{SEPARATOR}{k}": v for p in self.parts for k, v in p.inputs.items()}

    def part_inputs(self, part: LoadedPart, inputs: dict[str, Any]) -> dict[str, Any]:
        return {key: inputs[f"{part.name}{SEPARATOR}{key}"] for key in part.inputs}

    def __call__(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """The graph of ``serving_default`` (traced by ``tf.function``)."""
        outputs: dict[str, Any] = {}
        results = {part.name: part(self.part_inputs(part, inputs)) for part in self.parts}
        for part in self.parts:
            for key, value in results[part.name].items():
                outputs[f"{part.name}{SEPARATOR}{key}"] = value
        features = [
            tf.cast(tf.reshape(results[part.name][key], [-1, width]), self.head_dtype) for part, key, width in self.layout
        ]
        outputs.update(self.head({self.head_input: tf.concat(features, axis=-1)}))
        return outputs

    def reference(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The same computation done step by step in numpy, to check the traced graph against."""
        results = {p.name: {k: v.numpy() for k, v in p(self.part_inputs(p, inputs)).items()} for p in self.parts}
        expected = {f"{p}{SEPARATOR}{k}": v for p, out in results.items() for k, v in out.items()}
        concatenated = np.concatenate(
            [results[part.name][key].reshape(-1, width) for part, key, width in self.layout], axis=-1
        ).astype(self.head_dtype.as_numpy_dtype)
        expected.update({k: np.asarray(v) for k, v in self.head({self.head_input: concatenated}).items()})
        return expected

    def describe_layout(self) -> str:
        return " + ".join(f"{part.name}.{key} {width}" for part, key, width in self.layout)


def _check_head(head: KerasInterface, composition_width: int, layout: str) -> None:
    if len(head.inputs) != 1:
        raise WidthMismatchError(
            f"the head must take one input (the concatenation), it takes {len(head.inputs)}: {sorted(head.inputs)}"
        )
    spec = next(iter(head.inputs.values()))
    if spec.shape is None or len(spec.shape) != 2:
        raise WidthMismatchError(f"the head's input must be (batch, features), it is {spec.describe()}")
    if spec.shape[1] != composition_width:
        raise WidthMismatchError(
            f"the head takes input width {spec.shape[1]} but the parts concatenate to width "
            f"{composition_width} ({layout}); build the head for width {composition_width}"
        )


def _check_distinct(names: Sequence[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputNamingError(f"two {what} of the composed model would both be named {name!r}; rename one")
        seen.add(name)


def export_composed(
    base: str | os.PathLike[str],
    name: str,
    parts: Sequence[str | PartRef],
    head: ModelSource | HeadRef,
    *,
    parts_base: str | os.PathLike[str] | None = None,
    version: int | None = None,
    examples: Examples | None = None,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    allow_contract_change: bool = False,
    provenance: Mapping[str, Any] | None = None,
    on_step: ProgressCallback = no_progress,
) -> ExportResult:
    """Assemble ``head(concat(parts))`` from exported part versions and export it as ``<base>/<name>``.

    ``parts`` are ``name@version`` / ``name@latest`` references to folders under ``parts_base``
    (default ``base``); their outputs are flattened to (batch, features) and concatenated in the
    order given (each part's outputs in key order). ``head`` is a Keras model, a ``.keras`` file
    or a ``module:function`` factory called with the concatenated width. ``examples`` are keyed by
    the composed input names (``<part>__<input>``).

    ``head`` may also be an existing composed version (:class:`HeadRef`, or ``"NAME@VERSION"`` /
    ``"NAME@latest"`` under ``base``): its stored head is reused, and the parts must lay out
    (order, outputs, widths) exactly as that head was built for, else :class:`HeadReuseError`.
    Every composed version stores its head in ``assets.extra/tfsk_head.keras`` for that. A
    version whose signatures or part layout break the newest version's raises
    :class:`ContractChangeError` unless ``allow_contract_change``. ``provenance`` (JSON-able) is
    recorded in the lineage as where this version came from.
    """
    return assemble_composed(base, name, parts, head, parts_base=parts_base, version=version, examples=examples,
                             atol=atol, rtol=rtol, allow_contract_change=allow_contract_change,
                             provenance=provenance, on_step=on_step)


#: Given a batch of composed inputs and the head's output naming, the outputs the written model
#: must give instead of the step-by-step reference (a split checks against the joint model).
ReferenceOverride = Callable[[dict[str, np.ndarray], Callable[[Any], dict[str, Any]]], dict[str, np.ndarray]]


def assemble_composed(
    base: str | os.PathLike[str],
    name: str,
    parts: Sequence[str | PartRef],
    head: ModelSource | HeadRef,
    *,
    parts_base: str | os.PathLike[str] | None,
    version: int | None,
    examples: Examples | None,
    atol: float,
    rtol: float,
    allow_contract_change: bool,
    provenance: Mapping[str, Any] | None,
    on_step: ProgressCallback,
    reference_override: ReferenceOverride | None = None,
) -> ExportResult:
    """:func:`export_composed`, optionally verified against other expected outputs (a split's joint model)."""
    check_name(name, "composed model name")
    refs = [ref if isinstance(ref, PartRef) else PartRef.parse(ref) for ref in parts]
    if not refs:
        raise ExportError("a composed model needs at least one part")
    _check_distinct([ref.name for ref in refs], "parts")
    on_step("load")
    loaded = [load_part(parts_base if parts_base is not None else base, ref) for ref in refs]
    new_layout = [(part.name, key, width) for part, key, width in _concatenation_layout(loaded)]
    width = sum(width for _, _, width in new_layout)
    if is_head_ref(head):
        reused = load_head(base, head if isinstance(head, HeadRef) else HeadRef.parse(str(head)))
        check_reused_layout(reused, new_layout)
        head_model, head_origin = reused.model, reused.origin
    else:
        head_model, head_origin = load_model_source(head, what="head", factory_args=(width,))
    head_interface = describe_keras_model(head_model, default_output_name=HEAD_OUTPUT_NAME)
    composition = _Composition(loaded, head_interface)
    _check_head(head_interface, composition.width, composition.describe_layout())

    inputs = composition.signature_inputs()
    _check_distinct(list(inputs), "inputs")
    what = f"composed model '{name}'"
    batches = normalize_examples(examples, inputs, what) if examples is not None else [synthesize_examples(inputs)]
    references = [composition.reference(batch) for batch in batches]
    if reference_override is not None:
        for batch, reference in zip(batches, references):
            reference.update(reference_override(batch, head_interface.name_outputs))
    head_outputs = head_interface.expected_outputs or {
        k: TensorSpecInfo(str(v.dtype), (None, *v.shape[1:])) for k, v in references[0].items() if SEPARATOR not in k
    }
    part_outputs = {f"{p.name}{SEPARATOR}{k}": v for p in loaded for k, v in p.outputs.items()}
    _check_distinct([*head_outputs, *part_outputs], "outputs")
    expected = {SERVING_DEFAULT: SignatureSpec(inputs, {**part_outputs, **head_outputs})}
    expected.update({PART_SIGNATURE_PREFIX + p.name: SignatureSpec(dict(p.inputs), dict(p.outputs)) for p in loaded})

    archive = keras.export.ExportArchive()
    archive.track(head_model)
    for part in loaded:
        archive.track(part.loaded)
    specs = {k: tf.TensorSpec(v.shape, tf.as_dtype(v.dtype), name=k) for k, v in inputs.items()}
    archive.add_endpoint(SERVING_DEFAULT, composition, input_signature=[specs])
    for part in loaded:
        part_specs = {k: tf.TensorSpec(v.shape, tf.as_dtype(v.dtype), name=k) for k, v in part.inputs.items()}
        archive.add_endpoint(PART_SIGNATURE_PREFIX + part.name, part, input_signature=[part_specs])

    runs, warmup = [], []
    for batch, reference in zip(batches, references):
        runs.append(SignatureRun(SERVING_DEFAULT, batch, reference))
        warmup.append((SERVING_DEFAULT, batch))
        for part in loaded:
            part_batch = composition.part_inputs(part, batch)
            part_expected = {k: v.numpy() for k, v in part(part_batch).items()}
            runs.append(SignatureRun(PART_SIGNATURE_PREFIX + part.name, part_batch, part_expected))
            warmup.append((PART_SIGNATURE_PREFIX + part.name, part_batch))
    facts: dict[str, Any] = {
        "parts": [
            {
                "name": p.name,
                "version": p.version,
                "path": str(p.path.resolve()),
                "signature": PART_SIGNATURE_PREFIX + p.name,
                "exported": (p.lineage or {}).get("created"),
                "source": (p.lineage or {}).get("source"),
                # which Keras model of the part this version serves: load_composed checks it is the same
                "keras_sha256": ((p.lineage or {}).get("keras_file") or {}).get("sha256"),
            }
            for p in loaded
        ],
        "head": {"source": head_origin, "input_width": composition.width, "outputs": sorted(head_outputs)},
        "concatenation": [
            {"part": part.name, "output": key, "width": width} for part, key, width in composition.layout
        ],
        "naming": {"input_separator": SEPARATOR, "part_signature_prefix": PART_SIGNATURE_PREFIX},
    }
    with tempfile.TemporaryDirectory(prefix="tfsk-head-") as scratch:
        stored, head_facts = store_head(head_interface, Path(scratch))
        facts["head"].update(head_facts)
        return write_and_publish(
            archive,
            model_dir=Path(base) / name,
            model_name=name,
            kind="composed",
            version=version,
            expected=expected,
            runs=runs,
            warmup=warmup if examples is not None else [],
            facts=facts,
            provenance=provenance,
            atol=atol,
            rtol=rtol,
            on_step=on_step,
            allow_contract_change=allow_contract_change,
            concatenation=new_layout,
            extra_files={HEAD_FILE: stored} if stored is not None else None,
        )
