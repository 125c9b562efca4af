"""``tfsk rollout``: export a new part version into a composed model and move it to production behind labels."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tfsk._base.errors import TfskError

from . import _console

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # start exports with TensorFlow

_STEPS = {
    "pin": "pinning the versions to keep loaded and labelling stable",
    "export-part": "exporting the part's new version",
    "export-composed": "assembling the composed model's new version",
    "load": "loading the new version on every target",
    "check": "checking the new version against the standalone parts",
    "label": "labelling the new version canary",
    "promote": "moving stable to the canary",
    "rollback": "moving stable back",
    "finish": "unloading and pruning the old versions",
}


def _parser(prog: str, json_mode: bool = False) -> argparse.ArgumentParser:
    parser = _console.ArgumentParser(
        json_mode=json_mode, prog=prog, description="Roll a new part version out into a composed model on running servers: start "
                               "(export, assemble, load beside stable, check, label canary), promote, rollback, "
                               "finish, status. tfsk.toml records the versions kept loaded and the labels.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--declaration", "-d", type=Path, default=Path("tfsk.toml"),
                         help="the declaration (default: ./tfsk.toml)")
        sub.add_argument("--target", help="comma-separated host:port list of the replicas (default: the running "
                                          "`tfsk stack`, else $TFSK_TARGET, else localhost:8500)")
        sub.add_argument("--paths", choices=("host", "container"),
                         help="which models.config the servers read: host paths (devserver) or container paths "
                              "(TF Serving in the compose stack); default: from the running stack, else host")
        sub.add_argument("--timeout", type=float, default=120.0,
                         help="seconds each server gets to apply a config and load versions (default 120)")
        return sub

    start = add("start", "export PART's next version (or take --version), assemble COMPOSED's next version with the "
                         "head and other parts of stable, load it on every target, check it, label it canary")
    start.add_argument("part", metavar="PART")
    start.add_argument("--model", "-m", required=True, metavar="COMPOSED", help="the composed model")
    source = start.add_mutually_exclusive_group(required=True)
    source.add_argument("--from", dest="keras_file", metavar="FILE.keras", help="the part's new Keras model")
    source.add_argument("--factory", metavar="MODULE:FUNCTION", help="a function that builds the part's new model")
    source.add_argument("--version", type=int, metavar="N", help="an already exported version of the part")
    start.add_argument("--atol", type=float, default=1e-5, help="tolerance of the consistency check (default 1e-5)")
    start.add_argument("--allow-contract-change", action="store_true",
                       help="publish a part (and composed model) whose inputs or outputs differ from the previous "
                            "version's (passed to both exports)")
    json_help = ("machine-readable output (the progress goes to stderr); with [kubernetes] declared, "
                 "\"kubectl\" is the command that applies the rewritten ConfigMap")
    start.add_argument("--json", action="store_true", help=json_help)
    start.add_argument("--gate", action="store_true",
                       help="an automated canary: after start, analyze; promote on pass, drop the canary on fail "
                            "(exit 1)")
    start.add_argument("--capture", type=Path, metavar="PATH",
                       help="with --gate: the captured traffic to judge on (default: the warmup records, else "
                            "requests made up from the signature)")
    analyze = add("analyze", "judge canary against stable: the same requests to both on every target (or, with "
                             "--live, traffic a client routed and captured); latency, errors and how far each "
                             "output moved, against [rollout.gate] in tfsk.toml; exit 1 when a check fails")
    analyze.add_argument("model", metavar="COMPOSED")
    replayed = analyze.add_mutually_exclusive_group()
    replayed.add_argument("--capture", type=Path, metavar="PATH",
                          help="captured traffic to replay to both labels (a capture file or folder); default: the "
                               "warmup records (the exporter's examples), else requests made up from the signature")
    replayed.add_argument("--live", type=Path, metavar="CAPTURE",
                          help="judge the traffic a client routed between stable and canary and captured, instead "
                               "of replaying")
    analyze.add_argument("--json", action="store_true", help="the report as JSON (it is also kept in "
                                                             ".tfsk/rollout/COMPOSED.gate.json)")
    for name, text in (("promote", "judge the canary (tfsk rollout analyze), then move stable to it (the old "
                                   "version stays loaded); a failing canary is refused unless --force"),
                       ("rollback", "move stable back to the version it named before promote"),
                       ("finish", "point canary at stable, unload the other versions, prune unreferenced versions"),
                       ("status", "versions, labels, lineage and health of COMPOSED on every target")):
        sub = add(name, text)
        sub.add_argument("model", metavar="COMPOSED")
        sub.add_argument("--json", action="store_true",
                         help="machine-readable output" if name == "status" else json_help)
        if name == "promote":
            sub.add_argument("--force", action="store_true",
                             help="promote a canary that fails the gate (noted in .tfsk/rollout/COMPOSED.json)")
            sub.add_argument("--capture", type=Path, metavar="PATH", help="captured traffic to judge on")
    return parser


def _say(text: str) -> None:
    print(text, flush=True)


def _say_err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _step_json(args: argparse.Namespace, rollout: Any, result: Any) -> dict[str, Any]:
    """A step's outcome: the labels tfsk.toml now declares, and the ConfigMap to apply ([kubernetes])."""
    return {"ok": True, "command": args.command, "model": args.model, "result": result,
            "labels": rollout.labels, "versions": rollout.kept,
            "config_map": str(rollout.config_map) if rollout.config_map else None, "kubectl": rollout.kubectl}


