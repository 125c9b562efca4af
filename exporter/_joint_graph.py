"""Where a jointly trained Keras model splits into towers and a head: the graph analysis.

A model trained as one piece (the seed article's way) is ``head(concatenate([tower_1, ...]))``,
with the towers' layers either inlined in the joint graph or nested as models. This module finds
the concatenation that joins the towers and checks that the model really separates there:

- every input of the concatenation (a tower's output) depends on a set of model inputs of its
  own, disjoint from the other towers' sets, and together they use every model input;
- everything after the concatenation (the head) reads nothing but the concatenation's output:
  no model input and no tower tensor reaches it another way;
- every model output comes after the concatenation;
- each tower's output is ``(batch, features)``, as the composed model concatenates them.

It reads the functional graph Keras keeps (``_nodes_by_depth``, ``_keras_history``), which is
Keras 3's own record of how the model was called; it builds nothing and changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras

from ._errors import SplitError

__all__ = ["JointGraph", "Tower", "find_split"]

_SHAPE_ONLY = ("Reshape", "Flatten")  # between a nested tower model and the concatenation


@dataclass
class Tower:
    """One input of the concatenation: a tower's output and the model inputs it is computed from."""

    index: int
    output: Any  # the KerasTensor fed to the concatenation
    inputs: list[int]  # positions in the joint model's inputs
    layers: list[str]  # names of the operations between those inputs and the output
    nested_model: str | None  # the nested model the tower is, if it is one (through Reshape/Flatten)


@dataclass
class JointGraph:
    """The joint model's functional graph, with which model inputs each tensor depends on."""

    model: keras.Model
    input_names: list[str]  # the model's input names (dict keys, else Input names), in model.inputs order
    _ancestors: dict[int, frozenset[int]] = field(default_factory=dict)
    _nodes: list[Any] = field(default_factory=list)  # nodes from the inputs to the outputs

    @classmethod
    def of(cls, model: keras.Model) -> JointGraph:
        nodes_by_depth = getattr(model, "_nodes_by_depth", None)
        if nodes_by_depth is None or not getattr(model, "inputs", None):
            raise SplitError(
                f"model '{model.name}' is a {type(model).__name__} without a functional graph; a joint model "
                "to split must be built with the functional API (keras.Model(inputs, outputs)) so its "
                "concatenation can be found. Export its towers with export_part and assemble them with "
                "export_composed instead"
            )
        structure = model.input
        if isinstance(structure, Mapping):
            key_of = {id(tensor): key for key, tensor in structure.items()}
            names = [key_of[id(tensor)] for tensor in model.inputs]
        else:  # the InputLayer's name: what model.summary() shows and a .keras file keeps
            names = [tensor._keras_history.operation.name for tensor in model.inputs]
        graph = cls(model, names)
        position = {id(tensor): i for i, tensor in enumerate(model.inputs)}
        for depth in sorted(nodes_by_depth, reverse=True):  # the deepest nodes are nearest the inputs
            for node in nodes_by_depth[depth]:
                graph._nodes.append(node)
                for tensor in node.output_tensors:
                    if id(tensor) in position:
                        graph._ancestors[id(tensor)] = frozenset({position[id(tensor)]})
                    else:
                        graph._ancestors[id(tensor)] = frozenset().union(
                            *(graph.ancestors(t) for t in node.input_tensors)
                        )
        return graph

    def ancestors(self, tensor: Any) -> frozenset[int]:
        """The positions of the model inputs ``tensor`` is computed from."""
        return self._ancestors.get(id(tensor), frozenset())

    def describe_inputs(self, positions: Sequence[int] | frozenset[int]) -> str:
        return ", ".join(repr(self.input_names[i]) for i in sorted(positions))

    def concatenations(self) -> list[Any]:
        """The nodes that concatenate (a ``Concatenate`` layer or ``keras.ops.concatenate``)."""
        return [node for node in self._nodes if type(node.operation).__name__ == "Concatenate"]

    def _downstream(self, start: Any) -> set[int]:
        """Ids of every tensor computed from ``start``'s outputs (``start``'s included)."""
        reached = {id(t) for t in start.output_tensors}
        for node in self._nodes:
            if node is not start and any(id(t) in reached for t in node.input_tensors):
                reached.update(id(t) for t in node.output_tensors)
        return reached

    def _operations_between(self, output: Any) -> list[str]:
        """Names of the operations on the way from the model's inputs to ``output``."""
        names: list[str] = []
        seen: set[int] = set()
        stack = [output]
        while stack:
            tensor = stack.pop()
            if id(tensor) in seen:
                continue
            seen.add(id(tensor))
            history = tensor._keras_history
            operation = history.operation
            if type(operation).__name__ == "InputLayer":
                continue
            names.append(operation.name)
            stack.extend(operation._inbound_nodes[history.node_index].input_tensors)
        return list(reversed(names))

    def _nested_model(self, tensor: Any) -> str | None:
        """The nested model that produced ``tensor``, looking back through Reshape/Flatten."""
        while True:
            history = tensor._keras_history
            operation = history.operation
            if isinstance(operation, keras.Model):
                return operation.name
            inputs = operation._inbound_nodes[history.node_index].input_tensors
            if type(operation).__name__ not in _SHAPE_ONLY or len(inputs) != 1:
                return None
            tensor = inputs[0]

    def why_not_split_at(self, node: Any) -> str | None:
        """Why the model does not separate at this concatenation, or None if it does."""
        name = node.operation.name
        towers = node.input_tensors
        if len(towers) < 2:
            return f"concatenation '{name}' joins {len(towers)} tensor; towers need at least two"
        for i, tensor in enumerate(towers):
            shape = tuple(tensor.shape)
            if len(shape) != 2 or shape[1] is None:
                return (f"input {i} of concatenation '{name}' has shape {shape}; each tower must give "
                        "(batch, features): put a Flatten or Reshape before the concatenation")
        axis = getattr(node.operation, "axis", -1)
        if axis not in (-1, 1):
            return f"concatenation '{name}' joins along axis {axis}, not the features (axis -1)"
        owner: dict[int, int] = {}
        for i, tensor in enumerate(towers):
            positions = self.ancestors(tensor)
            if not positions:
                return f"input {i} of concatenation '{name}' is computed from no model input"
            for position in positions:
                if position in owner:
                    return (f"model input {self.input_names[position]!r} feeds both tower {owner[position]} and "
                            f"tower {i} of concatenation '{name}', so the towers cannot be separated; give each "
                            "tower its own input (or split at a concatenation whose towers share no input)")
                owner[position] = i
        unused = sorted(set(range(len(self.input_names))) - set(owner))
        if unused:
            return (f"model input(s) {self.describe_inputs(unused)} feed no tower of concatenation '{name}' (they "
                    "reach the head another way, or nothing); every input must belong to one tower")
        downstream = self._downstream(node)
        for output in self.model.outputs:
            if id(output) not in downstream:
                return (f"model output '{output._keras_history.operation.name}' does not come after "
                        f"concatenation '{name}', so it is not part of one head")
        for other in self._nodes:
            if other is node or not any(id(t) in downstream for t in other.input_tensors):
                continue
            for tensor in other.input_tensors:
                if id(tensor) not in downstream and self.ancestors(tensor):
                    return (f"layer '{other.operation.name}' after concatenation '{name}' also reads a tensor "
                            f"computed from model input(s) {self.describe_inputs(self.ancestors(tensor))} "
                            "without going through the concatenation (a skip connection), so the head cannot be "
                            "separated from the towers")
        return None

    def towers_of(self, node: Any) -> list[Tower]:
        return [
            Tower(i, tensor, sorted(self.ancestors(tensor)),
                  self._operations_between(tensor), self._nested_model(tensor))
            for i, tensor in enumerate(node.input_tensors)
        ]

    def joins_separate_inputs(self, node: Any) -> bool:
        """A candidate: two or more inputs, each from model inputs of its own."""
        sets = [self.ancestors(t) for t in node.input_tensors]
        return len(sets) >= 2 and all(sets) and sum(map(len, sets)) == len(frozenset().union(*sets))


