"""One loaded SavedModel version: the MetaGraph TF Serving would load, in a session of its own.

Loading and running follow TF Serving: the MetaGraph tagged ``serve`` is loaded the way its C++
loader does it (same steps, same error codes: see :mod:`tfsk._base.rules.load`) into a session on
the CPU; requests feed and fetch SignatureDef tensor names. Runs go
through session callables, which, like TF Serving's C++ session, apply no Python-side shape
checks or dtype casts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import message, text_format
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2, saved_model_pb2
from tensorflow.python.saved_model import loader_impl

from tfsk._base import rules
from tfsk._base.layout import SAVED_MODEL_FILE, SAVED_MODEL_TEXT_FILE

from ._source import status_of
from ._status import StatusError

__all__ = ["CALLER_THREAD_MAX_NODES", "CALLER_THREAD_MODES", "Servable", "load_servable"]

logger = logging.getLogger(__name__)
_PYTHON_RUN_PREFIX = "Graph execution error:\n\n"

#: ``--session_run_in_caller_thread``: ``auto`` runs small graphs' ops in the calling thread.
CALLER_THREAD_MODES = ("auto", "true", "false")
#: With ``auto``, graphs up to this many nodes (functions' bodies included) run in the caller's
#: thread: handing each of a small graph's ops between inter-op threads costs more than the ops
#: (on 2 cores, a third of the server's CPU went to Eigen's work stealing, and the session call
#: took twice as long). Larger graphs keep the inter-op pool and its parallel branches.
CALLER_THREAD_MAX_NODES = 1000
# One inter-op pool shared by every session (as without ``session_inter_op_thread_pool``), so a
# RunOptions can choose it (index 0) or the caller's thread (-1).
_SHARED_POOL = "tfsk_inter_op"


def _graph_nodes(meta_graph: meta_graph_pb2.MetaGraphDef) -> int:
    graph = meta_graph.graph_def
    return len(graph.node) + sum(len(function.node_def) for function in graph.library.function)


def _in_caller_thread(mode: str, meta_graph: meta_graph_pb2.MetaGraphDef) -> bool:
    if mode == "auto":
        return _graph_nodes(meta_graph) <= CALLER_THREAD_MAX_NODES
    return mode == "true"


class Servable:
    """A model version ready to run its signatures."""

    def __init__(self, name: str, version: int, path: Path, session: tf.compat.v1.Session,
                 meta_graph: meta_graph_pb2.MetaGraphDef, *, in_caller_thread: bool = False) -> None:
        self.name = name
        self.version = version
        self.path = path
        self.session = session
        #: Every SignatureDef of the MetaGraph, TF's ``__saved_model_init_op`` included (as TF Serving reports them).
        self.signature_defs = dict(meta_graph.signature_def)
        self._callables: dict[tuple[tuple[str, ...], tuple[str, ...]], Any] = {}
        #: What request handlers derive from a signature once and reuse (e.g. Predict's plan), by key.
        self.derived: dict[Any, Any] = {}
        self._lock = threading.Lock()
        #: With --enable_batching, the BatchingSession runs go through (devserver/batching/).
        self.batching: Any = None
        #: Runs execute the graph's ops in the thread that calls ``run`` (see CALLER_THREAD_MAX_NODES).
        self.in_caller_thread = in_caller_thread

    def _callable(self, feeds: tuple[str, ...], fetches: tuple[str, ...]) -> Any:
        key = (feeds, fetches)
        found = self._callables.get(key)
        if found is None:
            with self._lock:
                found = self._callables.get(key)
                if found is None:
                    options = config_pb2.CallableOptions(feed=list(feeds), fetch=list(fetches))
                    if self.in_caller_thread:
                        options.run_options.inter_op_thread_pool = -1
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


def _read_saved_model(name: str, path: Path) -> saved_model_pb2.SavedModel:
    """``ReadSavedModel`` with the C++ codes (the Python reader calls every failure an IOError)."""
    pb = path / SAVED_MODEL_FILE
    proto = saved_model_pb2.SavedModel()
    if pb.exists():
        data = pb.read_bytes()
        try:
            proto.ParseFromString(data)
        except message.DecodeError:
            problem = rules.saved_model_bytes_problem(name, str(pb), data) or rules.unparsable(name, str(pb))
            raise status_of(problem) from None
        return proto
    try:
        text_format.Parse((path / SAVED_MODEL_TEXT_FILE).read_text(), proto)
    except (text_format.ParseError, UnicodeDecodeError):
        text = path / SAVED_MODEL_TEXT_FILE
        raise StatusError(grpc.StatusCode.DATA_LOSS, f"Can't parse {text} as text proto") from None
    return proto


def _restore(session: tf.compat.v1.Session, meta_graph: meta_graph_pb2.MetaGraphDef, path: Path) -> None:
    """``RunRestore``: like TF Serving, a SavedModel without ``variables/variables.index`` loads unrestored."""
    saver = meta_graph.saver_def
    index = path / "variables" / "variables.index"
    if not meta_graph.HasField("saver_def"):
        return
    if not index.exists():
        logger.info("The specified SavedModel has no variables; no checkpoints were restored. File does not exist: %s",
                    index)
        return
    session.run(saver.restore_op_name, {saver.filename_tensor_name: str(path / "variables" / "variables")})


def load_servable(name: str, version: int, path: Path, tags: Sequence[str],
                  intra_op_threads: int = 0, inter_op_threads: int = 0, caller_thread: str = "auto") -> Servable:
    """Load ``path`` as TF Serving does; raise StatusError with its loader's code and message on failure.

    The order is TF Serving's: resource estimation walks the folder, then ``saved_model.pb`` is
    read, the MetaGraph with ``tags`` imported, variables restored, the init op run.
    ``caller_thread`` (one of CALLER_THREAD_MODES) says whether Predict runs execute the graph's
    ops in the calling thread.
    """
    problem = rules.folder_problem(name, version, str(path), path)
    if problem is not None:
        raise status_of(problem)
    meta_graph = next((m for m in _read_saved_model(name, path).meta_graphs
                       if set(m.meta_info_def.tags) == set(tags)), None)
    if meta_graph is None:
        raise status_of(rules.tags_not_found(name, list(tags)))
    config = tf.compat.v1.ConfigProto(
        intra_op_parallelism_threads=intra_op_threads,
        inter_op_parallelism_threads=inter_op_threads,
        device_count={"GPU": 0},
    )
    # num_threads 0: the pool is inter_op_threads large (TF's default when that is 0 too).
    config.session_inter_op_thread_pool.add(num_threads=0, global_name=_SHARED_POOL)
    graph = tf.Graph()
    session = tf.compat.v1.Session(graph=graph, config=config)
    try:
        with graph.as_default():
            tf.compat.v1.train.import_meta_graph(meta_graph)
            _restore(session, meta_graph, path)
            init_op = loader_impl.get_init_op(meta_graph)
            if init_op is not None:
                session.run([init_op], feed_dict=loader_impl.get_asset_tensors(str(path), meta_graph))
    except tf.errors.OpError as error:
        session.close()
        # Python's Session.run prefixes what the C++ loader reports unadorned.
        raise StatusError.from_code_number(error.error_code, error.message.removeprefix(_PYTHON_RUN_PREFIX)) from None
    except (ValueError, KeyError, TypeError) as error:  # the graph cannot be imported into this TensorFlow
        session.close()
        raise StatusError(grpc.StatusCode.INVALID_ARGUMENT, str(error)) from None
    return Servable(name, version, path, session, meta_graph, in_caller_thread=_in_caller_thread(caller_thread, meta_graph))
