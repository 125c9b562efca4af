"""Split a jointly trained model into its towers and trained head, and publish them as parts + composed.

The seed article trains one Keras model, ``head(concatenate([tower_1, tower_2, ...]))``. Here each
tower becomes a part (the sub-graph from its own inputs to its input of the concatenation, with
the trained weights), and the composed model is assembled from exactly those part versions with
the trained head (everything after the concatenation). Before anything is published, the split
is checked in Keras (head(concat(towers)) must equal the joint model); the composed SavedModel is
then verified against the joint model itself, and each part's output against the joint model's
tensor at its concatenation input.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import numpy as np

from tfsk._base.naming import INPUT_SEPARATOR

from ._composed import assemble_composed
from ._errors import InputNamingError, SplitError, check_name
from ._examples import Examples, normalize_examples, synthesize_examples
from ._joint_graph import JointGraph, Tower, find_split
from ._keras_interface import DEFAULT_OUTPUT_NAME, GENERATED_INPUT_NAME_RE, check_tensor_name, describe_keras_model
from ._part import export_part
from ._parts import PartRef
from ._result import ExportResult, ProgressCallback, no_progress
from ._sources import ModelSource, load_model_source

__all__ = ["export_split"]

#: How a part is picked out: a layer on the tower (a nested model's name, the layer feeding the
#: concatenation, ...) or the tower's input names.
PartSelector = str | Sequence[str]


def _final_input_names(graph: JointGraph, renames: Mapping[str, str]) -> list[str]:
    unknown = sorted(set(renames) - set(graph.input_names))
    if unknown:
        raise InputNamingError(
            f"input_names renames {unknown}, but model '{graph.model.name}' has inputs {graph.input_names}"
        )
    names = [renames.get(name, name) for name in graph.input_names]
    generated = [old for old, new in zip(graph.input_names, names) if GENERATED_INPUT_NAME_RE.fullmatch(new)]
    if generated:
        example = ", ".join(f"{old!r}: 'NAME'" for old in generated)
        flags = " ".join(f"--input-name {old}=NAME" for old in generated)
        raise InputNamingError(
            f"model '{graph.model.name}' has inputs named {generated} by Keras, not by you; such names change with "
            "build order and would become the serving contract. Name each keras.Input when building the model "
            f"(keras.Input(shape, name=...)), or pass input_names={{{example}}} ({flags})"
        )
    for name in names:
        check_tensor_name(name, "input name")
    if len(set(names)) != len(names):
        raise InputNamingError(f"two inputs of model '{graph.model.name}' would both be named alike: {names}")
    return names


def _describe_towers(towers: Sequence[Tower], input_names: Sequence[str]) -> str:
    return "; ".join(
        f"tower {t.index}: inputs {[input_names[i] for i in t.inputs]}, layers {t.layers}" for t in towers
    )


def _tower_for(selector: PartSelector, towers: Sequence[Tower], input_names: Sequence[str]) -> Tower | None:
    wanted = [selector] if isinstance(selector, str) else list(selector)
    if isinstance(selector, str) and "," in selector:
        wanted = [name.strip() for name in selector.split(",")]
    for tower in towers:
        names = {input_names[i] for i in tower.inputs}
        if isinstance(selector, str) and (selector in tower.layers or selector == tower.nested_model):
            return tower
        if set(wanted) <= names and wanted:
            return tower
    return None


def _part_names(towers: Sequence[Tower], input_names: Sequence[str], parts: Mapping[str, PartSelector],
                composed: str) -> list[str]:
    chosen: dict[int, str] = {}
    for part_name, selector in parts.items():
        tower = _tower_for(selector, towers, input_names)
        if tower is None:
            raise SplitError(
                f"part {part_name!r}={selector!r} names no tower: give a layer on the tower or its input names "
                f"({_describe_towers(towers, input_names)})"
            )
        if tower.index in chosen:
            raise SplitError(f"parts {chosen[tower.index]!r} and {part_name!r} both name tower {tower.index}")
        chosen[tower.index] = part_name
    names = [
        chosen.get(t.index) or t.nested_model or "_".join(input_names[i] for i in t.inputs) for t in towers
    ]
    for part_name in names:
        check_name(part_name, "part name")
        if part_name == composed:
            raise SplitError(
                f"a part would be named {part_name!r} like the composed model, and both live under the same base; "
                f"name the part with parts={{'OTHER': ...}} (--part OTHER=...) or the composed model otherwise"
            )
    if len(set(names)) != len(names):
        raise SplitError(
            f"two towers would both be named alike ({names}); name them with parts={{NAME: LAYER_OR_INPUTS}} "
            f"(--part NAME=LAYER_OR_INPUTS): {_describe_towers(towers, input_names)}"
        )
    return names


def _tower_model(graph: JointGraph, tower: Tower, name: str) -> keras.Model:
    tensors = [graph.model.inputs[i] for i in tower.inputs]
    structure = graph.model.input
    if isinstance(structure, Mapping):
        inputs: Any = {graph.input_names[i]: t for i, t in zip(tower.inputs, tensors)}
    else:
        inputs = tensors[0] if len(tensors) == 1 else tensors
    return keras.Model(inputs, tower.output, name=name)


def _close(got: Any, want: Any, atol: float, rtol: float) -> bool:
    got_all, want_all = keras.tree.flatten(got), keras.tree.flatten(want)
    return len(got_all) == len(want_all) and all(
        np.allclose(np.asarray(g), np.asarray(w), atol=atol, rtol=rtol) for g, w in zip(got_all, want_all)
    )


def export_split(
    model: ModelSource,
    base: str | os.PathLike[str],
    name: str,
    *,
    parts: Mapping[str, PartSelector] | None = None,
    concatenation: str | None = None,
    input_names: Mapping[str, str] | None = None,
    examples: Examples | None = None,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    allow_contract_change: bool = False,
    on_step: ProgressCallback = no_progress,
) -> dict[str, ExportResult]:
    """Split a trained joint model at its concatenation; publish each tower as a part and the composed model.

    ``model`` (a functional Keras model, a ``.keras`` file or a ``module:function`` factory) must be
    ``head(concatenate([towers]))``: each tower computed from inputs of its own, the head reading only
    the concatenation. The concatenation is found (``concatenation`` names it when several could
    be meant); towers are named after the nested model they are, else after their inputs, unless
    ``parts`` maps a part name to a layer on the tower or to its input names. ``input_names``
    renames inputs Keras named (``{"input_layer": "features"}``). ``examples`` are keyed by the
    joint model's input names. Each part is published as its next version, then the composed model
    ``name`` from exactly those versions with the trained head; a model that does not separate is
    refused (:class:`SplitError`) before anything is published. Returns the results by model name,
    parts first.
    """
    check_name(name, "composed model name")
    on_step("load")
    joint, origin = load_model_source(model, what="joint model")
    graph = JointGraph.of(joint)
    node = find_split(graph, concatenation)
    towers = graph.towers_of(node)
    names = _final_input_names(graph, input_names or {})
    part_names = _part_names(towers, names, parts or {}, name)
    tower_models = [_tower_model(graph, tower, part) for tower, part in zip(towers, part_names)]
    head = keras.Model(node.output_tensors[0], joint.output, name=f"{name}_head")
    # describe_keras_model takes the names in the model's own input order (a dict's key order).
    own_order = list(joint.input) if isinstance(joint.input, Mapping) else graph.input_names
    joint_interface = describe_keras_model(joint, input_names=[names[graph.input_names.index(n)] for n in own_order])
    at_concatenation = keras.Model(joint.input, list(node.input_tensors))

    what = f"joint model '{joint.name}'"
    batches = (normalize_examples(examples, joint_interface.inputs, what) if examples is not None
               else [synthesize_examples(joint_interface.inputs)])

    def joint_run(batch: Mapping[str, Any]) -> tuple[Any, list[np.ndarray]]:
        args = joint_interface.to_model_args(batch)
        tensors = at_concatenation(args, training=False)
        return joint(args, training=False), [np.asarray(t) for t in tensors]

    for batch in batches:  # the split itself, in Keras, before anything is published
        whole, pieces = joint_run(batch)
        parts_out = [np.asarray(t(_tower_batch(graph, tower, names, batch), training=False))
                     for tower, t in zip(towers, tower_models)]
        if not _close(parts_out, pieces, atol, rtol) or not _close(
                head(np.concatenate(parts_out, axis=-1), training=False), whole, atol, rtol):
            raise SplitError(
                f"splitting {what} at '{node.operation.name}' does not reproduce it (towers then head differ from "
                "the joint model); does it hold state or randomness at inference? Nothing was published"
            )

    split_facts = {"source": origin, "concatenation": node.operation.name, "parts": part_names, "composed": name}
    results: dict[str, ExportResult] = {}
    for tower, part, tower_model in zip(towers, part_names, tower_models):
        results[part] = export_part(
            tower_model, base, part, input_names=[names[i] for i in tower.inputs],
            examples=[_tower_batch(graph, tower, names, b) for b in batches] if examples is not None else None,
            atol=atol, rtol=rtol, allow_contract_change=allow_contract_change,
            provenance={"split": {**split_facts, "tower": tower.index}}, on_step=on_step,
        )
    refs = [PartRef(part, results[part].version) for part in part_names]

    def joint_reference(composed_batch: dict[str, np.ndarray],
                        name_outputs: Callable[[Any], dict[str, Any]]) -> dict[str, np.ndarray]:
        batch = {names[i]: composed_batch[f"{part}{INPUT_SEPARATOR}{names[i]}"]
                 for tower, part in zip(towers, part_names) for i in tower.inputs}
        whole, pieces = joint_run(batch)
        expected = {k: np.asarray(v) for k, v in name_outputs(whole).items()}
        expected.update({f"{part}{INPUT_SEPARATOR}{DEFAULT_OUTPUT_NAME}": piece
                         for part, piece in zip(part_names, pieces)})
        return expected

    composed_examples = None
    if examples is not None:
        composed_examples = [{f"{part}{INPUT_SEPARATOR}{names[i]}": batch[names[i]]
                              for tower, part in zip(towers, part_names) for i in tower.inputs} for batch in batches]
    results[name] = assemble_composed(
        base, name, refs, head, parts_base=None, version=None, examples=composed_examples, atol=atol, rtol=rtol,
        allow_contract_change=allow_contract_change, provenance={"split": split_facts}, on_step=on_step,
        reference_override=joint_reference,
    )
    return results


def _tower_batch(graph: JointGraph, tower: Tower, names: Sequence[str], batch: Mapping[str, Any]) -> Any:
    """The tower model's arguments from a batch keyed by the joint model's input names."""
    if isinstance(graph.model.input, Mapping):
        return {graph.input_names[i]: batch[names[i]] for i in tower.inputs}
    values = [batch[names[i]] for i in tower.inputs]
    return values[0] if len(values) == 1 else values
