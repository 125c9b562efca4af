"""The demo's models by name, without Keras: what the CLI and the stack need to know of them."""

from __future__ import annotations

__all__ = ["COMPOSED_NAME", "DEMO_MODELS", "DEMO_MODEL_NAMES", "DEMO_TOWERS", "HEAD_FACTORY", "INPUT_NAME"]

#: Part name -> (input features, hidden layer widths, seed).
DEMO_TOWERS: dict[str, tuple[int, tuple[int, ...], int]] = {
    "tower_a": (10, (64, 32), 1),
    "tower_b": (10, (64, 32), 2),
    "tower_c": (5, (32,), 3),
}
COMPOSED_NAME = "composed"
INPUT_NAME = "features"
#: The head factory the composed model's lineage records (``module:function``).
HEAD_FACTORY = "tfsk.demo:build_head"
#: Every model :func:`tfsk.demo.export_demo` writes, in the order it writes them.
DEMO_MODEL_NAMES = (*DEMO_TOWERS, COMPOSED_NAME)
#: The same as a set: a declaration naming only these can be filled by the demo.
DEMO_MODELS = frozenset(DEMO_MODEL_NAMES)
