"""``tfsk predict | metadata | status | parts | check``: query TF Serving or the devserver.

Never imports TensorFlow, so it answers in a fraction of a second.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tfsk._base.naming import DEFAULT_SIGNATURE
from tfsk.client import DEFAULT_TARGET, TARGET_ENV, TLS, Client, ClientError, ModelMetadata

from . import _console

__all__ = ["add_connection_options", "check", "connect", "metadata", "parts", "predict", "status"]

_MODEL_HELP = "the model's name on the server (as in models.config)"


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", default=None,
                        help=f"server address: host:port, unix:/path, dns:///host:port, or host:port,host:port for "
                             f"round-robin (default ${TARGET_ENV}, else {DEFAULT_TARGET})")
    parser.add_argument("--timeout", type=float, default=30.0, help="deadline of each call in seconds")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--tls-ca", help="PEM file of the CA that signed the server certificate (turns TLS on)")
    parser.add_argument("--tls-cert", help="PEM file of our client certificate (mutual TLS)")
    parser.add_argument("--tls-key", help="PEM file of our client key (mutual TLS)")
    parser.add_argument("--tls-server-name", help="the host name the server certificate names, if not the target's")


def _model_choice(parser: argparse.ArgumentParser, route: bool = False) -> None:
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--version", type=int, help="ask this version")
    choice.add_argument("--label", help="ask the version this label names")
    if route:
        choice.add_argument("--route", metavar="SIDE=SHARE,...",
                            help="split between labels (or versions: digits) by share, e.g. stable=95,canary=5; "
                                 "with --key the same key always gets the same side")


def connect(args: argparse.Namespace) -> Client:
    tls = None
    if args.tls_ca or args.tls_cert:
        tls = TLS(args.tls_ca, args.tls_cert, args.tls_key, args.tls_server_name)
    targets = args.target.split(",") if args.target and "," in args.target else args.target
    # no target: the client reads $TFSK_TARGET
    return Client(targets, timeout=args.timeout, tls=tls, route=getattr(args, "route", None))


def _read_value(name: str, text: str, dtype: np.dtype | None) -> Any:
    if text.startswith("@"):
        path = Path(text[1:])
        if path.suffix not in (".npy", ".json"):
            raise ClientError(f"--input {name}={text}: give a .npy or .json file after '@'")
        try:
            return np.load(path, allow_pickle=False) if path.suffix == ".npy" else json.loads(path.read_text())
        except FileNotFoundError:
            raise ClientError(f"--input {name}={text}: no such file") from None
        except (OSError, ValueError) as error:
            raise ClientError(f"--input {name}={text}: cannot read {path}: {error}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        if dtype is None or dtype == np.dtype(object):
            hint = "quote strings, e.g. '\"abc\"', or use @file.json / @file.npy"
        else:
            hint = f"the input is {dtype}: give a number or nested lists of numbers, e.g. '[[1.5, 2]]', or @file.npy"
        raise ClientError(f"--input {name}={text!r} is not a JSON literal ({error.msg}); {hint}") from None


def _array(name: str, value: Any, dtype: np.dtype | None) -> np.ndarray:
    # JSON has no dtypes: the signature decides, as TF Serving's REST API does.
    try:
        if dtype is not None and dtype != np.dtype(object):
            return np.asarray(value, dtype=dtype)
        if dtype == np.dtype(object) or (isinstance(value, (str, list)) and np.asarray(value).dtype.kind == "U"):
            return np.asarray(value, dtype=object)
        return np.asarray(value)
    except (ValueError, TypeError, OverflowError) as error:
        wanted = f"a {dtype} tensor" if dtype is not None else "a tensor"
        reason = ("its nested lists differ in length (a tensor is rectangular)" if "sequence" in str(error)
                  else str(error))
        raise ClientError(f"--input {name}: cannot make {wanted} of {value!r:.80}: {reason}") from None


def _inputs(pairs: Sequence[str], dtypes: dict[str, np.dtype]) -> dict[str, np.ndarray]:
    inputs = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise ClientError(f"--input takes NAME=VALUE, got {pair!r}")
        if dtypes and name not in dtypes:
            raise ClientError(f"--input {name}: the signature has no input {name!r}; its inputs: {', '.join(sorted(dtypes))}")
        dtype = dtypes.get(name)
        inputs[name] = _array(name, _read_value(name, text, dtype), dtype)
    return inputs


def _jsonable(array: np.ndarray) -> Any:
    if array.dtype == np.dtype(object):
        def text(item: bytes) -> Any:
            try:
                return item.decode("utf-8")
            except UnicodeDecodeError:
                return {"b64": base64.b64encode(item).decode()}
        return np.vectorize(text, otypes=[object])(array).tolist() if array.size else array.tolist()
    if array.dtype.kind == "c":
        return [[float(v.real), float(v.imag)] for v in array.ravel()]
    return array.tolist()


def _parser(prog: str, description: str, argv: Sequence[str] | None) -> argparse.ArgumentParser:
    argv = sys.argv[1:] if argv is None else argv
    return _console.ArgumentParser(prog=prog, description=description, json_mode=_console.wants_json(argv))


def _run(command: str, parser: argparse.ArgumentParser, argv: Sequence[str] | None, action: Any) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)

    def body() -> int:
        # A ClientError exits 2 (could not run) in _console.guarded; here only what is said as it is,
        # not as an OSError's advice: a bad @file or literal, a refused target.
        try:
            with connect(args) as client:
                return int(action(client, args))
        except BrokenPipeError:
            raise  # a closed pipe ends quietly (tfsk.cli._console)
        except (OSError, ValueError) as error:  # could not run: exit 2
            raise _console.CommandError(str(error)) from None

    return _console.guarded(parser.prog, argv, body)


def predict(argv: Sequence[str] | None = None, prog: str = "tfsk predict") -> int:
    parser = _parser(prog, "Run a signature of a model on the inputs given.", argv)
    parser.add_argument("model", help=_MODEL_HELP)
    parser.add_argument("--input", "-i", action="append", default=[], metavar="NAME=VALUE",
                        help="an input: a JSON literal, @file.npy or @file.json (repeat for each input)")
    _model_choice(parser, route=True)
    parser.add_argument("--key", help="with --route: the key (a user id, say) that picks the side, the same in every run")
    parser.add_argument("--signature", help=f"signature name (default {DEFAULT_SIGNATURE})")
    parser.add_argument("--output", action="append", metavar="NAME", help="only these outputs (repeat)")
    add_connection_options(parser)

    def action(client: Client, args: argparse.Namespace) -> int:
        dtypes = {}
        try:
            signatures = client.metadata(args.model, version=args.version, label=args.label).signatures
            signature = signatures.get(args.signature or DEFAULT_SIGNATURE)
            dtypes = {k: v.dtype for k, v in signature.inputs.items()} if signature else {}
        except ClientError:
            pass  # the Predict call below reports what is wrong
        if args.key is not None and args.route is None:
            raise _console.CommandError("--key picks a side of --route: give --route too, e.g. --route stable=95,canary=5")
        result = client.predict(args.model, _inputs(args.input, dtypes), version=args.version, label=args.label,
                                signature=args.signature, output_filter=args.output, key=args.key)
        side = next((n for n, s in client.route_stats().items() if s.calls), None) if args.route else None
        if args.json:
            print(json.dumps({"model": result.model, "version": result.version, "signature": result.signature,
                              **({"side": side} if side else {}),
                              "outputs": {k: {"dtype": str(v.dtype) if v.dtype != object else "string",
                                              "shape": list(v.shape), "values": _jsonable(v)}
                                          for k, v in sorted(result.items())}}))
        else:
            print(f"{result.model} version {result.version}, signature {result.signature}"
                  + (f" (route side {side})" if side else ""))
            for name, value in sorted(result.items()):
                kind = "string" if value.dtype == object else str(value.dtype)
                body = np.array2string(value, threshold=40, edgeitems=3, precision=6)
                print(f"  {name}  {kind}{list(value.shape)}\n    " + body.replace("\n", "\n    "))
        return 0

    return _run("predict", parser, argv, action)


def _metadata_json(meta: ModelMetadata) -> dict[str, Any]:
    def tensors(specs: dict[str, Any]) -> dict[str, Any]:
        return {k: {"dtype": "string" if v.dtype == object else str(v.dtype),
                    "shape": None if v.shape is None else list(v.shape)} for k, v in specs.items()}

    return {"model": meta.name, "version": meta.version, "signatures": {
        name: {"method": s.method, "inputs": tensors(s.inputs), "outputs": tensors(s.outputs)}
        for name, s in meta.signatures.items()}}


def metadata(argv: Sequence[str] | None = None, prog: str = "tfsk metadata") -> int:
    parser = _parser(prog, "Show a model's signatures (GetModelMetadata).", argv)
    parser.add_argument("model", help=_MODEL_HELP)
    _model_choice(parser)
    add_connection_options(parser)

    def action(client: Client, args: argparse.Namespace) -> int:
        meta = client.metadata(args.model, version=args.version, label=args.label)
        if args.json:
            print(json.dumps(_metadata_json(meta)))
            return 0
        print(f"{meta.name} version {meta.version}")
        for name, signature in meta.signatures.items():
            print(f"  {name}  ({signature.method})")
            for side, specs in (("in ", signature.inputs), ("out", signature.outputs)):
                for key, spec in specs.items():
                    print(f"    {side} {key:<28} {spec.describe()}")
        return 0

    return _run("metadata", parser, argv, action)


def status(argv: Sequence[str] | None = None, prog: str = "tfsk status") -> int:
    parser = _parser(prog, "Show the state of a model's versions (GetModelStatus).", argv)
    parser.add_argument("model", help=_MODEL_HELP)
    parser.add_argument("--version", type=int, help="only this version")
    add_connection_options(parser)

    def table(versions: list[Any]) -> None:
        from ._console import print_table

        rows = [(entry.version, entry.state, entry.error_code + (f": {entry.error_message}" if entry.error_message else ""))
                for entry in versions]
        print_table(("VERSION", "STATE", "STATUS"), rows,
                    [f"{'VERSION':>8}  {'STATE':<10}  STATUS"] + [f"{v:>8}  {state:<10}  {d}" for v, state, d in rows])

    def action(client: Client, args: argparse.Namespace) -> int:
        replicas = client.replicas()
        if len(replicas) == 1:
            versions = client.status(args.model, version=args.version)
            if args.json:
                print(json.dumps([vars(v) for v in versions]))
            else:
                table(versions)
            return 0
        # Several servers (a,b,c or a dns:/// name with several addresses): each one's own answer.
        answers: dict[str, Any] = {}
        for address in replicas:
            try:
                answers[address] = client.replica(address).status(args.model, version=args.version)
            except ClientError as error:
                answers[address] = error
        failed = sum(isinstance(a, ClientError) for a in answers.values())
        if args.json:
            print(json.dumps({"replicas": {a: {"error": str(v)} if isinstance(v, ClientError) else [vars(e) for e in v]
                                           for a, v in answers.items()}}))
        else:
            for index, (address, answer) in enumerate(answers.items()):
                print(("\n" if index else "") + f"replica {address}")
                if isinstance(answer, ClientError):
                    print(f"  error: {answer}")
                else:
                    table(answer)
        return 1 if failed else 0

    return _run("status", parser, argv, action)


def parts(argv: Sequence[str] | None = None, prog: str = "tfsk parts") -> int:
    parser = _parser(prog, "List a composed model's parts and the part versions it holds.", argv)
    parser.add_argument("model", help="the composed model's name on the server")
    _model_choice(parser)
    add_connection_options(parser)

    def action(client: Client, args: argparse.Namespace) -> int:
        found = client.parts(args.model, version=args.version, label=args.label)
        if args.json:
            print(json.dumps([{"name": p.name, "signature": p.signature, "version": p.version,
                               "inputs": {k: v.describe() for k, v in p.inputs.items()},
                               "outputs": {k: v.describe() for k, v in p.outputs.items()}} for p in found]))
            return 0
        if not found:
            print(f"{args.model} has no part signatures (part_<name>): it is not a composed model")
            return 0
        from ._console import print_table

        rows = [(part.name, str(part.version or "?"), part.signature,
                 ", ".join(f"{k} {v.describe()}" for k, v in part.inputs.items()),
                 ", ".join(f"{k} {v.describe()}" for k, v in part.outputs.items())) for part in found]
        print_table(("PART", "VERSION", "SIGNATURE", "INPUTS", "OUTPUTS"), rows,
                    [f"{'PART':<16} {'VERSION':>7}  {'SIGNATURE':<20} INPUTS -> OUTPUTS"]
                    + [f"{name:<16} {version:>7}  {signature:<20} {ins} -> {outs}" for name, version, signature, ins, outs in rows])
        return 0

    return _run("parts", parser, argv, action)


_CHECK_EXIT = {"consistent": 0, "differs": 1, "could_not_compare": 2, "not_composed": 2}
_CHECK_SAYS = {"consistent": "consistent", "differs": "DIFFERS", "could_not_compare": "COULD NOT COMPARE",
               "not_composed": "NOT A COMPOSED MODEL"}


def check(argv: Sequence[str] | None = None, prog: str = "tfsk check") -> int:
    parser = _parser(prog, "Check that a composed model's parts agree with the standalone part versions it was "
                     "built from. Exit status, as diff(1): 0 consistent, 1 a part differs, 2 could not tell (a part "
                     "or the server could not be asked, or the model is not a composed model).", argv)
    parser.add_argument("model", help="the composed model's name on the server")
    _model_choice(parser)
    parser.add_argument("--input", "-i", action="append", default=[], metavar="NAME=VALUE",
                        help="inputs to use (default: made up from the signature)")
    parser.add_argument("--atol", type=float, default=1e-5, help="largest absolute difference accepted")
    add_connection_options(parser)

    def action(client: Client, args: argparse.Namespace) -> int:
        inputs = None
        if args.input:
            signature = client.metadata(args.model, version=args.version, label=args.label).signatures[DEFAULT_SIGNATURE]
            inputs = _inputs(args.input, {k: v.dtype for k, v in signature.inputs.items()})
        report = client.check_consistency(args.model, inputs, version=args.version, label=args.label, atol=args.atol)
        return _print_check(report, args.json)

    return _run("check", parser, argv, action)  # could not run (no server, ...): exit 2, could not tell


def _print_check(report: Any, as_json: bool) -> int:
    verdict = report.verdict
    if as_json:
        print(json.dumps({"model": report.model, "version": report.version, "verdict": verdict,
                          "consistent": report.consistent, "tolerance": report.tolerance,
                          "parts": [{**vars(p), "consistent": p.consistent, "max_abs_difference": {  # JSON has no inf
                              k: d if math.isfinite(d) else None for k, d in p.max_abs_difference.items()}}
                                    for p in report.parts]}))
    elif verdict == "not_composed":
        print(f"{report.model} version {report.version}: {_CHECK_SAYS[verdict]} (no part_<name> signatures): "
              f"nothing to compare")
    else:
        print(f"{report.model} version {report.version}: {_CHECK_SAYS[verdict]}")
        for part in report.parts:
            print(f"  {part.name}@{part.version}: {'ok' if part.consistent else _CHECK_SAYS[part.verdict]}")
            for what, difference in part.max_abs_difference.items():
                print(f"    {what}: max abs difference {difference:.3g}")
            if part.problem:
                print(f"    problem: {part.problem}")
    return _CHECK_EXIT[verdict]