def find_split(graph: JointGraph, concatenation: str | None = None) -> Any:
    """The concatenation node to split at, or :class:`SplitError` saying why there is none."""
    model = graph.model.name
    nodes = graph.concatenations()
    if not nodes:
        raise SplitError(
            f"model '{model}' has no concatenation (no Concatenate layer or keras.ops.concatenate), so there "
            "are no towers to split off; build it as head(concatenate([tower outputs])), or export it whole "
            "with export_part"
        )
    names = [node.operation.name for node in nodes]
    if concatenation is not None:
        if concatenation not in names:
            raise SplitError(f"model '{model}' has no concatenation named {concatenation!r}; its concatenations: {names}")
        node = nodes[names.index(concatenation)]
        reason = graph.why_not_split_at(node)
        if reason:
            raise SplitError(f"cannot split model '{model}': {reason}")
        return node
    verdicts = [(node, graph.why_not_split_at(node)) for node in nodes]
    fitting = [node for node, reason in verdicts if reason is None]
    if len(fitting) == 1:
        return fitting[0]
    candidates = [node for node in nodes if graph.joins_separate_inputs(node)]
    if len(fitting) > 1 or len(candidates) > 1:
        listed = "; ".join(
            f"'{node.operation.name}' (joins "
            + " | ".join(graph.describe_inputs(graph.ancestors(t)) for t in node.input_tensors)
            + (f": {reason}" if reason else "")
            + ")"
            for node, reason in verdicts if node in fitting or node in candidates
        )
        raise SplitError(
            f"model '{model}' has several concatenations that join separate towers: {listed}. Pick the one to "
            "split at with concatenation='NAME' (tfsk export split --concat NAME)"
        )
    if len(verdicts) == 1:
        raise SplitError(f"cannot split model '{model}': {verdicts[0][1]}")
    reasons = "; ".join(f"at '{node.operation.name}': {reason}" for node, reason in verdicts)
    raise SplitError(f"cannot split model '{model}' at any of its concatenations: {reasons}")
