"""``tfsk demo``: the main job, end to end on this machine.

Export the demo towers and the composed model (or reuse the newest complete set when nothing
changed), write TF Serving's configs from tfsk.toml, serve them on the devserver, and query the
composed model and each of its parts over gRPC with the client.

The job's steps are :mod:`tfsk.demo`'s; this module reads the arguments and prints the outcome.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import _console
from ._console import EXIT_NOT_RIGHT, EXIT_OK, emit_json


def _parser(prog: str, json_mode: bool) -> argparse.ArgumentParser:
    parser = _console.ArgumentParser(prog=prog, json_mode=json_mode, description=__doc__.split("\n\n")[1].replace("\n", " "))
    parser.add_argument("--declaration", type=Path, default=Path("tfsk.toml"), help="the config declaration (default: tfsk.toml)")
    parser.add_argument("--port", type=_console.positive_int, default=8500, help="gRPC port of the devserver on 127.0.0.1 (default: 8500)")
    parser.add_argument("--fresh", action="store_true",
                        help="export a new version of every demo model even if the newest ones are unchanged")
    parser.add_argument("--keep-serving", action="store_true",
                        help="leave the devserver running at the end, detached (its log goes to a file; stop it with "
                             "kill PID)")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout at the end (errors too)")
    parser.add_argument("--verbose", "-v", action="store_true", help="show library and TensorFlow log lines")
    return parser


def _run(args: argparse.Namespace, prog: str) -> int:
    from tfsk.demo import DemoReport, run_demo

    report = DemoReport(args.json)
    consistent = run_demo(args.declaration, args.port, report, fresh=args.fresh, keep_serving=args.keep_serving,
                          verbose=args.verbose)
    if args.json:
        emit_json({"ok": consistent, **report.facts})
    elif consistent:
        report.line("\ndone: exported, configured, served and queried.")
    else:
        report.line(f"\n{prog}: the composed model does not agree with its parts (INCONSISTENT above)")
    return EXIT_OK if consistent else EXIT_NOT_RIGHT


def main(argv: Sequence[str] | None = None, prog: str = "tfsk demo") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser(prog, _console.wants_json(argv)).parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return _console.guarded(prog, argv, lambda: _run(args, prog))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
