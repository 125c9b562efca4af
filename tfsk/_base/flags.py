"""``tensorflow_model_server``'s flags: one table, and one parser that reads them as TF Serving does.

The table is ``model_servers/main.cc``'s flag list with ``server.h``'s defaults. The parser follows
``tensorflow/core/util/command_line_flags.cc``, item by item:

- ``--name=value`` only. A bool flag also takes a bare ``--name``; its value must be exactly
  ``true`` or ``false`` (``--name=1`` is refused). An int flag's value is what ``sscanf("%d%c")``
  takes whole (leading whitespace, a sign, decimal digits), a float flag's what ``"%f%c"`` takes.
- A refused value is a start-up error: TF Serving prints its usage and exits 255.
- Anything else (an unknown name, ``--port`` without ``=``, a word that is no flag such as the
  ``8500`` of ``--port 8500``, everything after ``--``) is an *unknown argument*: printed with the
  usage, then ignored, so the server starts with the flag at its default. ``--enable_batching true``
  therefore turns batching on and ignores ``true``; ``--enable_batching false`` turns it on too.

The devserver, the compose and Kubernetes readers and the stack checks all read flags here, so a
spelling means one thing everywhere.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "BOOL_FLAGS",
    "DEFAULT_MAX_REQUEST_TENSOR_BYTES",
    "DEVSERVER_FLAGS",
    "DEVSERVER_ONLY_FLAGS",
    "FLAGS",
    "PATH_FLAGS",
    "PORT_FLAGS",
    "TFSERVING_ENTRYPOINT",
    "Argument",
    "CommandLine",
    "Flag",
    "FlagKind",
    "FlagValue",
    "format_flag",
    "parse_command_line",
    "read_argument",
]

#: The server's binary, as the tensorflow/serving image's entrypoint script runs it.
TFSERVING_ENTRYPOINT = "tensorflow_model_server"

FlagKind = Literal["bool", "int", "float", "string"]
FlagValue = bool | int | float | str


def _cpus() -> int:
    return os.cpu_count() or 1


def _four_per_cpu() -> int:
    return 4 * _cpus()


@dataclass(frozen=True)
class Flag:
    """One flag: its type and default, whether its value is a file or folder (``path``) or a port
    the server listens on (``port``), and whether the devserver acts on it (``devserver``)."""

    name: str
    kind: FlagKind
    #: TF Serving's default; a callable for the ones that depend on the machine (CPU count).
    default: FlagValue | Callable[[], FlagValue]
    path: bool = False
    port: bool = False
    devserver: bool = False

    def default_value(self) -> FlagValue:
        return self.default() if callable(self.default) else self.default


def _flag(name: str, kind: FlagKind, default: FlagValue | Callable[[], FlagValue], *,
          path: bool = False, port: bool = False, devserver: bool = True) -> Flag:
    return Flag(name, kind, default, path=path, port=port, devserver=devserver)


#: Every flag of ``tensorflow_model_server``, in main.cc's order.
FLAGS: Mapping[str, Flag] = {f.name: f for f in (
    _flag("port", "int", 8500, port=True),
    _flag("grpc_socket_path", "string", "", path=True),
    _flag("rest_api_port", "int", 0, port=True),
    _flag("rest_api_num_threads", "int", _four_per_cpu),
    _flag("rest_api_timeout_in_ms", "int", 30_000),
    _flag("rest_api_enable_cors_support", "bool", False),
    _flag("enable_batching", "bool", False),
    _flag("allow_version_labels_for_unavailable_models", "bool", False),
    _flag("batching_parameters_file", "string", "", path=True),
    _flag("enable_per_model_batching_parameters", "bool", False),
    _flag("model_config_file", "string", "", path=True),
    _flag("model_config_file_poll_wait_seconds", "int", 0),
    _flag("model_name", "string", "default"),
    _flag("model_base_path", "string", "", path=True),
    _flag("num_load_threads", "int", 0, devserver=False),
    _flag("num_unload_threads", "int", 0, devserver=False),
    _flag("max_num_load_retries", "int", 5),
    _flag("load_retry_interval_micros", "int", 60_000_000),
    _flag("file_system_poll_wait_seconds", "int", 1),
    _flag("flush_filesystem_caches", "bool", True, devserver=False),
    _flag("tensorflow_session_parallelism", "int", 0, devserver=False),
    _flag("tensorflow_session_config_file", "string", "", path=True, devserver=False),
    _flag("tensorflow_intra_op_parallelism", "int", 0),
    _flag("tensorflow_inter_op_parallelism", "int", 0),
    _flag("use_alts_credentials", "bool", False, devserver=False),
    _flag("ssl_config_file", "string", "", path=True),
    _flag("platform_config_file", "string", "", path=True, devserver=False),
    _flag("per_process_gpu_memory_fraction", "float", 0.0, devserver=False),
    _flag("saved_model_tags", "string", "serve"),
    _flag("grpc_channel_arguments", "string", "", devserver=False),
    _flag("grpc_max_threads", "int", _four_per_cpu),
    _flag("enable_model_warmup", "bool", True),
    _flag("num_request_iterations_for_warmup", "int", 0),
    _flag("version", "bool", False),
    _flag("monitoring_config_file", "string", "", path=True),
    _flag("remove_unused_fields_from_bundle_metagraph", "bool", True, devserver=False),
    _flag("prefer_tflite_model", "bool", False, devserver=False),
    _flag("num_tflite_pools", "int", _cpus, devserver=False),
    _flag("num_tflite_interpreters_per_pool", "int", 1, devserver=False),
    _flag("enable_signature_method_name_check", "bool", False),
    _flag("xla_cpu_compilation_enabled", "bool", False, devserver=False),
    _flag("xla_gpu_compilation_enabled", "bool", False, devserver=False),
    _flag("enable_profiler", "bool", True, devserver=False),
    _flag("thread_pool_factory_config_file", "string", "", path=True, devserver=False),
    _flag("mixed_precision", "string", "", devserver=False),
    _flag("skip_initialize_tpu", "bool", False, devserver=False),
    _flag("enable_grpc_healthcheck_service", "bool", False),
    _flag("enable_serialization_as_tensor_content", "bool", False),
)}

#: 1 GiB: a request may make the devserver create this much beyond what it sent (inputs expanded
#: from short typed fields; separately, its answer). A 200 MB Predict and its 800 MB answer fit;
#: TF Serving itself would try any size, and a 40-byte request can ask for terabytes.
DEFAULT_MAX_REQUEST_TENSOR_BYTES = 1 << 30

#: The devserver's own flags, not TF Serving's (the stack passes them too): it binds to loopback
#: unless told otherwise, bounds what one request may make it allocate (<= 0: no bound, as in TF
#: Serving), and runs small graphs' ops in the calling thread (auto, true or false: see its _servable).
DEVSERVER_ONLY_FLAGS = (
    Flag("bind_address", "string", "127.0.0.1", devserver=True),
    Flag("max_request_tensor_bytes", "int", DEFAULT_MAX_REQUEST_TENSOR_BYTES, devserver=True),
    Flag("session_run_in_caller_thread", "string", "auto", devserver=True),
)

#: What the devserver takes: TF Serving's flags and its own.
DEVSERVER_FLAGS: Mapping[str, Flag] = {**FLAGS, **{f.name: f for f in DEVSERVER_ONLY_FLAGS}}

#: ``--name``, ``--name=true`` or ``--name=false``, nothing else.
BOOL_FLAGS = frozenset(f.name for f in FLAGS.values() if f.kind == "bool")
#: Flags whose value is a file or folder: inside a container they are container paths.
PATH_FLAGS = tuple(f.name for f in FLAGS.values() if f.path)
#: Flags whose value is a port the server listens on.
PORT_FLAGS = tuple(f.name for f in FLAGS.values() if f.port)

# sscanf("%d%c") == 1: leading C whitespace, an optional sign, decimal digits, nothing after.
_INT = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]+")
# sscanf("%f%c") == 1: strtod's forms (decimal, hex, inf, nan), nothing after.
_FLOAT = re.compile(r"[ \t\n\v\f\r]*[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
                    r"|0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?"
                    r"|(?i:inf(?:inity)?|nan))")


@dataclass(frozen=True)
class Argument:
    """One command-line item as TF Serving reads it: a flag's value, a refused value, or unknown."""

    text: str
    #: the flag it sets (or whose value it gets wrong); ``None``: an unknown argument
    flag: Flag | None = None
    value: FlagValue | None = None
    #: why TF Serving refuses it at start-up (usage printed, exit 255)
    error: str | None = None

    @property
    def unknown(self) -> bool:
        return self.flag is None