def resolve_targets(args: argparse.Namespace) -> Any:
    """``--target``, else the running stack beside the declaration, else ``$TFSK_TARGET`` / localhost:8500."""
    from tfsk.deploy import (
        COMPOSE_FILE,
        DevserverStack,
        Targets,
        docker_engine_problem,
        load_stack,
    )

    paths = args.paths
    if args.target:
        return Targets(tuple(t.strip() for t in args.target.split(",") if t.strip()), paths or "host", args.timeout)
    compose = args.declaration.resolve().parent / COMPOSE_FILE
    if compose.is_file() and not os.environ.get("TFSK_TARGET"):
        spec = load_stack(compose, args.declaration)
        stack = DevserverStack(spec)
        if stack.record() is not None:  # every replica, also one that died: the step fails naming it
            return Targets(tuple(str(r.endpoints["grpc"]) for r in stack.records()), paths or "host", args.timeout)
        if docker_engine_problem() is None:
            return Targets((spec.endpoints().grpc,), paths or "container", args.timeout)
    from tfsk.client import DEFAULT_TARGET

    addresses = os.environ.get("TFSK_TARGET", DEFAULT_TARGET)
    return Targets(tuple(t.strip() for t in addresses.split(",") if t.strip()), paths or "host", args.timeout)


def _print_status(status: dict[str, Any]) -> None:
    declared = status["declared"]
    labels = ", ".join(f"{k} -> {v}" for k, v in sorted(declared["labels"].items())) or "none"
    _say(f"{status['model']}: tfsk.toml keeps versions {declared['versions'] or '(by policy)'}; labels {labels}")
    rollout = status["rollout"]
    if rollout["part"]:
        _say(f"last rollout: part {rollout['part']} version {rollout['part_version']} ({rollout['source']}) -> "
             f"{status['model']} version {rollout['candidate']}; step {rollout['step']}"
             f"{'' if rollout['done'] else ' (not finished)'}")
    for target in status["targets"]:
        _say(f"  {target['target']}: {'healthy' if target['healthy'] else 'NOT healthy'}"
             + (f" ({target['error']})" if "error" in target else ""))
        for version in target["versions"]:
            parts = ", ".join(f"{k}@{v}" for k, v in version["parts"].items())
            _say(f"    version {version['version']}: {version['state']}" + (f"  [{parts}]" if parts else "")
                 + (f"  {version['error']}" if version["error"] else ""))
        for label, answer in sorted(target["labels"].items()):
            _say(f"    label {label} -> {answer}")


