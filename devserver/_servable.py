"""One loaded SavedModel version: the MetaGraph TF Serving would load, in a session of its own.

Loading and running follow TF Serving: the MetaGraph tagged ``serve`` is loaded with the v1
loader into a session on the CPU; requests feed and fetch SignatureDef tensor names. Runs go
through session callables, which, like TF Serving's C++ session, apply no Python-side shape
checks or dtype casts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2

from ._status import StatusError

__all__ = ["Servable", "load_servable"]

logger = logging.getLogger(__name__)


class Servable:
    """A model version ready to run its signatures."""

    def __init__(self, name: str, version: int, path: Path, session: tf.compat.v1.Session,
                 meta_graph: meta_graph_pb2.MetaGraphDef) -> None:
        self.name = name
        self.version = version
        self.path = path
        self.session = session
        #: Every SignatureDef of the MetaGraph, TF's ``__saved_model_init_op`` included (as TF Serving reports them).
        self.signature_defs = dict(meta_graph.signature_def)
        self._callables: dict[tuple[tuple[str, ...], tuple[str, ...]], Any] = {}
        self._lock = threading.Lock()
        #: With --enable_batching, the BatchingSession runs go through (devserver/_batching.py).
        self.batching: Any = None

    def _callable(self, feeds: tuple[str, ...], fetches: tuple[str, ...]) -> Any:
        key = (feeds, fetches)
        found = self._callables.get(key)
        if found is None:
            with self._lock:
                found = self._callables.get(key)
                if found is None:
                    options = config_pb2.CallableOptions(feed=list(feeds), fetch=list(fetches))
                    found = self.session._make_callable_from_options(options)  # noqa: SLF001 - no public equivalent
                    self._callables[key] = found
        return found

    def run(self, feeds: Mapping[str, np.ndarray], fetches: Sequence[str]) -> list[np.ndarray]:
        """Feed tensors by graph tensor name and fetch tensors by name; TF errors become ServingErrors."""
        if self.batching is not None:
            return self.batching.run(feeds, fetches)
        return self.run_unbatched(feeds, fetches)

    def run_unbatched(self, feeds: Mapping[str, np.ndarray], fetches: Sequence[str]) -> list[np.ndarray]:
        names = tuple(sorted(feeds))
        try:
            return list(self._callable(names, tuple(fetches))(*[feeds[n] for n in names]))
        except tf.errors.OpError as error:
            raise StatusError.from_code_number(error.error_code, error.message) from None

    def close(self) -> None:
        if self.batching is not None:
            self.batching.close()  # queued runs finish before the session goes
        self.session.close()


def load_servable(name: str, version: int, path: Path, tags: Sequence[str],
                  intra_op_threads: int = 0, inter_op_threads: int = 0) -> Servable:
    """Load ``path`` as TF Serving does; raise StatusError with the loader's code on failure."""
    config = tf.compat.v1.ConfigProto(
        intra_op_parallelism_threads=intra_op_threads,
        inter_op_parallelism_threads=inter_op_threads,
        device_count={"GPU": 0},
    )
    graph = tf.Graph()
    session = tf.compat.v1.Session(graph=graph, config=config)
    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    tf_logger.setLevel(logging.ERROR)  # the v1 loader's deprecation notice is noise here
    try:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, list(tags), str(path))
    except tf.errors.OpError as error:
        session.close()
        raise StatusError.from_code_number(error.error_code, error.message) from None
    except (OSError, RuntimeError, ValueError) as error:
        session.close()
        # The Python loader raises OSError where TF Serving's C++ loader reports NOT_FOUND.
        code = 5 if isinstance(error, OSError) else 2
        raise StatusError.from_code_number(code, str(error)) from None
    finally:
        tf_logger.setLevel(level)
    return Servable(name, version, path, session, meta_graph)