def _refused(text: str, flag: Flag, value: str) -> Argument:
    if flag.kind == "bool":
        error = (f"Illegal value '{value}' for bool flag --{flag.name}: use --{flag.name}, --{flag.name}=true or "
                 f"--{flag.name}=false")
    else:
        error = f"Illegal value '{value}' for {flag.kind} flag --{flag.name}"
    return Argument(text, flag, None, error)


def read_argument(text: str, flags: Mapping[str, Flag] = FLAGS) -> Argument:
    """What ``text`` (one item of the command line) does to a server with ``flags``."""
    if not text.startswith("--"):
        return Argument(text)
    name, equals, value = text[2:].partition("=")
    flag = flags.get(name)
    if flag is None:
        # A bool flag takes every item that starts with its name: '--enable_batchingX' is its bad value.
        prefix = next((f for f in flags.values() if f.kind == "bool" and text[2:].startswith(f.name)), None)
        return _refused(text, prefix, text[2 + len(prefix.name):]) if prefix else Argument(text)
    if flag.kind == "bool":
        if not equals:
            return Argument(text, flag, True)
        if value in ("true", "false"):
            return Argument(text, flag, value == "true")
        return _refused(text, flag, value)
    if not equals:
        return Argument(text)  # '--port 8500' is two unknown arguments, not '--port=8500'
    if flag.kind == "int":
        return Argument(text, flag, int(value)) if _INT.fullmatch(value) else _refused(text, flag, value)
    if flag.kind == "float":
        return Argument(text, flag, float.fromhex(value.strip()) if "x" in value.lower() else float(value)) \
            if _FLOAT.fullmatch(value) else _refused(text, flag, value)
    return Argument(text, flag, value)


