"""``tfsk tune batching MODEL``: pick TF Serving batching parameters from measurements, not guesses.

Each trial runs on a server of its own (the devserver, or the ``tensorflow/serving`` image with
``--engine docker``) at the load given, beside a baseline without batching measured in the same
run; the table shows every trial, the best that meets ``--p99`` is marked, and ``--write`` puts it
into ``tfsk.toml``. Exit 1 when no trial meets the bound (batching should stay off).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import _console


def _parsed(parser: str, scale: float = 1.0, zero_ok: bool = False) -> Callable[[str], Any]:
    """An argparse type from one of the bench's parsers (``tfsk.deploy.parse_*``), so both commands
    spell loads and durations alike; a list must hold one value (a tune measures at one load)."""
    def convert(text: str) -> Any:
        from tfsk import deploy

        try:
            value = getattr(deploy, parser)(text)
        except deploy.BenchError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        if isinstance(value, list):
            if len(value) != 1:
                raise argparse.ArgumentTypeError(f"{text!r}: a tune measures at one load; give one value")
            value = value[0]
        if not (value > 0 or (zero_ok and value == 0)):
            raise argparse.ArgumentTypeError(f"{text!r}: give a duration above 0, e.g. 10s or 50ms")
        return value * scale if scale != 1.0 else value
    return convert


def _parser(prog: str, json_mode: bool = False) -> argparse.ArgumentParser:
    parser = _console.ArgumentParser(json_mode=json_mode, prog=prog, description="Tune serving parameters by "
                                     "measuring them on servers of their own.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    text = ("trials of TF Serving's batching parameters (max_batch_size, batch_timeout_micros, num_batch_threads, "
            "max_enqueued_batches, allowed_batch_sizes), each on a server of its own at the given load, beside a "
            "baseline without batching; a coordinate descent over a grid, not every combination")
    batching = commands.add_parser("batching", help="pick batching parameters for MODEL from measurements",
                                   description=text)
    batching.add_argument("model", metavar="MODEL", help="a model declared in tfsk.toml (its newest served version)")
    load = batching.add_mutually_exclusive_group(required=True)
    load.add_argument("--concurrency", type=_parsed("parse_counts"), metavar="C",
                      help="closed loop: C clients, each sending its next request when the last returns")
    load.add_argument("--rate", type=_parsed("parse_rates"), metavar="R", help="open loop: R requests per second")
    batching.add_argument("--p99", type=_parsed("parse_duration", 1e3), required=True,
                          metavar="LATENCY", help="the latency bound, e.g. 50ms (a bare number is seconds)")
    batching.add_argument("--trials", type=_console.positive_int, default=10, metavar="N",
                          help="batched trials at most (default 10; the baseline comes on top)")
    batching.add_argument("--budget", type=_parsed("parse_duration"), metavar="TIME",
                          help="time for the whole run, e.g. 5m: no trial starts that would pass it")
    batching.add_argument("--duration", type=_parsed("parse_duration"), default=10.0, metavar="TIME",
                          help="measuring time per trial (default 10s)")
    batching.add_argument("--warmup", type=_parsed("parse_duration", zero_ok=True), default=2.0, metavar="TIME",
                          help="load before measuring, per trial (default 2s)")
    batching.add_argument("--confirm", type=int, default=3, metavar="N",
                          help="rounds measuring the baseline and the best again, interleaved on their servers; the "
                               "verdict takes the medians of the per-round ratios (default 3; 0: single measurements)")
    batching.add_argument("--engine", choices=("devserver", "docker"), default="devserver",
                          help="the trial servers: the devserver (default) or the tensorflow/serving image (Docker)")
    batching.add_argument("--image", help="--engine docker: the image (default: the serving image of "
                                          "docker-compose.yml beside tfsk.toml)")
    batching.add_argument("--server-flag", action="append", default=[], metavar="FLAG",
                          help="another server flag for every trial and the baseline, e.g. "
                               "--server-flag=--tensorflow_intra_op_parallelism=1")
    batching.add_argument("--seed", type=int, default=0, help="the search's seed (default 0)")
    batching.add_argument("--write", action="store_true",
                          help="put the best into tfsk.toml [models.MODEL.batching] (comments kept); then "
                               "`tfsk config write` writes the files")
    batching.add_argument("--declaration", "-d", type=Path, default=Path("tfsk.toml"),
                          help="the declaration (default: ./tfsk.toml)")
    batching.add_argument("--json", nargs="?", const="-", metavar="OUT",
                          help="the report as JSON: on stdout (instead of the table), or also into the file OUT")
    return parser


def _default_image(declaration: Path) -> str | None:
    from tfsk.deploy import COMPOSE_FILE, load_compose

    compose = declaration.resolve().parent / COMPOSE_FILE
    if not compose.is_file():
        return None
    return load_compose(compose).service("serving").image


def _cell(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _print_trials(report: Any) -> None:
    """Every trial as measured, then (after confirmation rounds) the medians the verdict took; the
    winner is marked: the best batched trial when batching pays, else the baseline."""
    winner = {"batching": report.best, "off": report.baseline}.get(report.verdict)
    judged = [report.judged(t) for t in report.trials if any(c.index == t.index for c in report.confirmations)]
    headers = ("#", "max_batch", "timeout_us", "threads", "enqueued", "allowed_sizes", "req/s", "p50 ms", "p99 ms",
               "errors", "meets", "")
    rows, plain = [], []
    for trial, median in [(t, False) for t in report.trials] + [(t, True) for t in judged]:
        settings = None if trial.candidate is None else trial.candidate.settings()
        cells = (["baseline: no batching", "", "", "", ""] if settings is None else
                 [settings.max_batch_size, settings.batch_timeout_micros, settings.num_batch_threads,
                  settings.max_enqueued_batches, ",".join(map(str, settings.allowed_batch_sizes)) or "-"])
        errors = sum(trial.errors.values())
        marked = winner is not None and trial.index == winner.index and median == bool(judged)
        name = f"#{trial.index} median of {report.measurements}" if median else f"#{trial.index}"
        rows.append([name[1:], *cells, _cell(trial.throughput), _cell(trial.latency_ms.get("p50")),
                     _cell(trial.p99), errors, "yes" if trial.meets else "no", "best" if marked else ""])
        plain.append(f"{name} {trial.label}: {_cell(trial.throughput)} req/s p50 "
                     f"{_cell(trial.latency_ms.get('p50'))} ms p99 {_cell(trial.p99)} ms errors {errors} "
                     f"meets {'yes' if trial.meets else 'no'}{' BEST' if marked else ''}")
    _console.print_table(headers, rows, plain)


def main(argv: Sequence[str] | None = None, prog: str = "tfsk tune") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser(prog, _console.wants_json(argv)).parse_args(argv)

    def body() -> int:
        from tfsk import serving_config as sc
        from tfsk.deploy import LoadStep
        from tfsk.deploy.tune import Verdict, tune_batching

        declaration = sc.load_declaration(args.declaration)
        declaration.model(args.model)  # refused before anything starts
        image = args.image or (_default_image(args.declaration) if args.engine == "docker" else None)
        load = LoadStep(args.concurrency, args.rate, args.duration, args.warmup)
        to_stdout = args.json == "-"
        with _console.Progress(f"tune batching {args.model}", enabled=not to_stdout) as progress:
            progress.set_total(args.trials + 1)

            def on_trial(trial: Any) -> None:
                progress.step(f"trial {trial.index}: {_cell(trial.throughput)} req/s, p99 {_cell(trial.p99)} ms")

            report = tune_batching(declaration, args.model, load, p99_ms=args.p99, trials=args.trials,
                                   budget_seconds=args.budget, engine=args.engine, seed=args.seed, image=image,
                                   server_flags=args.server_flag, confirm=args.confirm,
                                   on_trial=on_trial)
        written: dict[str, Any] | None = None
        settings = report.best_settings
        if args.write and report.verdict == Verdict.BATCHING and settings is not None:
            note = (f"from `tfsk tune batching {args.model}` at {load.describe()}, p99 <= {args.p99:g} ms "
                    f"(version {report.version}, {report.engine})")
            updated = sc.record_batching(declaration, args.model, settings, note)
            model_batching = updated.model(args.model).batching
            written = {"declaration": str(declaration.source),
                       "model_batching": None if model_batching is None else model_batching.to_json(),
                       "server_num_batch_threads": None if updated.batching is None
                       else updated.batching.num_batch_threads}
        document = {"ok": report.verdict != Verdict.NONE, "command": f"{prog} batching", **report.to_json(),
                    "written": written}
        if args.json and not to_stdout:
            Path(args.json).write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
        if to_stdout:
            _console.emit_json(document)
        else:
            _print_trials(report)
            print(report.message(), flush=True)
            if written is not None:
                print(f"wrote [models.{args.model}.batching] (and [batching] num_batch_threads, which TF Serving "
                      f"takes from the server's file) to {written['declaration']}; run `tfsk config write` so "
                      f"new versions get batching_params.pbtxt, and serve with --enable_batching "
                      f"--enable_per_model_batching_parameters", flush=True)
            elif args.write:
                print(f"nothing written to {declaration.source}: batching should stay off for {args.model!r}",
                      flush=True)
        return _console.EXIT_OK if report.verdict != Verdict.NONE else _console.EXIT_NOT_RIGHT

    return _console.guarded(prog, argv, body)
