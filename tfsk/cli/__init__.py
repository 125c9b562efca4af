"""The ``tfsk`` command: a thin dispatcher to one module per command group.

``tfsk.cli.export``, ``.config``, ``.serve``, ``.query`` (predict, metadata, status, parts,
check), ``.replay``, ``.stack``, ``.rollout``, ``.bench``, ``.tune`` and ``.demo`` each parse their arguments and drive the package
that does the work; a command module is imported only when its command is asked for, and
imports only what it needs, so that ``tfsk predict`` never pays for (or even imports) TensorFlow.

Errors end a command in one place (:func:`guarded`): a :class:`tfsk.TfskError` becomes one line
(or one JSON document under ``--json``) and its ``exit_code``. The conventions every command
shares (exit codes, :class:`CommandError`, the progress bar) are public here, for the demo's job too.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from ._console import (
    EXIT_INTERRUPTED,
    EXIT_NOT_RIGHT,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    ExportSteps,
    Progress,
    describe_error,
    describe_os_error,
    emit_json,
    finish,
    guarded,
    quiet_native_stderr,
    report_error,
    setup_logging,
    wants_json,
)

__all__ = [
    "COMMANDS",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_RIGHT",
    "EXIT_OK",
    "EXIT_USAGE",
    "CommandError",
    "ExportSteps",
    "Progress",
    "describe_error",
    "describe_os_error",
    "emit_json",
    "guarded",
    "main",
    "quiet_native_stderr",
    "setup_logging",
]

# command -> ("module" or "module:function" taking (argv, prog), one-line summary)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("tfsk.cli.demo", "the main job: export the demo, write its configs, serve it on the devserver, query it"),
    "export": ("tfsk.cli.export", "export parts and composed models as versioned SavedModels; list and prune versions"),
    "config": ("tfsk.cli.config", "write and validate TF Serving's models.config, monitoring and batching configs; plan label moves"),
    "stack": ("tfsk.cli.stack", "the serving stack of docker-compose.yml: up, down, status, logs, check (Docker or the devserver)"),
    "rollout": ("tfsk.cli.rollout", "export a new part version into a composed model and roll it out: start, promote, rollback, finish, status"),
    "tune": ("tfsk.cli.tune", "pick batching parameters from measurements: trials on servers of their own, beside a baseline"),
    "serve": ("tfsk.cli.serve", "run the embedded TF-Serving-compatible server (tensorflow_model_server's flags)"),
    "predict": ("tfsk.cli.query:predict", "run a model's signature on inputs over gRPC"),
    "metadata": ("tfsk.cli.query:metadata", "show a served model's signatures"),
    "status": ("tfsk.cli.query:status", "show the state of a served model's versions"),
    "parts": ("tfsk.cli.query:parts", "list a served composed model's parts and part versions"),
    "check": ("tfsk.cli.query:check", "check a composed model's parts against the standalone part versions"),
    "replay": ("tfsk.cli.replay", "send captured requests (or warmup records) again; compare the answers with the captured ones"),
    "bench": ("tfsk.cli.bench", "measure a served model's throughput and latency percentiles under load; compare two runs"),
}


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: tfsk COMMAND [ARGS ...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "Run 'tfsk COMMAND --help' for a command's options.",
              "Exit status: 0 done, 1 what was checked is not right, 2 usage error or could not run, "
              "130 interrupted."]
    return "\n".join(lines)


def _dispatch(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return EXIT_OK
    if args[0] == "--version":
        from tfsk import __version__

        print(f"tfsk {__version__}")
        return EXIT_OK
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        return report_error("tfsk", f"unknown command {command!r}; run 'tfsk --help' for the list",
                            EXIT_USAGE, wants_json(args))
    module_name, _, function_name = COMMANDS[command][0].partition(":")
    entry = getattr(importlib.import_module(module_name), function_name or "main")
    return int(entry(rest, prog=f"tfsk {command}") or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; as the process itself (``argv`` None), exit without TensorFlow's slow teardown."""
    args = list(sys.argv[1:] if argv is None else argv)
    code = guarded("tfsk", args, lambda: _dispatch(args))
    if argv is None:
        finish(code)
    return code


if __name__ == "__main__":  # pragma: no cover
    main()
