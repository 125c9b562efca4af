"""Helpers the tests share: running SavedModels through both loaders, and the CLI as a process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def run_like_tf_serving(version_dir: Path, signature: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run a signature the way TF Serving does: v1 loader, session, SignatureDef tensor names."""
    import tensorflow as tf

    with tf.compat.v1.Session(graph=tf.Graph()) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(version_dir))
        signature_def = meta_graph.signature_def[signature]
        return session.run(
            {k: v.name for k, v in signature_def.outputs.items()},
            {signature_def.inputs[k].name: v for k, v in inputs.items()},
        )


def run_with_tf2_loader(version_dir: Path, signature: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run a signature through ``tf.saved_model.load`` (the TF2 path)."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(version_dir))
    return {k: v.numpy() for k, v in loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()}).items()}


def tfsk(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None,
         preexec_fn=None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the ``tfsk`` command in a fresh interpreter, as a user would."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "tfsk", *args], capture_output=True, text=True, cwd=cwd or REPO,
        env=full_env, timeout=timeout, preexec_fn=preexec_fn,
    )


def python(code: str, *args: str, env: Mapping[str, str] | None = None, preexec_fn=None,
           timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run a Python snippet in a fresh interpreter (for crash and race tests)."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=full_env,
                          timeout=timeout, preexec_fn=preexec_fn, cwd=REPO)


def numeric_children(model_dir: Path) -> list[str]:
    from tfsk._base import layout

    return sorted(v.path.name for v in layout.list_versions(model_dir))


def tree_digest(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes, to prove a version was left untouched."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_every_version_loads(model_dir: Path, names: Sequence[str] | None = None) -> None:
    import tensorflow as tf

    for child in names or numeric_children(model_dir):
        tf.saved_model.load(str(model_dir / child))  # raises if half-written


def tower_c_factory():
    """A ``module:function`` factory the tests name as ``support:tower_c_factory``."""
    from tfsk.demo import build_tower

    return build_tower("tower_c")
