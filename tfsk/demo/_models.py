"""The seed article's model, done for real: three towers concatenated into a head.

Two towers take 10 features (Dense 64 relu -> Dense 32 relu), a third takes 5 (Dense 32 relu);
the head (Dense 16 relu -> Dense 1 sigmoid) reads their 96 concatenated features. Weights come
from seeded initializers, so every run builds the same numbers.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import keras
import numpy as np

from tfsk.exporter import SEPARATOR, ExportResult, export_composed, export_part

from ._names import COMPOSED_NAME, DEMO_TOWERS, HEAD_FACTORY, INPUT_NAME

__all__ = ["build_head", "build_tower", "demo_examples", "export_demo"]


def _dense(units: int, activation: str, seed: int, name: str) -> keras.layers.Dense:
    return keras.layers.Dense(
        units,
        activation=activation,
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
        bias_initializer=keras.initializers.RandomUniform(-0.1, 0.1, seed=seed + 1000),
        name=name,
    )


def build_tower(name: str) -> keras.Model:
    """One of the demo towers, by name (``tower_a``, ``tower_b``, ``tower_c``)."""
    features, widths, seed = DEMO_TOWERS[name]
    inputs = keras.Input(shape=(features,), name=INPUT_NAME)
    x = inputs
    for index, units in enumerate(widths):
        x = _dense(units, "relu", seed * 10 + index, f"dense_{index}")(x)
    return keras.Model(inputs, x, name=name)


def build_head(width: int) -> keras.Model:
    """The demo head on ``width`` concatenated features (a factory: tfsk passes the width)."""
    inputs = keras.Input(shape=(width,), name="concatenated")
    x = _dense(16, "relu", 41, "dense_0")(inputs)
    outputs = _dense(1, "sigmoid", 42, "dense_1")(x)
    return keras.Model(inputs, outputs, name="head")


def demo_examples(batch: int = 8, seed: int = 7) -> dict[str, dict[str, np.ndarray]]:
    """Example inputs for every tower: part name -> {input name: array}."""
    rng = np.random.default_rng(seed)
    return {
        name: {INPUT_NAME: rng.standard_normal((batch, features)).astype("float32")}
        for name, (features, _, _) in DEMO_TOWERS.items()
    }


def export_demo(base: str | os.PathLike[str], on_step: Callable[[str], None] = lambda _: None
                ) -> dict[str, ExportResult]:
    """Export the next version of each tower, then the composed model built from those versions."""
    examples = demo_examples()
    results = {}
    for name in DEMO_TOWERS:
        results[name] = export_part(build_tower(name), base, name, examples=examples[name], on_step=on_step)
    composed_examples = {
        f"{name}{SEPARATOR}{key}": value for name, inputs in examples.items() for key, value in inputs.items()
    }
    results[COMPOSED_NAME] = export_composed(
        base,
        COMPOSED_NAME,
        [f"{name}@{results[name].version}" for name in DEMO_TOWERS],
        HEAD_FACTORY,
        examples=composed_examples,
        on_step=on_step,
    )
    return results
