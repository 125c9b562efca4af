"""Turn what the user names (a model object, a ``.keras`` file, a ``module:function`` factory) into
a Keras model, and remember where it came from for the lineage manifest."""

from __future__ import annotations

import hashlib
import importlib
import os
from pathlib import Path
from typing import Any, TypeAlias

import keras

from ._errors import ModelSourceError

__all__ = ["ModelSource", "load_model_source", "sha256_of"]

ModelSource: TypeAlias = keras.Model | str | os.PathLike[str]
_KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _from_file(path: Path, what: str) -> tuple[keras.Model, dict[str, Any]]:
    if not path.is_file():
        raise ModelSourceError(f"{what}: no file at {path}")
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises many kinds here; all mean "not a usable model file"
        raise ModelSourceError(
            f"{what}: could not load {path} as a Keras model ({type(error).__name__}: {error}); "
            "save it with model.save('name.keras') from Keras 3, or name a module:function factory"
        ) from error
    return model, {"type": "keras_file", "path": str(path.resolve()), "sha256": sha256_of(path)}


def _from_factory(reference: str, what: str, args: tuple[Any, ...]) -> tuple[keras.Model, dict[str, Any]]:
    module_name, _, function_name = reference.partition(":")
    if not module_name or not function_name:
        raise ModelSourceError(f"{what}: {reference!r} is neither a .keras file nor a module:function factory")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ModelSourceError(
            f"{what}: cannot import module {module_name!r} of factory {reference!r} ({error}); "
            "is it installed or on PYTHONPATH?"
        ) from error
    factory = getattr(module, function_name, None)
    if not callable(factory):
        raise ModelSourceError(f"{what}: module {module_name!r} has no callable {function_name!r}")
    try:
        model = factory(*args)
    except Exception as error:
        raise ModelSourceError(f"{what}: factory {reference!r} failed: {type(error).__name__}: {error}") from error
    if not isinstance(model, keras.Model):
        raise ModelSourceError(
            f"{what}: factory {reference!r} returned {type(model).__name__}, expected a keras.Model"
        )
    return model, {"type": "factory", "factory": reference, "arguments": list(args)}


def load_model_source(
    source: ModelSource, *, what: str, factory_args: tuple[Any, ...] = ()
) -> tuple[keras.Model, dict[str, Any]]:
    """Return ``(model, origin)``; ``origin`` is a JSON-able description for lineage.

    ``factory_args`` are passed to a ``module:function`` factory (a head factory receives the
    concatenated width).
    """
    if isinstance(source, keras.Model):
        return source, {"type": "python", "class": type(source).__qualname__, "name": source.name}
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if text.endswith(_KERAS_SUFFIXES) or os.path.sep in text or Path(text).is_file():
            return _from_file(Path(text), what)
        return _from_factory(text, what, factory_args)
    raise ModelSourceError(
        f"{what}: expected a keras.Model, a .keras file or a 'module:function' factory, "
        f"got {type(source).__name__}"
    )
