"""``tfsk export``: export parts and composed models, list and prune versions.

Everything that can be checked without TensorFlow (usage, names, versions, folders) is checked
before it is imported, so mistakes are answered at once; TensorFlow's C++ logs stay hidden unless
``--verbose``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tfsk._base import layout
from tfsk._base.naming import DEFAULT_SIGNATURE, MAX_WARMUP_RECORDS

from . import _console
from ._console import EXIT_NOT_RIGHT, EXIT_OK, CommandError, Progress, emit_json, positive_int


def _parser(prog: str, json_mode: bool) -> argparse.ArgumentParser:
    parser = _console.ArgumentParser(prog=prog, json_mode=json_mode,
                                     description="Export Keras models as versioned SavedModels for TF Serving.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do (see COMMAND --help)")

    def add(name: str, help_text: str, base_help: str = "model base path: models live in BASE/NAME/VERSION"
            ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--base", required=True, type=Path, help=base_help)
        sub.add_argument("--json", action="store_true", help="machine-readable output (errors too)")
        sub.add_argument("--verbose", "-v", action="store_true", help="show library and TensorFlow log lines")
        return sub

    part = add("part", "export one Keras model (a part) as the next version of BASE/NAME")
    part.add_argument("source", metavar="SOURCE",
                      help="a .keras file, or a module:function factory returning a keras.Model")
    part.add_argument("--name", required=True, help="model name (folder and TF Serving model name)")
    part.add_argument("--input-name", action="append", dest="input_names", metavar="NAME",
                      help="signature name for each model input, in order (default: the Input names)")
    part.add_argument("--output-name", action="append", dest="output_names", metavar="NAME",
                      help="signature name for each output, in order (default: 'embedding' for one output)")
    _add_export_options(part)

    composed = add("composed", "assemble head(concat(parts)) from exported parts as the next version of BASE/NAME")
    composed.add_argument("--name", required=True, help="composed model name")
    composed.add_argument("--part", action="append", dest="parts", required=True, metavar="NAME[@VERSION|@latest]",
                          help="a part to include, in concatenation order (repeat for each part)")
    composed.add_argument("--head", required=True,
                          help="a .keras file, a module:function factory called with the concatenated width, or "
                               "NAME@VERSION|@latest|@LABEL: the head stored with that composed version under --base")
    composed.add_argument("--config", type=Path, metavar="FILE",
                          help="models.config or tfsk.toml whose labels resolve --head NAME@LABEL")
    composed.add_argument("--parts-base", type=Path, help="where the parts live (default: --base)")
    _add_export_options(composed)

    split = add("split", "split a jointly trained model at its concatenation: each tower becomes a part, and the "
                         "composed model BASE/NAME is assembled from them with the trained head")
    split.add_argument("source", metavar="SOURCE",
                       help="the trained joint model: a .keras file, or a module:function factory returning it")
    split.add_argument("--name", required=True, help="composed model name (the parts get their own names)")
    split.add_argument("--part", action="append", dest="parts", default=[], metavar="NAME=LAYER_OR_INPUTS",
                       help="name a tower: the part NAME is the tower with this layer (e.g. its nested model) or "
                            "these comma-separated inputs (default: the nested model's name, else its input names)")
    split.add_argument("--concat", dest="concatenation", metavar="LAYER",
                       help="the concatenation to split at, when several could be meant")
    split.add_argument("--input-name", action="append", dest="input_renames", default=[], metavar="OLD=NEW",
                       help="rename an input Keras named (input_layer, input_layer_1, ...) in the signatures")
    _add_export_options(split, versioned=False)

    add("demo", "export the demo towers and the composed model (the next version of each)")

    listing = add("list", "list models, versions, signatures and lineage",
                  base_help="model base path to list (must exist)")
    listing.add_argument("models", nargs="*", metavar="MODEL", help="only these models (default: all)")

    prune = add("prune", "delete old versions, keeping the newest N and protected ones",
                base_help="model base path (must exist)")
    prune.add_argument("name", metavar="MODEL", help="the model whose old versions to delete")
    prune.add_argument("--keep", type=positive_int, required=True, help="how many of the newest versions to keep (>= 1)")
    prune.add_argument("--protect", type=positive_int, action="append", default=[], metavar="VERSION",
                       help="a version never to delete (repeat; e.g. the ones labels point at)")
    prune.add_argument("--dry-run", action="store_true", help="say what would be deleted, delete nothing")
    return parser


def _add_export_options(sub: argparse.ArgumentParser, versioned: bool = True) -> None:
    if versioned:
        sub.add_argument("--version", type=positive_int,
                         help="publish as this version (refused if it exists; default: next)")
    given = sub.add_mutually_exclusive_group()
    given.add_argument("--examples", type=Path, metavar="FILE.npz",
                       help="example inputs (arrays named after the signature inputs): checked against the written "
                            "model and stored as TF Serving warmup requests")
    if versioned:  # a part or a composed model: what the client captured calls to
        given.add_argument("--warmup-from", type=Path, metavar="CAPTURE",
                           help="take the example inputs from captured traffic (a capture folder or file of the "
                                f"client's Capture): this model's successful {DEFAULT_SIGNATURE} calls, as many as TF "
                                f"Serving's {MAX_WARMUP_RECORDS} warmup records allow")
    sub.add_argument("--atol", type=float, default=1e-5, help="absolute tolerance of the output check")
    sub.add_argument("--rtol", type=float, default=1e-4, help="relative tolerance of the output check")
    sub.add_argument("--allow-contract-change", action="store_true",
                     help="publish even if signatures, keys, dtypes, shapes or the part layout differ from the "
                          "newest version's")


def _check_name(name: str, what: str) -> None:
    try:
        layout.check_model_name(name, what)
    except layout.InvalidNameError as error:
        raise CommandError(str(error)) from None


def _precheck(args: argparse.Namespace) -> None:
    """What can be refused without TensorFlow, refused before it is imported."""
    if args.command in ("part", "composed"):
        _check_name(args.name, "part name" if args.command == "part" else "model name")
        for ref in args.parts if args.command == "composed" else ():
            name, _, version = ref.partition("@")
            _check_name(name, "part name")
            if version and version != "latest" and layout.parse_version_reference(version) is None:
                raise CommandError(f"--part {ref!r}: the version after '@' must be a number (1 or more) or 'latest'")
        if args.examples is not None and not args.examples.is_file():
            raise CommandError(f"--examples {args.examples}: no such file; give an .npz file (numpy.savez)")
        if args.warmup_from is not None and not args.warmup_from.exists():
            raise CommandError(f"--warmup-from {args.warmup_from}: no such file or folder; give the folder a "
                               f"client's Capture wrote to")
    if args.command == "split":
        _check_name(args.name, "model name")
        args.parts = _pairs(args.parts, "--part", "NAME=LAYER_OR_INPUTS")
        args.input_renames = _pairs(args.input_renames, "--input-name", "OLD=NEW")
        for part in args.parts:
            _check_name(part, "part name")
        if args.examples is not None and not args.examples.is_file():
            raise CommandError(f"--examples {args.examples}: no such file; give an .npz file (numpy.savez)")
    if args.command == "prune":
        _check_name(args.name, "model name")
    if args.command in ("list", "prune") and not args.base.is_dir():
        raise CommandError(f"--base {args.base}: no such folder; give the folder the models were exported into")


def _pairs(given: Sequence[str], flag: str, form: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for text in given:
        key, sep, value = text.partition("=")
        if not sep or not key or not value:
            raise CommandError(f"{flag} {text!r}: write {form}")
        if key in pairs:
            raise CommandError(f"{flag} {key} is given twice")
        pairs[key] = value
    return pairs


def _captured_examples(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Batches of real traffic to ``args.name`` (serving_default, answered OK), as many as warmup may hold.

    A composed model's warmup runs each batch through serving_default and every part's signature.
    """
    from tfsk.client import ClientError, read_capture

    per_batch = 1 + len(getattr(args, "parts", None) or ()) if args.command == "composed" else 1
    batches, held = [], set()
    try:
        for call in read_capture(args.warmup_from):
            held.add(call.model)
            if call.model == args.name and call.status == "OK" and call.shadow_of is None \
                    and call.signature in ("", DEFAULT_SIGNATURE):
                batches.append(call.inputs)
                if len(batches) * per_batch + per_batch > MAX_WARMUP_RECORDS:
                    break
    except ClientError as error:
        raise CommandError(f"--warmup-from: {error}") from None
    if not batches:
        others = f" (it holds calls to {', '.join(sorted(held))})" if held else ""
        raise CommandError(f"--warmup-from {args.warmup_from}: no successful {DEFAULT_SIGNATURE} calls to "
                           f"{args.name}{others}")
    return batches


