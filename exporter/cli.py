"""``tfsk export``: export parts and composed models, list and prune versions."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Before TensorFlow is imported (inside the commands): keep its C++ start-up chatter off the terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Export Keras models as versioned SavedModels for TF Serving.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--base", required=True, type=Path, help="model base path: models live in BASE/NAME/VERSION")
        return sub

    part = add("part", "export one Keras model (a part) as the next version of BASE/NAME")
    part.add_argument("source", help="a .keras file, or a module:function factory returning a keras.Model")
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

    add("demo", "export the demo towers and the composed model (the next version of each)")

    listing = add("list", "list models, versions, signatures and lineage")
    listing.add_argument("models", nargs="*", metavar="MODEL", help="only these models (default: all)")
    listing.add_argument("--json", action="store_true", help="machine-readable output")

    prune = add("prune", "delete old versions, keeping the newest N and protected ones")
    prune.add_argument("name", metavar="MODEL")
    prune.add_argument("--keep", type=int, required=True, help="how many of the newest versions to keep (>= 1)")
    prune.add_argument("--protect", type=int, action="append", default=[], metavar="VERSION",
                       help="a version never to delete (repeat; e.g. the ones labels point at)")
    prune.add_argument("--dry-run", action="store_true", help="say what would be deleted, delete nothing")
    prune.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def _add_export_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--version", type=int, help="publish as this version (refused if it exists; default: next)")
    sub.add_argument("--examples", type=Path, metavar="FILE.npz",
                     help="example inputs (arrays named after the signature inputs): checked against the written "
                          "model and stored as TF Serving warmup requests")
    sub.add_argument("--atol", type=float, default=1e-5, help="absolute tolerance of the output check")
    sub.add_argument("--rtol", type=float, default=1e-4, help="relative tolerance of the output check")
    sub.add_argument("--json", action="store_true", help="print the result as JSON")
    sub.add_argument("--allow-contract-change", action="store_true",
                     help="publish even if signatures, keys, dtypes, shapes or the part layout differ from the "
                          "newest version's")


@contextmanager
def _progress(label: str) -> Iterator[Callable[[str], None]]:
    from tqdm import tqdm

    from tfsk.exporter import EXPORT_STEPS

    # disable=None: a bar on a terminal, silence in logs and CI.
    with tqdm(total=len(EXPORT_STEPS), desc=label, unit="step", file=sys.stderr, disable=None, leave=False) as bar:
        def on_step(step: str) -> None:
            if bar.n < bar.total and step != EXPORT_STEPS[0]:
                bar.update(1)
            bar.set_postfix_str(step)

        yield on_step
        bar.update(bar.total - bar.n)


def _load_examples(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    import numpy as np

    from tfsk.exporter import ExportError

    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as error:
        raise ExportError(f"cannot read examples from {path}: {error}; give an .npz file (numpy.savez)") from None


def _head(args: argparse.Namespace) -> Any:
    """``--head`` as given, or a HeadRef with its label resolved from --config (serving_config reads it)."""
    from tfsk import exporter, serving_config

    if args.config is None or "@" not in args.head or os.path.exists(args.head):
        return args.head
    model = args.head.partition("@")[0]
    try:
        if args.config.suffix == ".toml":
            labels = serving_config.load_declaration(args.config).model(model).label_map
        else:
            found = serving_config.find_model(serving_config.read_model_server_config(args.config), model)
            labels = dict(found.version_labels) if found is not None else {}
    except serving_config.ConfigError as error:
        raise exporter.ExportError(f"cannot read the labels of '{model}' from {args.config}: {error}") from None
    return exporter.HeadRef.parse(args.head, labels)


def _print_result(result: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"model": result.model_name, "version": result.version, "path": str(result.path),
                          "lineage": result.lineage}, indent=2))
    else:
        print(f"{result.model_name}: published version {result.version} at {result.path}")


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
            for name, spec in info.signatures.items():
                print(f"    {name}: {_describe_signature(spec)}")


def _run(args: argparse.Namespace) -> int:
    from tfsk import exporter

    if args.command == "part":
        with _progress(args.name) as on_step:
            result = exporter.export_part(
                args.source, args.base, args.name, version=args.version, input_names=args.input_names,
                output_names=args.output_names, examples=_load_examples(args.examples),
                atol=args.atol, rtol=args.rtol, allow_contract_change=args.allow_contract_change, on_step=on_step,
            )
        _print_result(result, args.json)
    elif args.command == "composed":
        with _progress(args.name) as on_step:
            result = exporter.export_composed(
                args.base, args.name, args.parts, _head(args), parts_base=args.parts_base, version=args.version,
                examples=_load_examples(args.examples), atol=args.atol, rtol=args.rtol,
                allow_contract_change=args.allow_contract_change, on_step=on_step,
            )
        _print_result(result, args.json)
    elif args.command == "demo":
        with _progress("demo") as on_step:
            results = exporter.export_demo(args.base, on_step=on_step)
        for result in results.values():
            _print_result(result, False)
    elif args.command == "list":
        models = exporter.list_models(args.base, args.models or None)
        if args.json:
            print(json.dumps([m.to_json() for m in models], indent=2))
        else:
            _print_listing(models)
    elif args.command == "prune":
        outcome = exporter.prune_versions(args.base, args.name, keep=args.keep, protect=args.protect, dry_run=args.dry_run)
        if args.json:
            print(json.dumps({"kept": outcome.kept, "removed": outcome.removed, "dry_run": outcome.dry_run}))
        else:
            verb = "would remove" if outcome.dry_run else "removed"
            print(f"{args.name}: kept {outcome.kept}; {verb} {outcome.removed or 'nothing'}")
    return 0


def main(argv: Sequence[str] | None = None, prog: str = "tfsk export") -> int:
    args = _parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("tensorflow").setLevel(logging.WARNING)
    from tfsk.exporter import ExportError

    try:
        return _run(args)
    except ExportError as error:
        print(f"tfsk export {args.command}: error: {error}", file=sys.stderr)
        return 1
