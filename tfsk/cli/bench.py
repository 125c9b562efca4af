"""``tfsk bench MODEL``: throughput and latency percentiles of a served model under load, step by step;
``tfsk bench compare BEFORE.json AFTER.json``: two runs side by side. Never imports TensorFlow."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tfsk._base.naming import DEFAULT_SIGNATURE

from . import _console

__all__ = ["main"]

_DESCRIPTION = """Measure a served model (TF Serving or the devserver) under load: a closed-loop
concurrency sweep (default 1,2,4,8,16,32 requests in flight) or open-loop fixed rates (--rate),
whose latencies count from each send's scheduled time. Per step: throughput, p50/p90/p95/p99/max
latency, errors by status code, the generator's own CPU; the knee (most throughput per p99
millisecond) is marked. A rate the generator could not keep is reported as NOT SUSTAINED.
'tfsk bench compare BEFORE.json AFTER.json' compares two --json results."""


def _parser(prog: str, argv: Sequence[str]) -> _console.ArgumentParser:
    from tfsk.client import DEFAULT_TARGET, TARGET_ENV
    from tfsk.deploy.bench import ARRIVALS, PROTOCOLS

    parser = _console.ArgumentParser(prog=prog, description=_DESCRIPTION, json_mode=_console.wants_json(argv),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="the model's name on the server (as in models.config)")
    parser.add_argument("--signature", default=DEFAULT_SIGNATURE, help="signature to run (default %(default)s)")
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--version", type=_console.positive_int, help="measure this version")
    choice.add_argument("--label", help="measure the version this label names (e.g. canary)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--input", "-i", action="append", default=[], metavar="NAME=VALUE",
                        help="an input as tfsk predict takes it: a JSON literal, @file.npy or @file.json (repeat for "
                             "each input; default: made up from the signature)")
    source.add_argument("--examples", metavar="FILE", help="send the requests of a warmup-records file (a version's "
                                                           "assets.extra/tf_serving_warmup_requests, or its folder)")
    source.add_argument("--replay", metavar="CAPTURE", help="send the Predict requests of captured traffic "
                                                            "(PredictionLog records, as the client's capture writes)")
    parser.add_argument("--batch", type=_console.positive_int, default=1,
                        help="rows per made-up request (default %(default)s)")
    load = parser.add_mutually_exclusive_group()
    load.add_argument("--concurrency", "-c", metavar="N,N,...", help="closed loop: requests in flight per step "
                                                                     "(default 1,2,4,8,16,32)")
    load.add_argument("--rate", "-r", metavar="R,R,...", help="open loop: requests per second per step")
    parser.add_argument("--arrivals", choices=ARRIVALS, default="constant",
                        help="open loop: even gaps, or Poisson arrivals (default %(default)s)")
    parser.add_argument("--duration", "-d", default="10s", help="measured time per step (default %(default)s)")
    parser.add_argument("--warmup", default="2s", help="unmeasured load before each step (default %(default)s)")
    parser.add_argument("--target", default=None,
                        help=f"host:port of the server, or several (host:port,host:port: requests go to each in turn); "
                             f"the REST port with --protocol rest (default ${TARGET_ENV}, else {DEFAULT_TARGET})")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="grpc", help="gRPC Predict or TF Serving's REST "
                                                                              "predict API (default %(default)s)")
    parser.add_argument("--processes", "-p", type=_console.positive_int, default=None,
                        help="generator processes (default: half the cores, 1 to 8)")
    parser.add_argument("--repeats", type=_console.positive_int, default=1,
                        help="run the whole sweep this many times (the JSON keeps each, for compare's noise)")
    parser.add_argument("--timeout", type=float, default=30.0, help="deadline of each request in seconds")
    parser.add_argument("--json", nargs="?", const="-", metavar="OUT",
                        help="write the results as JSON to OUT (alone: to stdout, instead of the table)")
    parser.add_argument("--csv", metavar="OUT", help="write one row per step as CSV to OUT ('-': stdout)")
    parser.add_argument("--plot", metavar="FILE.svg", help="draw latency percentiles against throughput as SVG")
    return parser


def _compare_parser(prog: str, argv: Sequence[str]) -> _console.ArgumentParser:
    parser = _console.ArgumentParser(prog=prog, json_mode=_console.wants_json(argv),
                                     description="Per step, after / before: throughput and each latency percentile "
                                                 "(medians of the repeats each file holds), with the repeats' noise.")
    parser.add_argument("before", help="a tfsk bench --json result")
    parser.add_argument("after", help="a tfsk bench --json result")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def _target(args: argparse.Namespace) -> str:
    from tfsk.client import TARGET_ENV

    if args.target:
        return str(args.target)
    found = os.environ.get(TARGET_ENV, "").strip()
    if found:
        return found
    return "localhost:8501" if args.protocol == "rest" else "localhost:8500"


def _given_inputs(args: argparse.Namespace, target: str) -> Any:
    """--input values, typed after the signature as tfsk predict types them."""
    from tfsk.deploy.bench import signature_inputs

    from .query import _inputs

    specs = signature_inputs(target.split(",")[0], args.model, args.signature, version=args.version, label=args.label,
                             protocol=args.protocol)
    return _inputs(args.input, {name: spec.dtype for name, spec in specs.items()})


def _write(path: str, text: str) -> None:
    if path == "-":
        sys.stdout.write(text)
    else:
        Path(path).write_text(text)


def _show(report: Any, runs: list[Any]) -> None:
    print(f"{report.model} ({report.signature}"
          + (f", version {report.version}" if report.version else f", label {report.label}" if report.label else "")
          + f") on {', '.join(report.target)} over {report.protocol}, {report.processes} generator process"
          + ("es" if report.processes > 1 else "") + f", {report.inputs} inputs"
          + (f", run {report.repeat + 1} of {len(runs)}" if len(runs) > 1 else ""))
    _console.print_table(report.HEADERS, report.rows(), report.text())
    if any(not s.sustained for s in report.steps):
        print("NOT SUSTAINED: the generator missed more than 1% of its scheduled sends, so those figures are not the "
              "server's; lower the rate or add --processes")


def bench(argv: list[str], prog: str) -> int:
    parser = _parser(prog, argv)
    args = parser.parse_args(argv)

    def body() -> int:
        from tfsk.deploy.bench import parse_counts, parse_duration, parse_rates, plot_svg, run_bench, steps_for

        steps = steps_for(concurrency=parse_counts(args.concurrency) if args.concurrency else (),
                          rates=parse_rates(args.rate) if args.rate else (),
                          duration_seconds=parse_duration(args.duration),
                          warmup_seconds=parse_duration(args.warmup, "--warmup"))
        target = _target(args)
        inputs, requests = None, None
        if args.input:
            inputs = _given_inputs(args, target)
        elif args.examples or args.replay:
            from tfsk.deploy.bench import requests_from_records

            requests = requests_from_records(args.examples or args.replay, args.model, args.signature, args.version,
                                     args.label, "--examples" if args.examples else "--replay")
        quiet = args.json == "-" or args.csv == "-"
        progress = _console.Progress(f"bench {args.model}", enabled=not quiet)
        runs = []
        with progress:
            progress.set_total(len(steps) * args.repeats)

            def on_step(index: int, result: Any) -> None:
                if result is None:
                    progress.note(f"{steps[index].describe()}")
                else:
                    progress.step(f"{result.step.describe()}: {result.throughput:.0f} req/s, "
                                  f"p99 {result.latency_ms['p99']:.1f} ms")

            for repeat in range(args.repeats):
                report = run_bench(target, args.model, steps, signature=args.signature, label=args.label,
                                   version=args.version, inputs=inputs, requests=requests, batch_size=args.batch,
                                   protocol=args.protocol, processes=args.processes, arrivals=args.arrivals,
                                   timeout=args.timeout, seed=repeat, on_step=on_step)
                report.repeat = repeat
                runs.append(report)
        document = runs[0].to_json() if len(runs) == 1 else {"runs": [r.to_json() for r in runs]}
        if args.json:
            _write(args.json, json.dumps(document, indent=2) + "\n")
        if args.csv:
            _write(args.csv, "".join(r.csv() if i == 0 else r.csv().split("\n", 1)[1] for i, r in enumerate(runs)))
        if args.plot:
            Path(args.plot).write_text(plot_svg(runs[-1]))
        if not quiet:
            for report in runs:
                _show(report, runs)
        return _console.EXIT_OK

    return _console.guarded(prog, argv, body)


def compare(argv: list[str], prog: str) -> int:
    parser = _compare_parser(prog, argv)
    args = parser.parse_args(argv)

    def body() -> int:
        from tfsk.deploy.bench import METRICS, compare_reports, report_from_json

        sides = []
        for name in (args.before, args.after):
            try:
                data = json.loads(Path(name).read_text())
            except json.JSONDecodeError as error:
                raise _console.CommandError(f"{name} is not JSON ({error.msg}): give a file written by "
                                            f"tfsk bench --json") from None
            sides.append(report_from_json(data, name))
        result = compare_reports(sides[0], sides[1])
        if args.json:
            _console.emit_json({"before": args.before, "after": args.after, **result.to_json()})
            return _console.EXIT_OK
        print(f"after / before, per step ({args.after} over {args.before}; medians of {result.repeats[0]} and "
              f"{result.repeats[1]} runs; ±: the repeats' spread, ~: within it)")
        headers = ("load", *(f"{m}" if m == "throughput" else f"{m} latency" for m in METRICS))
        rows = result.rows()
        table = [list(headers), *rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
        plain = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in table]
        _console.print_table(headers, rows, plain)
        for side, loads in (("before", result.only_before), ("after", result.only_after)):
            if loads:
                print(f"only in {side}: {', '.join(loads)}")
        return _console.EXIT_OK

    return _console.guarded(prog, argv, body)


def main(argv: Sequence[str] | None = None, prog: str = "tfsk bench") -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["compare"]:
        return compare(args[1:], f"{prog} compare")
    return bench(args, prog)