def _number(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def _print_report(report: dict[str, Any]) -> None:
    """The gate's report: per label, per output, then each failed check and the verdict."""
    labels, outputs = report["labels"], report["outputs"]
    _say(f"{report['model']}: canary (version {report['canary']}) against stable (version {report['stable']}) on "
         f"{', '.join(report['targets'])}" + (f", {report['source']}" if report["mode"] == "live" else ""))
    headers: tuple[str, ...] = ("label", "requests", "errors", "p50 ms", "p90 ms", "p99 ms")
    rows: list[tuple[Any, ...]] = [(label, figures["requests"], ", ".join(f"{k} x{v}" for k, v in figures["errors"].items()) or "0",
             _number(figures["p50_ms"]), _number(figures["p90_ms"]), _number(figures["p99_ms"]))
            for label, figures in labels.items()]
    _console.print_table(headers, rows, [f"  {r[0]:<7} {r[1]:>5} requests  errors {r[2]:<24} p50 {r[3]:>6} ms  "
                                         f"p90 {r[4]:>6} ms  p99 {r[5]:>6} ms" for r in rows])
    headers = ("output", "part", "max |diff|", "mean |diff|", "rank agreement", "flips", "PSI", "KS")
    rows = [(key, f.get("part") or "(head)", _number(f.get("max_abs_difference")), _number(f.get("mean_abs_difference")),
             _number(f.get("rank_agreement")), _number(f.get("flip_rate")), _number(f.get("psi")), _number(f.get("ks")))
            for key, f in sorted(outputs.items(), key=lambda item: (item[1].get("part") is not None, item[0]))]
    _console.print_table(headers, rows, [f"  {r[0]:<22} {r[1]:<8} max|diff| {r[2]:>7}  mean|diff| {r[3]:>7}  "
                                         f"rank {r[4]:>5}  flips {r[5]:>5}  PSI {r[6]:>6}  KS {r[7]:>5}" for r in rows])
    _say(report["moved"])
    for check in report["checks"]:
        if not check["ok"]:
            _say(f"FAILED {check['name']}: {check['detail']}")
    verdict = "PASS" if report["verdict"] == "pass" else f"FAIL ({', '.join(report['failed'])})"
    _say(f"verdict: {verdict}  ({len(report['checks'])} checks; report kept in .tfsk/rollout/{report['model']}.gate.json)")


def main(argv: Sequence[str] | None = None, prog: str = "tfsk rollout") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser(prog, _console.wants_json(argv)).parse_args(argv)
    rollout = None

    def body() -> int:
        nonlocal rollout
        from tfsk import serving_config as sc
        from tfsk.deploy import GateFailedError, Rollout, RolloutError, Source, StackError

        try:
            say = _say_err if args.json and args.command != "status" else _say
            rollout = Rollout(args.declaration, args.model, resolve_targets(args), on_progress=say)
            result: Any = None
            if args.command == "analyze":
                report = rollout.analyze(capture=args.capture, live=args.live)
                if args.json:
                    _console.emit_json(report)
                else:
                    _print_report(report)
                return _console.EXIT_OK if report["verdict"] == "pass" else _console.EXIT_NOT_RIGHT
            if args.command == "promote":
                report = rollout.gate(force=args.force, capture=args.capture)
                if not args.json:
                    _print_report(report)
                result = {"canary": rollout.promote(), "gate": {k: report[k] for k in ("verdict", "failed")},
                          "forced": report["verdict"] != "pass"}
            elif args.command == "start" and args.gate:
                judged = rollout.start_judged(args.part, Source(args.keras_file, args.factory, args.version),
                                              atol=args.atol, allow_contract_change=args.allow_contract_change,
                                              capture=args.capture)
                if not args.json:
                    _print_report(judged["report"])
                    _say(f"{judged['outcome']}: stable -> {args.model} version {judged['stable']}")
                else:
                    _console.emit_json(_step_json(args, rollout, judged))
                return _console.EXIT_OK if judged["outcome"] == "promoted" else _console.EXIT_NOT_RIGHT
            elif args.command == "start":
                state = rollout.start(args.part, Source(args.keras_file, args.factory, args.version), atol=args.atol,
                                      allow_contract_change=args.allow_contract_change)
                result = {"candidate": state.candidate, "part_version": state.part_version, "stable": state.stable}
            elif args.command == "status":
                status = rollout.status()
                if args.json:
                    _console.emit_json(status)
                else:
                    _print_status(status)
                return _console.EXIT_OK if status["healthy"] else _console.EXIT_NOT_RIGHT
            else:
                result = getattr(rollout, args.command)()
            if args.json:
                _console.emit_json(_step_json(args, rollout, result))
            return _console.EXIT_OK
        except GateFailedError as error:  # checked and not right (exit 1): nothing moved
            if not args.json:
                _print_report(error.report)
            raise _console.CommandError(f"{error}\nnothing was changed; stable still names {args.model} version "
                                        f"{error.report['stable']}.", _console.EXIT_NOT_RIGHT,
                                        gate=error.report) from None
        except (RolloutError, StackError, sc.ConfigError) as error:  # stopped: could not go on (exit 2), said where
            raise _console.CommandError(_stopped(args, rollout, str(error),
                                                 resumable=getattr(error, "resumable", True))) from None
        except BrokenPipeError:
            raise
        except Exception as error:  # noqa: BLE001 - an export's or a server's failure: say where it stopped
            if rollout is None:
                raise
            # an export's refusal keeps its own status (a contract change is "not right", 1, as in tfsk export)
            code = error.exit_code if isinstance(error, TfskError) else _console.EXIT_USAGE
            raise _console.CommandError(_stopped(args, rollout, f"{type(error).__name__}: {error}"), code) from None

    def interrupted() -> tuple[str, int]:
        return _stopped(args, rollout, "interrupted"), _console.EXIT_INTERRUPTED

    def quiet_body() -> int:
        # start and finish import TensorFlow (exports, pruning): its C++ start-up lines stay off the terminal
        with _console.quiet_native_stderr():
            return body()

    return _console.guarded(f"{prog} {args.command}", argv, quiet_body, interrupted)


def _stopped(args: argparse.Namespace, rollout: Any, why: str, resumable: bool = True) -> str:
    """The error line, and where the rollout stopped with what ``stable`` still serves."""
    if rollout is None or args.command == "status":
        return why
    stable = rollout.labels.get("stable")
    if not resumable:  # refused before it began: nothing to resume
        return f"{why}\nnothing was changed; stable still names {args.model} version {stable}."
    step = rollout.state.step
    return (f"{why}\nstopped while {_STEPS.get(step, step)}; stable still names {args.model} version {stable}. "
            "Fix the cause and run the same command again to resume.")
