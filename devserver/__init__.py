"""tfsk.devserver: an embedded server that speaks TensorFlow Serving's gRPC API with its flags.

Run it as ``tfsk serve --port=8500 --model_config_file=models.config`` (or ``python -m tfsk.devserver``);
embed it with :class:`DevServer` and :func:`parse_flags`, or start it as a process of its own and
wait until it answers with :func:`start_process` (no TensorFlow in the caller's process). It loads SavedModels the way TF Serving
does (MetaGraph tag, SignatureDef tensor names, warmup records), discovers versions on disk with
TF Serving's rules, keeps the old version serving while a new one loads, and answers with TF
Serving's status codes and messages. See the README for what differs.
"""

from __future__ import annotations

import os

# Before TensorFlow loads: TF Serving's standard images are built without oneDNN (--config=mkl is
# the separate -mkl build), while pip TensorFlow turns it on; its caches kept ~1 GB of a large
# request after the answer and raised every peak. An explicit setting in the environment wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from typing import TYPE_CHECKING

from tfsk._base.lazy import lazy_exports

# Loaded on first use: ``tfsk serve --help`` and flag errors answer without TensorFlow.
_WHERE = {
    "DevServer": "._server",
    "DevserverProcess": "._process",
    "FlagError": "._flags",
    "ServerOptions": "._flags",
    "StartupError": "._errors",
    "parse_flags": "._flags",
    "read_model_config": "._server",
    "run_server": "._run",
    "start_process": "._process",
}
# Written out (not sorted(_WHERE)) so type checkers and linters see it; tests/test_public_api.py
# checks it against _WHERE.
__all__ = [
    "DevServer",
    "DevserverProcess",
    "FlagError",
    "ServerOptions",
    "StartupError",
    "parse_flags",
    "read_model_config",
    "run_server",
    "start_process",
]
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

if TYPE_CHECKING:
    from ._errors import StartupError
    from ._flags import FlagError, ServerOptions, parse_flags
    from ._process import DevserverProcess, start_process
    from ._run import run_server
    from ._server import DevServer, read_model_config
