"""Canaries the gate must catch, as ``.keras`` files of the demo's ``tower_a`` (no tests here).

The layers are registered with Keras when this module is imported, which the tests do before a
rollout exports them (the exporter loads the ``.keras`` file in the test's process). The
devserver only ever sees the exported SavedModels: plain TensorFlow ops.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfsk.demo import build_tower

#: The slow canary busy-waits this long in every call (tf.timestamp in a while loop: a graph op
#: that takes wall time whatever the CPU, unlike a loop of arithmetic).
SLOW_SECONDS = 0.2  # far past 1.5 x stable p99 + 10 ms, even when a loaded machine makes stable spike
#: The failing canary refuses a batch whose first feature exceeds this anywhere: the exporter's and the
#: consistency check's examples (seed 0) stay below (0.50 at most), the demo's warmup batch does not (0.76).
FAIL_ABOVE = 0.7


@keras.saving.register_keras_serializable(package="tfsk_gate_tests")
class BusyWait(keras.layers.Layer):
    """Identity that takes ``seconds`` of wall time."""

    def __init__(self, seconds: float, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self.seconds = seconds

    def call(self, x):  # type: ignore[no-untyped-def]
        start = tf.timestamp()
        (spins,) = tf.while_loop(lambda n: tf.timestamp() - start < self.seconds, lambda n: (n + 1.0,),
                                 (tf.constant(0.0, tf.float64),))
        return x + tf.cast(tf.minimum(spins, 0.0), x.dtype)  # the output depends on the loop: never pruned

    def get_config(self):  # type: ignore[no-untyped-def]
        return {**super().get_config(), "seconds": self.seconds}


@keras.saving.register_keras_serializable(package="tfsk_gate_tests")
class RefuseAbove(keras.layers.Layer):
    """Identity that fails the request (InvalidArgument) when the first feature exceeds ``limit``."""

    def __init__(self, limit: float, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self.limit = limit

    def call(self, x):  # type: ignore[no-untyped-def]
        check = tf.debugging.assert_less_equal(x[:, 0], tf.constant(self.limit, x.dtype),
                                               message="first feature out of range")
        with tf.control_dependencies([check]):
            return tf.identity(x)

    def get_config(self):  # type: ignore[no-untyped-def]
        return {**super().get_config(), "limit": self.limit}


def _with_layer_in_front(layer: keras.layers.Layer) -> keras.Model:
    """tower_a with its trained (seeded) weights, ``layer`` between its input and its first Dense."""
    tower = build_tower("tower_a")
    inputs = keras.Input(shape=(10,), name="features")  # the demo tower's input
    x = layer(inputs)
    for dense in tower.layers[1:]:
        x = dense(x)
    return keras.Model(inputs, x, name="tower_a")


def save(model: keras.Model, path: Path) -> Path:
    model.save(path)
    return path


def identical(folder: Path) -> Path:
    """A re-export of tower_a exactly as version 1 was (the demo seeds its weights)."""
    return save(build_tower("tower_a"), folder / "tower_a-identical.keras")


def perturbed(folder: Path, scale: float = 0.3) -> Path:
    """tower_a with noise on every weight: its output, and so the head's prediction, moves."""
    tower = build_tower("tower_a")
    rng = np.random.default_rng(5)
    tower.set_weights([w + rng.normal(0, scale, w.shape).astype(w.dtype) for w in tower.get_weights()])
    return save(tower, folder / "tower_a-perturbed.keras")


def slow(folder: Path) -> Path:
    return save(_with_layer_in_front(BusyWait(SLOW_SECONDS)), folder / "tower_a-slow.keras")


def failing(folder: Path) -> Path:
    return save(_with_layer_in_front(RefuseAbove(FAIL_ABOVE)), folder / "tower_a-failing.keras")
