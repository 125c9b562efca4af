"""tfsk.devserver: an embedded server that speaks TensorFlow Serving's gRPC API with its flags.

Run it as ``tfsk serve --port=8500 --model_config_file=models.config`` (or ``python -m tfsk.devserver``);
embed it with :class:`DevServer` and :func:`parse_flags`. It loads SavedModels the way TF Serving
does (MetaGraph tag, SignatureDef tensor names, warmup records), discovers versions on disk with
TF Serving's rules, keeps the old version serving while a new one loads, and answers with TF
Serving's status codes and messages. See the README for what differs.
"""

import os

# Before TensorFlow loads: TF Serving's standard images are built without oneDNN (--config=mkl is
# the separate -mkl build), while pip TensorFlow turns it on; its caches kept ~1 GB of a large
# request after the answer and raised every peak. An explicit setting in the environment wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from ._flags import FlagError, ServerOptions, parse_flags  # noqa: E402
from ._server import DevServer, StartupError, read_model_config  # noqa: E402

__all__ = ["DevServer", "FlagError", "ServerOptions", "StartupError", "parse_flags", "read_model_config"]
