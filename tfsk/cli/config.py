"""``tfsk config``: write TF Serving's configs from tfsk.toml, validate any config, plan label moves, diff."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tfsk.serving_config import (
    CONFIG_KINDS,
    DECLARATION_FILE,
    DEFAULT_PROMETHEUS_PATH,
    BatchingSettings,
    LabelPlan,
    MonitoringSettings,
    PathMapping,
    RenderedConfig,
    ServerState,
    ValidationReport,
    diff_configs,
    format_batching_parameters,
    format_monitoring_config,
    load_declaration,
    model_batching_reports,
    plan_label_move,
    read_model_server_config,
    validate_batching_settings,
    validate_file,
    validate_model_server_config,
    validate_monitoring_settings,
    validate_serving_image,
    with_header,
    write_atomic,
    write_configs,
)

from . import _console

_ALLOW_HELP = ("validate labels as a server started with --allow_version_labels_for_unavailable_models would "
               "(new labels may name unloaded versions; moving one still may not)")


def _parser(prog: str, json_mode: bool = False) -> argparse.ArgumentParser:
    parser = _console.ArgumentParser(
        prog=prog, json_mode=json_mode, description="Write TF Serving's models.config, monitoring and batching configs from one "
                               "declaration (tfsk.toml); validate any config; plan label moves; diff configs.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do (see COMMAND --help)")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help_text, description=help_text)

    write = add("write", "write models.config (container and host paths), monitoring and batching configs "
                         "from the declaration, then validate them against the exported models")
    write.add_argument("--declaration", "-d", type=Path, default=Path(DECLARATION_FILE),
                       help=f"the declaration (default: ./{DECLARATION_FILE})")
    write.add_argument("--dry-run", action="store_true", help="say what would change; write nothing")
    _add_common(write, mapping=False)

    validate = add("validate", "validate models.config, monitoring or batching files as TF Serving would, plus "
                               "what it only fails on at run time")
    validate.add_argument("files", nargs="+", type=Path, metavar="FILE",
                          help="a models.config, monitoring or batching parameters file (text protobuf)")
    validate.add_argument("--kind", choices=CONFIG_KINDS, help="the file's kind (default: told by its first field)")
    validate.add_argument("--startup", action="store_true",
                          help="the file is a start-up config: no version is loaded yet, so labels are errors")
    validate.add_argument("--serving-image", metavar="IMAGE", help="warn about served versions exported by a newer "
                          "TensorFlow than this image runs (e.g. tensorflow/serving:2.21.0)")
    _add_common(validate)

    plan = add("plan-label", "plan moving a version label: phases of complete configs to push in order")
    plan.add_argument("file", type=Path, metavar="FILE", help="the models.config the server runs now")
    plan.add_argument("--model", required=True)
    plan.add_argument("--label", required=True)
    plan.add_argument("--version", type=int, required=True, help="the version the label should name")
    plan.add_argument("--drop-old", action="store_true",
                      help="add phase 3: drop the version the label named before from specific versions")
    plan.add_argument("--out-dir", type=Path, help="write phase-N.config files here (default: print them)")
    _add_common(plan)

    diff = add("diff", "say what reloading a server from OLD to NEW would do")
    diff.add_argument("old", type=Path, metavar="OLD", help="the models.config the server runs now")
    diff.add_argument("new", type=Path, metavar="NEW", help="the models.config it would reload")
    _add_common(diff)

    monitoring = add("monitoring", "write a monitoring config (Prometheus metrics on the REST port)")
    monitoring.add_argument("--path", default=DEFAULT_PROMETHEUS_PATH, help="metrics path (default: %(default)s)")
    monitoring.add_argument("--disable", action="store_true", help="write prometheus_config { enable: false }")
    monitoring.add_argument("--out", type=Path, help="write here (default: print)")
    monitoring.add_argument("--json", action="store_true", help="machine-readable output")

    batching = add("batching", "write batching parameters (--enable_batching --batching_parameters_file)")
    for name, kind, help_text in (
        ("max-batch-size", int, "largest batch (default 1000)"),
        ("batch-timeout-micros", int, "how long a batch waits to fill (default 0)"),
        ("max-enqueued-batches", int, "queue length in batches (default 10)"),
        ("num-batch-threads", int, "threads running batches (default: CPUs)"),
        ("thread-pool-name", str, "name of the batch thread pool"),
        ("max-execution-batch-size", int, "batch size after splitting (with --enable-large-batch-splitting)"),
    ):
        batching.add_argument(f"--{name}", type=kind, help=help_text)
    batching.add_argument("--allowed-batch-sizes", type=_int_list, default=(), metavar="N,N,...",
                          help="sizes batches are padded to, increasing, ending with max batch size")
    batching.add_argument("--enable-large-batch-splitting", action="store_true", default=None,
                          help="split requests larger than the execution batch size across batches")
    batching.add_argument("--pad-variable-length-inputs", action="store_true",
                          help="pad inputs of different lengths to batch them together")
    batching.add_argument("--out", type=Path, help="write here (default: print)")
    batching.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def _add_common(sub: argparse.ArgumentParser, mapping: bool = True) -> None:
    if mapping:
        sub.add_argument("--host-root", type=Path,
                         help="the host folder mounted in the container (with --container-root)")
        sub.add_argument("--container-root", help="where --host-root is mounted; base paths under it are checked "
                                                  "in the host folder")
        sub.add_argument("--declaration", "-d", type=Path,
                         help=f"take --host-root/--container-root from this declaration ({DECLARATION_FILE})")
    sub.add_argument("--no-disk-check", action="store_true", help="skip every check of the model folders")
    sub.add_argument("--allow-version-labels-for-unavailable-models", action="store_true", dest="allow_unavailable",
                     help=_ALLOW_HELP)
    sub.add_argument("--json", action="store_true", help="machine-readable output")


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}") from None


def _mapping(args: argparse.Namespace, parser: argparse.ArgumentParser) -> PathMapping | None:
    if (args.host_root is None) != (args.container_root is None):
        parser.error("--host-root and --container-root go together")
    if args.host_root is not None:
        if args.declaration is not None:
            parser.error("give either --declaration or --host-root/--container-root")
        return PathMapping.of(args.host_root, args.container_root)
    if args.declaration is not None:
        return load_declaration(args.declaration).mapping
    return None


def _show(path: Path | str) -> str:
    path = Path(path)
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _print_report(report: ValidationReport) -> None:
    errors, warnings = len(report.errors), len(report.warnings)
    verdict = "OK" if report.ok else "INVALID"
    print(f"{_show(report.source)}: {verdict} ({report.kind}; {errors} error(s), {warnings} warning(s))")
    for finding in report.findings:
        where = ", ".join(p for p in (f"model {finding.model!r}" if finding.model is not None else None,
                                      finding.field) if p)
        print(f"  {finding.severity.value} [{finding.code}]{' ' + where if where else ''}: {finding.message}")
        print(f"      fix: {finding.action}")
        if finding.server_message:
            print(f"      TF Serving says: {finding.server_message}")


def _flag_line(item: RenderedConfig) -> str:
    if item.kind == "model-batching":
        return "read from the version folder with --enable_batching --enable_per_model_batching_parameters"
    flag = f"{item.flag}={item.path}" if item.target == "host" else (
        f"{item.flag}={item.container_path}" if item.container_path else f"{item.flag}=<mount it yourself>")
    if item.kind == "batching":
        flag = f"--enable_batching {flag}"
    if item.kind == "monitoring":
        flag += " (metrics on --rest_api_port)"
    return flag


def _cmd_write(args: argparse.Namespace) -> int:
    declaration = load_declaration(args.declaration)
    results = write_configs(declaration, dry_run=args.dry_run)
    container = declaration.model_server_config("container")
    reports = [validate_model_server_config(container, mapping=declaration.mapping, check_disk=not args.no_disk_check,
                                            allow_version_labels_for_unavailable_models=args.allow_unavailable,
                                            source=str(declaration.outputs.models_config))]
    if declaration.monitoring is not None:
        reports.append(validate_monitoring_settings(declaration.monitoring, str(declaration.outputs.monitoring_config)))
    if declaration.batching is not None:
        reports.append(validate_batching_settings(declaration.batching, str(declaration.outputs.batching_parameters)))
    reports.extend(model_batching_reports(declaration))
    ok = all(r.ok for r in reports)
    if args.json:
        files = [{**r.to_json(), **({"text": r.text} if args.dry_run else {})} for r in results]
        print(json.dumps({"ok": ok, "dry_run": args.dry_run, "mapping": declaration.mapping.to_json(), "files": files,
                          "validation": [r.to_json() for r in reports]}, indent=2))
        return 0 if ok else 1
    for item in results:
        if args.dry_run:
            verb = "would write" if item.changed else "unchanged"
        else:
            verb = "wrote" if item.changed else "unchanged"
        print(f"{verb} {_show(item.path)}  [{item.target or item.kind}: {_flag_line(item)}]")
    print(f"mount {_show(declaration.mapping.host_root)} at {declaration.mapping.container_root} in the container")
    for report in reports:
        if report.findings:
            _print_report(report)
    return 0 if ok else 1


def _cmd_validate(args: argparse.Namespace, mapping: PathMapping | None) -> int:
    server = ServerState.startup() if args.startup else None
    reports = [validate_file(path, kind=args.kind, mapping=mapping, check_disk=not args.no_disk_check, server=server,
                             allow_version_labels_for_unavailable_models=args.allow_unavailable)
               for path in args.files]
    if args.serving_image:  # the image's TensorFlow against each served version's lineage
        reports += [validate_serving_image(read_model_server_config(r.source), args.serving_image, mapping=mapping,
                                           source=r.source) for r in reports if r.kind == "models" and r.ok]
    ok = all(r.ok for r in reports)
    if args.json:
        print(json.dumps({"ok": ok, "reports": [r.to_json() for r in reports]}, indent=2))
    else:
        for report in reports:
            _print_report(report)
    return 0 if ok else 1


def _cmd_plan(args: argparse.Namespace, mapping: PathMapping | None) -> int:
    plan = plan_label_move(read_model_server_config(args.file), args.model, args.label, args.version,
                           mapping=mapping, check_disk=not args.no_disk_check, drop_old=args.drop_old,
                           allow_version_labels_for_unavailable_models=args.allow_unavailable)
    written = {}
    if args.out_dir is not None:
        for phase in plan.phases:
            target = args.out_dir / f"phase-{phase.number}.config"
            header = (f"Phase {phase.number} of {len(plan.phases)}: {phase.title}. Written by `tfsk config "
                      f"plan-label` from {args.file.name}.\nThen: {phase.instructions}")
            write_atomic(target, with_header(header, phase.text))
            written[phase.number] = target
    if args.json:
        data = plan.to_json()
        for phase in data["phases"]:
            phase["file"] = str(written[phase["phase"]]) if phase["phase"] in written else None
        print(json.dumps(data, indent=2))
    else:
        _print_plan(plan, written)
    return 0 if plan.ok else 1


def _print_plan(plan: LabelPlan, written: dict[int, Path]) -> None:
    was = "new label" if plan.previous_version is None else f"version {plan.previous_version}"
    print(f"label {plan.label!r} of model {plan.model!r}: {was} -> version {plan.version}, "
          f"{len(plan.phases)} phase(s)")
    for note in plan.notes:
        print(f"note: {note}")
    for phase in plan.phases:
        place = f"  -> {_show(written[phase.number])}" if phase.number in written else ""
        print(f"\nphase {phase.number}: {phase.title}{place}")
        for change in phase.changes:
            print(f"  change: {change}")
        if not phase.changes:
            print("  change: none")
        print(f"  then: {phase.instructions}")
        for finding in phase.report.findings:
            print(f"  {finding}")
        if phase.number not in written:
            print("  config:")
            print("".join(f"    {line}\n" for line in phase.text.splitlines()), end="")


def _cmd_diff(args: argparse.Namespace, mapping: PathMapping | None) -> int:
    result = diff_configs(read_model_server_config(args.old), read_model_server_config(args.new), mapping=mapping,
                          check_disk=not args.no_disk_check,
                          allow_version_labels_for_unavailable_models=args.allow_unavailable)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    elif result.empty:
        print("no difference: a reload changes nothing")
    else:
        for change in result.changes:
            print(change)
    return 1 if result.refused else 0


def _emit(text: str, report: ValidationReport, out: Path | None, as_json: bool, flag: str) -> int:
    if report.ok and out is not None:
        write_atomic(out, text)
    if as_json:
        print(json.dumps({"ok": report.ok, "file": str(out) if out and report.ok else None, "text": text,
                          "validation": report.to_json()}, indent=2))
    else:
        if report.findings:
            _print_report(report)
        if report.ok and out is not None:
            print(f"wrote {_show(out)}  [{flag}={out}]")
        elif report.ok:
            print(text, end="")
    return 0 if report.ok else 1


def _cmd_monitoring(args: argparse.Namespace) -> int:
    settings = MonitoringSettings(not args.disable, args.path)
    source = str(args.out) if args.out else "<monitoring>"
    return _emit(format_monitoring_config(settings), validate_monitoring_settings(settings, source), args.out,
                 args.json, "--monitoring_config_file")


def _cmd_batching(args: argparse.Namespace) -> int:
    settings = BatchingSettings(
        max_batch_size=args.max_batch_size, batch_timeout_micros=args.batch_timeout_micros,
        max_enqueued_batches=args.max_enqueued_batches, num_batch_threads=args.num_batch_threads,
        thread_pool_name=args.thread_pool_name, enable_large_batch_splitting=args.enable_large_batch_splitting,
        max_execution_batch_size=args.max_execution_batch_size, allowed_batch_sizes=args.allowed_batch_sizes,
        pad_variable_length_inputs=args.pad_variable_length_inputs)
    source = str(args.out) if args.out else "<batching>"
    return _emit(format_batching_parameters(settings), validate_batching_settings(settings, source), args.out,
                 args.json, "--enable_batching --batching_parameters_file")


def _dispatch(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.command == "write":
        return _cmd_write(args)
    if args.command == "monitoring":
        return _cmd_monitoring(args)
    if args.command == "batching":
        return _cmd_batching(args)
    mapping = _mapping(args, parser)
    handlers: dict[str, Any] = {"validate": _cmd_validate, "plan-label": _cmd_plan, "diff": _cmd_diff}
    return int(handlers[args.command](args, mapping))


def main(argv: Sequence[str] | None = None, prog: str = "tfsk config") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser(prog, _console.wants_json(argv))
    args = parser.parse_args(argv)
    # The CLI prints what happened; library INFO lines would only repeat it.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # A ConfigError (could not run) exits 2, findings in a file exit 1 (their reports say so).
    return _console.guarded(f"{prog} {args.command}", argv, lambda: _dispatch(args, parser))
