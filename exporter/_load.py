"""A served composed version back in Keras: its parts as named, trainable sub-models, then its head.

``load_composed("models", "ranker@stable", config="tfsk.toml")`` reads the composed version's
lineage (which part versions, the concatenation layout, the head), loads each part version's
``tfsk_part.keras`` and the version's ``tfsk_head.keras`` (checksums checked against the
lineages), and wires them the way the served graph does: the model takes the composed signature's
inputs (``<part>__<input>``) and returns the head's outputs (``prediction``), so the dict sent to
the server goes to ``model(x)`` and the answers agree. ``model.get_layer("tower_a")`` takes the
part's own signature inputs, so once retrained, ``.save("tower_a.keras")`` feeds
``tfsk rollout start tower_a --from tower_a.keras`` with the part's contract unchanged.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import keras

from tfsk import serving_config
from tfsk._base.naming import HEAD_OUTPUT_NAME, composed_key

from ._contract import LayoutEntry, layout_of_lineage
from ._errors import ExportError, HeadReuseError, InputNamingError, KerasModelNotStoredError, LoadComposedError
from ._head import HeadRef
from ._keras_file import interface_of_stored, load_keras_file
from ._keras_interface import DEFAULT_OUTPUT_NAME, KerasInterface, describe_keras_model
from ._lineage import read_lineage
from ._parts import LATEST, resolve_version
from ._specs import TensorSpecInfo

__all__ = ["HEAD_LAYER", "load_composed"]

#: The head's sub-model in the loaded model (``model.get_layer("head")``), unless a part is so named.
HEAD_LAYER = "head"
_REEXPORT = "re-export it with 'tfsk export part', then 'tfsk export composed' from it"


@dataclass
class _Part:
    name: str
    version: int
    model: keras.Model  # named after the part, taking and returning the part's signature names
    interface: KerasInterface


def _labels(ref: str, config: str | os.PathLike[str] | None) -> dict[str, int] | None:
    name, _, suffix = ref.partition("@")
    if config is None or suffix == LATEST or suffix.isdigit():
        return None
    try:
        return serving_config.read_labels(config, name)
    except serving_config.ConfigError as error:
        raise LoadComposedError(f"cannot read the labels of '{name}' from {os.fspath(config)}: {error}") from None


def _input(name: str, spec: TensorSpecInfo, where: str) -> Any:
    if spec.shape is None:
        raise LoadComposedError(f"{where}: input '{name}' has unknown rank; a keras.Input needs a shape")
    return keras.Input(shape=spec.shape[1:], dtype=spec.dtype, name=name)


def _plain_interface(model: keras.Model) -> KerasInterface | None:
    """The signature ``export_part(model)`` would give with no names passed (None: it would refuse)."""
    try:
        return describe_keras_model(model, refuse_generated_names=True)
    except InputNamingError:
        return None


def _as_named(model: keras.Model, name: str, stored: KerasInterface, output_names: list[str],
              where: str) -> tuple[keras.Model, KerasInterface]:
    """``model`` as a sub-model called ``name`` whose own inputs and outputs carry the signature's names.

    Re-exporting that sub-model as it is (``tfsk rollout start --from``) must give the served
    contract; when the model itself would (its name, Input names and outputs already match), it is
    used as it is, else it is wrapped in a functional model that renames.
    """
    plain = _plain_interface(model)
    if (model.name == name and plain is not None and list(plain.inputs) == list(stored.inputs)
            and plain.expected_outputs is not None and list(plain.expected_outputs) == output_names):
        return model, plain
    inputs = {key: _input(key, spec, where) for key, spec in stored.inputs.items()}
    named = stored.name_outputs(model(stored.to_model_args(inputs)))
    single = list(named) == [DEFAULT_OUTPUT_NAME]  # else a dict: its keys are the output names
    wrapper = keras.Model(next(iter(inputs.values())) if len(inputs) == 1 else inputs,
                          named[DEFAULT_OUTPUT_NAME] if single else named, name=name)
    return wrapper, describe_keras_model(wrapper)


def _part_dir(name: str, version: int, recorded: dict[str, Any], base: Path, parts_base: Path | None,
              where: str) -> Path:
    places = [parts_base / name / str(version)] if parts_base is not None else [base / name / str(version)]
    if parts_base is None and recorded.get("path"):
        places.append(Path(recorded["path"]))  # where it was at export, maybe moved since
    for place in places:
        if place.is_dir():
            return place
    raise LoadComposedError(
        f"{where} was built from {name}@{version}, but that part version is gone (looked in "
        f"{', '.join(map(str, places))}; pruned?). The composed version still serves, but Keras needs the part's "
        f"own model: pass parts_base= where the part versions live, or {_REEXPORT}"
    )


def _load_part(name: str, version: int, folder: Path, recorded: dict[str, Any], where: str) -> _Part:
    ref = f"{name}@{version}"
    lineage = read_lineage(folder) or {}
    facts = lineage.get("keras_file")
    if not facts:
        raise KerasModelNotStoredError(
            f"{ref} (used by {where}) was exported before tfsk kept part Keras models (its lineage in {folder} has "
            f"no keras_file); {_REEXPORT}"
        )
    if not facts.get("file"):
        raise KerasModelNotStoredError(
            f"{ref} (used by {where}) keeps no Keras model: {facts.get('not_stored') or 'Keras could not save it'}. "
            f"Make the model saveable (e.g. get_config on custom layers), then {_REEXPORT}"
        )
    wanted = recorded.get("keras_sha256")
    if wanted and facts.get("sha256") != wanted:
        raise KerasModelNotStoredError(
            f"{ref} in {folder} is not the part version {where} was built from (its Keras model's checksum differs "
            "from the one the composed lineage records); pass parts_base= where the right part versions live"
        )
    model, _ = load_keras_file(folder, facts, where=ref, what="its Keras model", error=KerasModelNotStoredError,
                               remedy=_REEXPORT)
    stored = interface_of_stored(model, facts)
    named, interface = _as_named(model, name, stored, list(facts["output_names"]), ref)
    return _Part(name, version, named, interface)


def _check_layout(parts: dict[str, _Part], entries: list[LayoutEntry], where: str) -> None:
    for part_name, output, width in entries:
        part = parts.get(part_name)
        spec = (part.interface.expected_outputs or {}).get(output) if part else None
        shape = spec.shape if spec is not None else None
        if shape is None or any(d is None for d in shape[1:]):
            raise LoadComposedError(f"{where}: the head reads {part_name}.{output} ({width} features), but the "
                                    f"part's Keras model returns {spec.describe() if spec else 'no such output'}")
        got = math.prod(cast("tuple[int, ...]", shape[1:])) if len(shape) > 1 else 1  # no None: checked above
        if got != width:
            raise LoadComposedError(f"{where}: the head reads {width} features from {part_name}.{output}, but the "
                                    f"part's Keras model returns {spec.describe()} ({got} features)")  # type: ignore[union-attr]


def load_composed(
    base: str | os.PathLike[str],
    ref: str | HeadRef,
    *,
    config: str | os.PathLike[str] | None = None,
    parts_base: str | os.PathLike[str] | None = None,
) -> keras.Model:
    """The composed version ``ref`` under ``base`` as a trainable Keras model that computes what it serves.

    ``ref`` is ``NAME@VERSION``, ``NAME@latest`` or ``NAME@LABEL``, a label read from ``config``
    (a models.config or a tfsk.toml). Part versions are looked for under ``parts_base`` (default:
    ``base``, then where the lineage says they were). The model takes ``<part>__<input>`` inputs
    and returns the head's outputs by their served names (``{"prediction": ...}``); each part is a
    sub-model named after it (``model.get_layer("tower_a")``) taking the part's own input names,
    the head is the sub-model :data:`HEAD_LAYER`. Everything is trainable.

    Raises :class:`LoadComposedError` (no lineage, not composed, a part version gone) or
    :class:`KerasModelNotStoredError` (a part or head without its ``.keras`` file: exported by an
    older tfsk, not saveable, or changed since).
    """
    if isinstance(ref, HeadRef):
        head_ref = ref
    else:
        try:
            head_ref = HeadRef.parse(ref, _labels(ref, config), what="composed reference",
                                     give_config="pass config='models.config' (or tfsk.toml)")
        except HeadReuseError as error:  # same words, the loader's error class
            raise LoadComposedError(str(error)) from None
    base = Path(base)
    found = resolve_version(base, head_ref.model, head_ref.version, what="composed model",
                            hint="'tfsk export composed'")
    where = f"{head_ref.model}@{found.version}"
    lineage = read_lineage(found.path)
    if lineage is None:
        raise LoadComposedError(f"{where} at {found.path} has no tfsk lineage; only versions made by "
                                "'tfsk export composed' can be loaded back into Keras")
    entries = layout_of_lineage(lineage)
    if lineage.get("kind") != "composed" or entries is None or not lineage.get("parts"):
        raise LoadComposedError(f"{where} is a {lineage.get('kind')} version, not a composed one; load a composed "
                                "model, or a part's assets.extra/tfsk_part.keras with keras.models.load_model")
    head_facts = lineage.get("head") or {}
    if not head_facts.get("file"):
        raise KerasModelNotStoredError(
            f"{where} stores no head ({head_facts.get('not_stored') or 'exported before tfsk stored heads'}); "
            "export a composed version with a head Keras can save, then load that one")

    parts_folder = Path(parts_base) if parts_base is not None else None
    parts: dict[str, _Part] = {}
    for recorded in lineage["parts"]:
        name, version = str(recorded["name"]), int(recorded["version"])
        folder = _part_dir(name, version, recorded, base, parts_folder, where)
        parts[name] = _load_part(name, version, folder, recorded, where)
    _check_layout(parts, entries, where)

    head, _ = load_keras_file(found.path, head_facts, where=where, what="its head", error=KerasModelNotStoredError,
                              remedy="export the composed version again ('tfsk export composed')")
    head_layer = HEAD_LAYER if HEAD_LAYER not in parts else f"{head_ref.model}_{HEAD_LAYER}"
    head_interface = describe_keras_model(head, default_output_name=HEAD_OUTPUT_NAME)
    if head.name != head_layer:
        outputs = head_interface.expected_outputs or {}
        head, head_interface = _as_named(head, head_layer, head_interface, list(outputs), where)
    if len(head_interface.inputs) != 1:
        raise LoadComposedError(f"{where}: its head takes {sorted(head_interface.inputs)}, not one concatenation")
    head_input, head_spec = next(iter(head_interface.inputs.items()))

    # The served graph, step by step (exporter/_composed.py _Composition.__call__), in Keras.
    inputs = {composed_key(p.name, key): _input(composed_key(p.name, key), spec, where)
              for p in parts.values() for key, spec in p.interface.inputs.items()}
    results = {p.name: p.interface.name_outputs(p.model(p.interface.to_model_args(
        {key: inputs[composed_key(p.name, key)] for key in p.interface.inputs}))) for p in parts.values()}
    features = []
    for part_name, output, width in entries:
        feature = keras.ops.reshape(results[part_name][output], (-1, width))
        if feature.dtype != head_spec.dtype:
            feature = keras.ops.cast(feature, head_spec.dtype)
        features.append(feature)
    concatenated = keras.layers.Concatenate(axis=-1, name="concatenation")(features) if len(features) > 1 \
        else features[0]
    outputs = head_interface.name_outputs(head(head_interface.to_model_args({head_input: concatenated})))
    try:
        return keras.Model(inputs, outputs, name=head_ref.model)
    except (ValueError, TypeError) as error:
        raise ExportError(f"{where}: cannot assemble its parts and head in Keras: {error}") from error
