"""``tfsk serve``: the devserver with ``tensorflow_model_server``'s flags."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TF Serving's standard images are built without oneDNN (see devserver/__init__.py for why it matters).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

USAGE = """usage: tfsk serve --port=8500 (--model_config_file=FILE | --model_name=NAME --model_base_path=/abs/path) [flags]

An embedded server that speaks TensorFlow Serving's gRPC API and takes tensorflow_model_server's
flags in their --flag=value form. Flags it does not implement are warned about and ignored;
unknown arguments are reported and ignored, as TF Serving does.

Implemented flags: --port, --grpc_socket_path, --ssl_config_file, --model_name, --model_base_path, --model_config_file,
  --model_config_file_poll_wait_seconds, --file_system_poll_wait_seconds,
  --allow_version_labels_for_unavailable_models, --max_num_load_retries, --load_retry_interval_micros,
  --enable_model_warmup, --num_request_iterations_for_warmup, --saved_model_tags,
  --enable_signature_method_name_check, --enable_serialization_as_tensor_content, --grpc_max_threads,
  --tensorflow_intra_op_parallelism, --tensorflow_inter_op_parallelism, --version
Devserver only: --bind_address (default 127.0.0.1; TF Serving listens on 0.0.0.0),
  --max_request_tensor_bytes (default 1073741824: what one request may make the server create
  beyond what it sent, for its inputs and for its answer; 0 = no bound, as in TF Serving),
  --session_run_in_caller_thread (auto, true or false; default auto: graphs of up to 1000 nodes run
  their ops in the thread serving the request instead of handing them to the inter-op pool)
"""


def main(argv: Sequence[str] | None = None, prog: str = "tfsk serve") -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help", "--helpfull") for a in args):
        print(USAGE)
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("tensorflow").setLevel(logging.WARNING)
    from tfsk.devserver import FlagError, parse_flags

    try:
        options = parse_flags(args)
    except FlagError as error:
        print(f"{error}\n\n{USAGE}", file=sys.stderr)
        return 255
    if options.version:
        from importlib.metadata import PackageNotFoundError, version

        from tfsk import __version__

        try:  # the installed distribution's version: no need to import TensorFlow to print it
            tensorflow = version("tensorflow")
        except PackageNotFoundError:
            tensorflow = "not installed (pip install 'tfsk[serve]')"
        print(f"TensorFlow ModelServer: tfsk-devserver-{__version__}\nTensorFlow Library: {tensorflow}")
        return 0
    for argument in options.unknown:
        print(f"unknown argument: {argument}\n{USAGE}", file=sys.stderr)
    for argument in options.not_implemented:
        logging.getLogger("devserver").warning("%s is a TF Serving flag the devserver does not implement yet; ignored",
                                               argument.split("=")[0])
    from tfsk.devserver import run_server

    # this process is the server (not main() called in-process): its allocator may be set up for it
    return run_server(options, whole_process=args == sys.argv[len(sys.argv) - len(args):])