@dataclass(frozen=True)
class CommandLine:
    """A whole command line, read item by item; the last value of a flag wins, as in TF Serving."""

    arguments: tuple[Argument, ...]
    flags: Mapping[str, Flag]

    @property
    def values(self) -> dict[str, FlagValue]:
        """Every flag given a valid value, typed."""
        return {a.flag.name: a.value for a in self.arguments
                if a.flag is not None and a.error is None and a.value is not None}

    @property
    def unknown(self) -> list[str]:
        """The items TF Serving prints as ``unknown argument`` and ignores."""
        return [a.text for a in self.arguments if a.unknown]

    @property
    def errors(self) -> list[str]:
        """Why TF Serving would refuse to start (usage printed, exit 255); empty when it starts."""
        return [a.error for a in self.arguments if a.error is not None]

    def given(self, name: str) -> bool:
        return name in self.values

    def value(self, name: str) -> FlagValue:
        """The flag's value on this command line, else its default."""
        values = self.values
        return values[name] if name in values else self.flags[name].default_value()


def parse_command_line(argv: Sequence[str], flags: Mapping[str, Flag] = FLAGS) -> CommandLine:
    """Read ``argv`` (without the program name) as TF Serving's flag parser does."""
    items = list(argv)
    if "--" in items:  # everything from '--' on is passed through, unknown to the server
        cut = items.index("--")
        return CommandLine(tuple(read_argument(a, flags) for a in items[:cut]) +
                           tuple(Argument(a) for a in items[cut:]), flags)
    return CommandLine(tuple(read_argument(a, flags) for a in items), flags)


def format_flag(name: str, value: FlagValue) -> str:
    """``--name=value`` as TF Serving takes it (bools as ``true``/``false``)."""
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return f"--{name}={text}"