def _examples(args: argparse.Namespace) -> Any:
    if getattr(args, "warmup_from", None) is not None:
        return _captured_examples(args)
    return _load_examples(args.examples)


def _load_examples(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as error:
        raise CommandError(f"cannot read examples from {path}: {error}; give an .npz file (numpy.savez)") from None


def _head(args: argparse.Namespace) -> Any:
    """``--head`` as given, or a HeadRef with its label resolved from --config (serving_config reads it)."""
    from tfsk import exporter, serving_config

    if args.config is None or "@" not in args.head or os.path.exists(args.head):
        return args.head
    model = args.head.partition("@")[0]
    try:
        labels = serving_config.read_labels(args.config, model)
    except serving_config.ConfigError as error:
        raise exporter.ExportError(f"cannot read the labels of '{model}' from {args.config}: {error}") from None
    return exporter.HeadRef.parse(args.head, labels)


def _result_json(result: Any) -> dict[str, Any]:
    return {"model": result.model_name, "version": result.version, "path": str(result.path),
            "lineage": result.lineage}


def _export(args: argparse.Namespace, progress: Progress) -> int:
    from tfsk import exporter  # the slow import: TensorFlow and Keras

    names = [args.name] if args.command not in ("demo", "split") else []
    if args.command == "demo":
        from tfsk.demo import DEMO_MODEL_NAMES

        names = list(DEMO_MODEL_NAMES)
    steps = _console.ExportSteps(progress, names, len(exporter.EXPORT_STEPS))
    if args.command == "part":
        results = [exporter.export_part(
            args.source, args.base, args.name, version=args.version, input_names=args.input_names,
            output_names=args.output_names, examples=_examples(args),
            atol=args.atol, rtol=args.rtol, allow_contract_change=args.allow_contract_change, on_step=steps)]
    elif args.command == "composed":
        results = [exporter.export_composed(
            args.base, args.name, args.parts, _head(args), parts_base=args.parts_base, version=args.version,
            examples=_examples(args), atol=args.atol, rtol=args.rtol,
            allow_contract_change=args.allow_contract_change, on_step=steps)]
    elif args.command == "split":
        results = list(exporter.export_split(
            args.source, args.base, args.name, parts=args.parts, concatenation=args.concatenation,
            input_names=args.input_renames, examples=_examples(args), atol=args.atol, rtol=args.rtol,
            allow_contract_change=args.allow_contract_change, on_step=steps).values())
    else:
        from tfsk.demo import export_demo

        results = list(export_demo(args.base, on_step=steps).values())
    steps.done()
    progress.stop()
    if args.json:
        emit_json(_result_json(results[0]) if args.command not in ("demo", "split") else
                  {"ok": True, "models": [_result_json(r) for r in results]})
    else:
        for result in results:
            print(f"{result.model_name}: published version {result.version} at {result.path}")
    return EXIT_OK


def _describe_signature(spec: Any) -> str:
    inputs = ", ".join(f"{k} {v.describe()}" for k, v in spec.inputs.items())
    outputs = ", ".join(f"{k} {v.describe()}" for k, v in spec.outputs.items())
    return f"({inputs}) -> ({outputs})"


def _print_listing(models: Sequence[Any]) -> None:
    if not models:
        print("no models")
    for model in models:
        print(f"{model.name}  ({model.path})")
        if not model.versions:
            print("  no versions")
        for info in model.versions:
            lineage = info.lineage or {}
            made = lineage.get("exported_by", {})
            header = f"  version {info.version}"
            if lineage:
                header += f"  {lineage.get('kind')}  made {lineage.get('created')} with TF {made.get('tensorflow')} / Keras {made.get('keras')}"
            print(header)
            if info.problem:
                print(f"    PROBLEM: {info.problem}")
            if lineage.get("kind") == "composed":
                parts = ", ".join(f"{p['name']}@{p['version']}" for p in lineage.get("parts", []))
                head = lineage.get("head", {})
                source = head.get("source", {})
                origin = source.get("factory") or source.get("path") or source.get("class")
                print(f"    parts: {parts}; head: {source.get('type')} {origin} (width {head.get('input_width')})")
            split = (lineage.get("provenance") or {}).get("split")
            if split:
                joint = split.get("source", {})
                print(f"    split from {joint.get('path') or joint.get('factory') or joint.get('name')} "
                      f"at '{split.get('concatenation')}'")
            for name, spec in info.signatures.items():
                print(f"    {name}: {_describe_signature(spec)}")


def _list(args: argparse.Namespace) -> int:
    from tfsk import exporter

    models = exporter.list_models(args.base, args.models or None)
    missing = sorted(set(args.models) - {m.name for m in models})
    if missing:
        raise CommandError(f"no model {', '.join(map(repr, missing))} under {args.base}")
    if args.json:
        emit_json([m.to_json() for m in models])
    else:
        _print_listing(models)
    return EXIT_NOT_RIGHT if any(v.problem for m in models for v in m.versions) else EXIT_OK


def _prune(args: argparse.Namespace) -> int:
    from tfsk import exporter

    outcome = exporter.prune_versions(args.base, args.name, keep=args.keep, protect=args.protect, dry_run=args.dry_run)
    if args.json:
        emit_json({"kept": outcome.kept, "removed": outcome.removed, "dry_run": outcome.dry_run})
    else:
        verb = "would remove" if outcome.dry_run else "removed"
        print(f"{args.name}: kept {outcome.kept}; {verb} {outcome.removed or 'nothing'}")
    return EXIT_OK


def _versions_on_disk(base: Path) -> dict[str, set[int]]:
    try:
        folders = [child for child in base.iterdir() if child.is_dir()]
    except OSError:
        return {}
    return {folder.name: {v.version for v in layout.list_versions(folder) if v.complete} for folder in folders}


def _interrupted(args: argparse.Namespace) -> Callable[[], tuple[str, int]]:
    """After Ctrl-C: say what was published (read back from disk) and what was not."""
    base, before = args.base, _versions_on_disk(args.base)

    def report() -> tuple[str, int]:
        after = _versions_on_disk(base)
        published = sorted(f"{name}@{v}" for name, versions in after.items() for v in versions - before.get(name, set()))
        done = {item.partition("@")[0] for item in published}
        planned = [args.name] if args.command != "demo" else []
        if args.command == "demo":
            from tfsk.demo import DEMO_MODEL_NAMES

            planned = list(DEMO_MODEL_NAMES)
        left = [name for name in planned if name not in done]
        if not published:
            return f"interrupted; nothing was published under {base}", _console.EXIT_INTERRUPTED
        return (f"interrupted; published {', '.join(published)}"
                + (f"; not published: {', '.join(left)}" if left else "")), _console.EXIT_USAGE

    return report


def _run(args: argparse.Namespace) -> int:
    _precheck(args)
    # Before TensorFlow is imported: its C++ start-up chatter goes to a file, not the terminal.
    with _console.quiet_native_stderr(args.verbose):
        progress = Progress(f"export {args.command}",
                            enabled=not args.json and args.command in ("part", "composed", "split", "demo"))
        with progress:
            _console.setup_logging(args.verbose, progress)
            progress.note("importing TensorFlow")
            # An ExportError exits with its own code (1: not as asked, e.g. a VerificationError), an
            # OSError with 2 and what to do: tfsk.cli._console.guarded.
            if args.command == "list":
                return _list(args)
            if args.command == "prune":
                return _prune(args)
            return _export(args, progress)


def main(argv: Sequence[str] | None = None, prog: str = "tfsk export") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser(prog, _console.wants_json(argv)).parse_args(argv)
    prog = f"{prog} {args.command}"
    on_interrupt = _interrupted(args) if args.command in ("part", "composed", "split", "demo") else None
    return _console.guarded(prog, argv, lambda: _run(args), on_interrupt)
