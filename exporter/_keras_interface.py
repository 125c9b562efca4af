"""What a Keras model's serving signature looks like: named inputs in, named outputs out.

Names come from the model (``Input`` names, dict keys, output layer names) or from the user;
positional names such as ``args_0`` / ``output_0`` are never produced.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from ._errors import InputNamingError
from ._specs import Shape, TensorSpecInfo

__all__ = [
    "DEFAULT_OUTPUT_NAME",
    "GENERATED_INPUT_NAME_RE",
    "KerasInterface",
    "check_tensor_name",
    "describe_keras_model",
]

#: Output name of a single-output part when none is given.
DEFAULT_OUTPUT_NAME = "embedding"
# A signature key becomes part of a placeholder op name: TF's op-name rule, without '/' (scopes).
_TENSOR_NAME_RE = re.compile(r"[A-Za-z0-9.][A-Za-z0-9_.\-]*")

InputSpecs = Mapping[str, tuple[Sequence[int | None], str]]
#: Names Keras makes up for an unnamed ``keras.Input``: Keras 3 calls the symbolic tensor
#: ``keras_tensor[_N]`` and, once saved and reloaded, ``input_layer[_N]`` (after its InputLayer);
#: Keras 2 / tf.keras files carry ``input_N``. Such a name changes with the order models are built
#: in, so it is no contract to publish.
GENERATED_INPUT_NAME_RE = re.compile(r"(?:keras_tensor|input_layer)(?:_\d+)?|input_\d+")


def check_tensor_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not _TENSOR_NAME_RE.fullmatch(name):
        raise InputNamingError(
            f"{what} {name!r} cannot be a signature name: use letters, digits, '_', '.' and '-', "
            "starting with a letter, digit or '.'"
        )
    return name


def _check_unique(names: Sequence[str], what: str) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise InputNamingError(f"two {what}s are named {name!r}; give distinct names")
        seen.add(name)


def _batch_shape(shape: Sequence[int | None]) -> Shape:
    dims = tuple(None if d is None else int(d) for d in shape)
    if not dims:
        raise InputNamingError("a scalar input has no batch dimension; TF Serving batches along the first axis")
    return (None, *dims[1:])


@dataclass
class KerasInterface:
    """A Keras model seen through its serving signature."""

    model: keras.Model
    inputs: dict[str, TensorSpecInfo]
    to_model_args: Callable[[Mapping[str, Any]], Any]
    output_names: Sequence[str] | None  # given or derived; None: decided from the call's result
    expected_outputs: dict[str, TensorSpecInfo] | None  # None when the model has no symbolic outputs
    default_output_name: str

    def tensor_specs(self, prefix: str = "") -> dict[str, tf.TensorSpec]:
        return {
            prefix + name: tf.TensorSpec(spec.shape, tf.as_dtype(spec.dtype), name=prefix + name)
            for name, spec in self.inputs.items()
        }

    def name_outputs(self, result: Any) -> dict[str, Any]:
        """The model's result as a dict of named outputs."""
        if isinstance(result, Mapping):
            if self.output_names is not None and list(self.output_names) != list(result):
                raise InputNamingError(
                    f"the model returns a dict with keys {sorted(result)}; output names come from "
                    "those keys and cannot be renamed"
                )
            named = dict(result)
        elif isinstance(result, (list, tuple)):
            if self.output_names is None or len(self.output_names) != len(result):
                raise InputNamingError(
                    f"the model returns {len(result)} unnamed outputs; pass output_names with "
                    f"{len(result)} names (or return a dict from the model)"
                )
            named = dict(zip(self.output_names, result))
        else:
            names = self.output_names or [self.default_output_name]
            if len(names) != 1:
                raise InputNamingError(f"the model returns one output but {len(names)} output names were given")
            named = {names[0]: result}
        for name in named:
            check_tensor_name(name, "output name")
        return named

    def __call__(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        return self.name_outputs(self.model(self.to_model_args(inputs), training=False))


def _from_input_specs(model: keras.Model, input_specs: InputSpecs) -> tuple[dict[str, TensorSpecInfo], Callable]:
    inputs = {}
    for name, (shape, dtype) in input_specs.items():
        check_tensor_name(name, "input name")
        inputs[name] = TensorSpecInfo(str(np.dtype(dtype)) if dtype != "string" else "string", _batch_shape(shape))
    names = list(inputs)
    if len(names) == 1:
        return inputs, lambda given: given[names[0]]
    return inputs, lambda given: {name: given[name] for name in names}


def _generated(names: Sequence[str]) -> list[str]:
    return [name for name in names if GENERATED_INPUT_NAME_RE.fullmatch(name)]


_HOW_TO_NAME = (
    "such names change with build order (input_layer, input_layer_1, ...) and would become the serving "
    "contract. Pass input_names=[...] (--input-name NAME on the command line), or "
)


def _refuse_generated(names: Sequence[str], model: keras.Model) -> None:
    generated = _generated(names)
    if generated:
        raise InputNamingError(
            f"model '{model.name}' has inputs named {generated} by Keras, not by you; " + _HOW_TO_NAME
            + "name each input when building the model, e.g. keras.Input(shape=(10,), name=\"features\")"
        )


@dataclass
class _OwnInputs:
    """A model's symbolic inputs and the names it gives them itself."""

    structure: Any  # the model's input structure: a dict, a list or a single tensor
    tensors: list[Any]
    names: list[str]
    refuse_generated: Callable[[], None]  # raises if ``names`` are Keras's, saying where they came from


def _sequential_origin(layers: Sequence[Any]) -> str:
    """Where a Sequential's Keras-named InputLayer came from, in the user's terms."""
    first = layers[1] if len(layers) > 1 else None
    if first is not None and getattr(first, "_input_shape_arg", None) is not None:  # Keras keeps the argument it built from
        return f"from input_shape= on its first layer '{first.name}'"
    if isinstance(first, keras.Model):
        return f"added in front of the nested model '{first.name}'"
    # A reloaded .keras file no longer says which of these it was.
    return "from input_shape=, model.build(), a first call or an unnamed keras.Input"


def _sequential_inputs(model: keras.Sequential) -> _OwnInputs:
    # A Sequential keeps its inputs on an inner functional model: ``model.input`` raises even when
    # ``model.inputs`` is set, so it cannot go through the functional path below.
    layers = list(getattr(model, "_layers", []))  # ``Sequential.layers`` hides the InputLayer; this keeps it
    try:
        tensors = list(model.inputs)
    except (AttributeError, ValueError):
        if all(isinstance(layer, keras.layers.InputLayer) for layer in layers):
            raise InputNamingError(
                f"Sequential '{model.name}' has no layers{' after its keras.Input' if layers else ''}, so Keras "
                "never built it; add the model's layers (model.add(...)) before exporting it"
            ) from None
        raise InputNamingError(
            f"Sequential '{model.name}' has no input shape yet: it does not start with keras.Input, its first "
            "layer has no input_shape=, and it was never built; start it with keras.Input(shape, name=\"features\"), "
            "or pass input_specs, e.g. {'features': ((None, 10), 'float32')}"
        ) from None
    # The InputLayer's name (not the symbolic tensor's ``keras_tensor_N``) is what a
    # keras.Input(name=...) set and what a .keras file keeps.
    first = layers[0] if layers and isinstance(layers[0], keras.layers.InputLayer) else None
    names = [first.name if first is not None else tensors[0].name]
    nested = layers[1] if len(layers) > 1 else None
    if _generated(names) and isinstance(nested, keras.Model):
        # Sequential([inner_model, ...]) puts a Keras-named InputLayer in front of the inner model;
        # the inner model's own Input name is the one the user chose.
        try:
            inner = [t.name for t in nested.inputs]
        except (AttributeError, ValueError):
            inner = []
        if len(inner) == 1 and not _generated(inner):
            names = inner

    def refuse() -> None:
        if _generated(names):
            raise InputNamingError(
                f"Sequential '{model.name}' has an input Keras named '{names[0]}' "
                f"({_sequential_origin(layers)}); " + _HOW_TO_NAME
                + "start it with keras.Input(shape, name=\"features\")"
            )

    return _OwnInputs(tensors[0], tensors, names, refuse)


def _own_inputs(model: keras.Model) -> _OwnInputs:
    if isinstance(model, keras.Sequential):
        return _sequential_inputs(model)
    try:
        structure = model.input
        tensors = list(model.inputs)
    except (AttributeError, ValueError):
        # Functional models always have symbolic inputs: only a subclassed one gets here.
        raise InputNamingError(
            f"cannot name the inputs of subclassed model {type(model).__name__} '{model.name}': its inputs "
            "are whatever call() takes, so Keras has no names for them; pass input_specs, e.g. "
            "{'features': ((None, 10), 'float32')}, or build it as a functional model with keras.Input(name=...)"
        ) from None
    if isinstance(structure, Mapping):
        names = list(structure)
        return _OwnInputs(structure, [structure[key] for key in names], names, lambda: None)  # keys are the user's
    names = [t.name for t in tensors]
    return _OwnInputs(structure, tensors, names, lambda: _refuse_generated(names, model))


def _from_symbolic_inputs(
    model: keras.Model, input_names: Sequence[str] | None, refuse_generated: bool
) -> tuple[dict[str, TensorSpecInfo], Callable]:
    own = _own_inputs(model)
    if input_names is not None:
        if len(input_names) != len(own.names):
            raise InputNamingError(
                f"{len(input_names)} input names were given for a model with {len(own.names)} inputs {own.names}"
            )
        names = list(input_names)
    else:
        names = own.names
        if refuse_generated:
            own.refuse_generated()
    for name in names:
        check_tensor_name(name, "input name")
    _check_unique(names, "input")
    inputs = {
        name: TensorSpecInfo(str(tensor.dtype), _batch_shape(tensor.shape)) for name, tensor in zip(names, own.tensors)
    }
    if isinstance(own.structure, Mapping):
        return inputs, lambda given: {key: given[name] for key, name in zip(own.names, names)}
    if len(names) == 1:
        return inputs, lambda given: given[names[0]]
    return inputs, lambda given: [given[name] for name in names]


def _symbolic_outputs(model: keras.Model) -> Any:
    """The model's output structure, or None when it has none (subclassed, or an unbuilt Sequential)."""
    try:
        if isinstance(model, keras.Sequential):  # ``model.output`` raises on a Sequential; ``outputs`` works
            outputs = list(model.outputs)
            return outputs[0] if len(outputs) == 1 else outputs
        return model.output
    except (AttributeError, ValueError):
        return None


def describe_keras_model(
    model: keras.Model,
    *,
    input_names: Sequence[str] | None = None,
    input_specs: InputSpecs | None = None,
    output_names: Sequence[str] | None = None,
    default_output_name: str = DEFAULT_OUTPUT_NAME,
    refuse_generated_names: bool = False,
) -> KerasInterface:
    """Work out the named signature of ``model``; raise :class:`InputNamingError` if it cannot be named.

    With ``refuse_generated_names``, input names Keras made up (:data:`GENERATED_INPUT_NAME_RE`)
    are refused unless ``input_names`` replaces them.
    """
    if input_specs is not None:
        inputs, to_args = _from_input_specs(model, input_specs)
    else:
        inputs, to_args = _from_symbolic_inputs(model, input_names, refuse_generated_names)
    if output_names is not None:
        output_names = [check_tensor_name(n, "output name") for n in output_names]
        _check_unique(output_names, "output")
    interface = KerasInterface(model, inputs, to_args, output_names, None, default_output_name)
    symbolic = _symbolic_outputs(model)
    if symbolic is None:
        return interface  # outputs are checked against the eager result instead
    if isinstance(symbolic, (list, tuple)) and output_names is None:
        layer_names = list(getattr(model, "output_names", []) or [])
        if len(layer_names) == len(symbolic) and len(set(layer_names)) == len(layer_names):
            interface.output_names = layer_names
    named = interface.name_outputs(symbolic)
    interface.expected_outputs = {
        name: TensorSpecInfo(str(t.dtype), _batch_shape(t.shape)) for name, t in named.items()
    }
    return interface
