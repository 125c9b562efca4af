"""``tfsk replay``: send captured requests again and compare the answers with the captured ones.

Reads a capture (``Client(..., capture=Capture(folder))``), a version's warmup records, or an
``.npz`` examples file, without TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from tfsk.client import CapturedCall, Client, read_capture, replay

from . import _console
from .query import add_connection_options, connect

__all__ = ["main"]


def _parser(prog: str, argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = _console.ArgumentParser(
        prog=prog, json_mode=_console.wants_json(argv),
        description="Send captured Predict requests again (a capture folder or file, a version's warmup records, or "
                    "an .npz examples file) and report errors, latency and whether the answers match the captured ones.")
    parser.add_argument("source", metavar="FILE_OR_FOLDER", help="capture folder or file, warmup file, version folder "
                                                                 "or .npz examples file")
    parser.add_argument("--model", required=True, help="the model to send them to")
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--version", type=int, help="send to this version")
    choice.add_argument("--label", help="send to the version this label names")
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=float, help="calls a second, on schedule whatever the latency")
    pace.add_argument("--concurrency", type=int, default=1, help="calls in flight at a time (default 1)")
    parser.add_argument("--from-model", help="replay the captured calls to this model (default: --model's)")
    parser.add_argument("--limit", type=int, help="replay at most this many calls")
    parser.add_argument("--atol", type=float, default=1e-6, help="absolute tolerance when comparing answers")
    parser.add_argument("--rtol", type=float, default=1e-6, help="relative tolerance when comparing answers")
    add_connection_options(parser)
    return parser


def _calls(source: str, model: str, limit: int | None) -> list[CapturedCall]:
    # Shadow copies are the capture's own comparisons, not traffic. An examples file names no model.
    calls = [c for c in read_capture(source) if c.shadow_of is None and c.model in (model, "")]
    if not calls:
        held = sorted({c.model for c in read_capture(source)})
        raise _console.CommandError(f"{source} holds no Predict calls to {model}"
                                    + (f" (it holds calls to {', '.join(held)}: give --from-model)" if held else ""))
    return calls[:limit] if limit is not None else calls


def main(argv: Sequence[str] | None = None, prog: str = "tfsk replay") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser(prog, argv)
    args = parser.parse_args(argv)

    def body() -> int:
        calls = _calls(args.source, args.from_model or args.model, args.limit)
        client: Client
        with connect(args) as client:
            report = replay(client, calls, args.model, version=args.version, label=args.label, rate=args.rate,
                            concurrency=args.concurrency, atol=args.atol, rtol=args.rtol)
        if args.json:
            print(json.dumps({"model": args.model, "source": args.source, **report.as_dict()}))
        else:
            def ms(value: float | None) -> str:
                return "-" if value is None else f"{value * 1e3:.1f} ms"

            errors = ", ".join(f"{code} {count}" for code, count in sorted(report.errors.items())) or "none"
            print(f"replayed {report.sent} calls to {args.model} in {report.seconds:.2f}s: errors {errors}")
            print(f"  latency p50 {ms(report.p50)}, p90 {ms(report.p90)}, p99 {ms(report.p99)}")
            print(f"  answers: {report.matched} match the captured ones, {report.differed} differ, "
                  f"{report.not_compared} not compared (nothing captured to compare with, or the call failed)")
            for name, difference in sorted(report.max_abs_difference.items()):
                print(f"    {name}: max abs difference {difference:.3g}")
        return _console.EXIT_OK if report.ok else _console.EXIT_NOT_RIGHT

    return _console.guarded(prog, argv, body)
