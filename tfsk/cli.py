"""The ``tfsk`` command: a thin dispatcher to the CLI of the package that does the work.

Each command lives with the package it drives and is imported only when asked for, so that
``tfsk predict`` never pays for (or even imports) TensorFlow.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from tfsk._console import EXIT_OK, EXIT_USAGE, finish, guarded, report_error, wants_json

# command -> ("module" or "module:function" taking (argv, prog), one-line summary)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("tfsk.demo", "the main job: export the demo, write its configs, serve it on the devserver, query it"),
    "export": ("tfsk.exporter.cli", "export parts and composed models as versioned SavedModels; list and prune versions"),
    "config": ("tfsk.serving_config.cli", "write and validate TF Serving's models.config, monitoring and batching configs; plan label moves"),
    "stack": ("tfsk.deploy.cli", "the serving stack of docker-compose.yml: up, down, status, logs, check (Docker or the devserver)"),
    "rollout": ("tfsk.deploy.rollout_cli", "export a new part version into a composed model and roll it out: start, promote, rollback, finish, status"),
    "serve": ("tfsk.devserver.cli", "run the embedded TF-Serving-compatible server (tensorflow_model_server's flags)"),
    "predict": ("tfsk.client.cli:predict", "run a model's signature on inputs over gRPC"),
    "metadata": ("tfsk.client.cli:metadata", "show a served model's signatures"),
    "status": ("tfsk.client.cli:status", "show the state of a served model's versions"),
    "parts": ("tfsk.client.cli:parts", "list a served composed model's parts and part versions"),
    "check": ("tfsk.client.cli:check", "check a composed model's parts against the standalone part versions"),
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
