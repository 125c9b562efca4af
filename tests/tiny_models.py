"""Tiny seeded Keras models for the contract and head-reuse tests (fast to export on a busy machine)."""

import keras


def tiny_tower(inputs=3, width=2, seed=1, input_name="features", dtype="float32", name="tower"):
    """features (batch, inputs) -> embedding (batch, width); weights fixed by ``seed``."""
    features = keras.Input((inputs,), name=input_name, dtype=dtype)
    dense = keras.layers.Dense(width, kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
                               bias_initializer=keras.initializers.RandomUniform(-0.1, 0.1, seed=seed + 100))
    return keras.Model(features, dense(features), name=name)


def tiny_head(width, seed=9):
    """concatenated (batch, width) -> prediction (batch, 1)."""
    concatenated = keras.Input((width,), name="concatenated")
    dense = keras.layers.Dense(1, activation="sigmoid", kernel_initializer=keras.initializers.GlorotUniform(seed=seed))
    return keras.Model(concatenated, dense(concatenated), name="head")


def pooled_tower(steps, channels=3, seed=1):
    """features (batch, steps, channels) averaged over steps: ``steps`` may be None (any length)."""
    features = keras.Input((steps, channels), name="features")
    pooled = keras.layers.GlobalAveragePooling1D()(features)
    dense = keras.layers.Dense(2, kernel_initializer=keras.initializers.GlorotUniform(seed=seed))
    return keras.Model(features, dense(pooled), name="pooled")
