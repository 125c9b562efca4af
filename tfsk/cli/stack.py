"""``tfsk stack``: the serving stack of docker-compose.yml, on Docker or, without it, on the devserver."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import _console

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the exporter step imports TensorFlow
_ENGINES = ("auto", "docker", "devserver")


def _parser(prog: str, json_mode: bool = False) -> argparse.ArgumentParser:
    parser = _console.ArgumentParser(
        json_mode=json_mode, prog=prog, description="Bring up the serving stack of docker-compose.yml: TF Serving on a Docker engine "
                               "or, where there is none, the same serving service (same flags, paths mapped "
                               "through its volumes, ports through its published ports) on the devserver.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str, engine: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--compose-file", "-f", type=Path, default=Path("docker-compose.yml"),
                         help="the compose file (default: ./docker-compose.yml)")
        sub.add_argument("--declaration", "-d", type=Path,
                         help="the declaration (default: tfsk.toml beside the compose file)")
        if engine:
            sub.add_argument("--engine", choices=_ENGINES, default="auto",
                             help="docker, devserver, or auto: Docker when an engine answers (default)")
        return sub

    up = add("up", "export the demo if no model exists, write the configs, start serving, wait until every "
                   "model is AVAILABLE, print the endpoints")
    up.add_argument("--timeout", type=float, default=600, help="seconds to wait for the models (default 600)")
    up.add_argument("--monitoring", action="store_true", help="Docker: also start Prometheus and Grafana")
    up.add_argument("--batching", action="store_true",
                    help="server-side batching with tfsk.toml's [batching] (sets TFSK_BATCHING and "
                         "TFSK_BATCHING_PARAMETERS_FILE)")
    up.add_argument("--build", action="store_true", help="Docker: rebuild the exporter image")
    up.add_argument("--no-prepare", action="store_true",
                    help="devserver: serve what is there, without the exporter step")
    add("down", "stop the stack")
    status = add("status", "show the engine, the endpoints, and each model's versions, states and labels")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    logs = add("logs", "follow the serving log (until the server stops, or Ctrl-C)")
    logs.add_argument("--no-follow", dest="follow", action="store_false", help="print the log so far and exit")
    check = add("check", "check docker-compose.yml against tfsk.toml and the files it mounts (no engine needed)",
                engine=False)
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.add_argument("--no-disk-check", action="store_true", help="skip the checks of files and model folders")
    render = add("render", "write Kubernetes manifests (ConfigMap, Deployment, Services, PodDisruptionBudget; "
                           "kustomize layout) from tfsk.toml's [kubernetes] and the compose serving service",
                 engine=False)
    render.add_argument("platform", choices=["k8s"], help="k8s: plain Kubernetes manifests")
    render.add_argument("--out", "-o", type=Path, default=Path("k8s"), help="folder to write (default ./k8s)")
    render.add_argument("--batching", action="store_true", help="serve with tfsk.toml's [batching] (as stack up)")
    render.add_argument("--json", action="store_true", help="machine-readable output")
    build = add("build-image", "write Dockerfile.serving (FROM the pinned serving image, with the models and "
                               "configs) and build it with docker build", engine=False)
    build.add_argument("--tag", "-t", help="image tag (default: tfsk.toml's [kubernetes] image)")
    build.add_argument("--no-build", action="store_true", help="only write Dockerfile.serving")
    prepare = commands.add_parser("prepare", help="the exporter service's step: export the demo models when "
                                  "none exist, then write the configs from the declaration")
    prepare.add_argument("--declaration", "-d", type=Path, default=Path("tfsk.toml"))
    prepare.add_argument("--container", action="store_true",
                         help="run inside the exporter container: write only the configs the serving container "
                              "reads (models.host.config names host paths, which a container cannot see)")
    return parser


def _say(text: str) -> None:
    print(text, flush=True)


def _environ(args: argparse.Namespace) -> dict[str, str] | None:
    """The variables Compose sees: the environment, plus the batching switch of ``--batching``."""
    if not getattr(args, "batching", False):
        return None
    from tfsk import serving_config as sc

    declaration = sc.load_declaration(args.declaration or args.compose_file.parent / sc.DECLARATION_FILE)
    written = declaration.outputs.batching_parameters
    container = declaration.mapping.to_container(written) if written is not None else None
    if container is None:
        raise _console.CommandError("--batching needs a [batching] table in tfsk.toml (written under the model folder)")
    return {**os.environ, "TFSK_BATCHING": "true", "TFSK_BATCHING_PARAMETERS_FILE": container}


def _engine(args: argparse.Namespace, spec: Any, for_up: bool) -> Any:
    from tfsk.deploy import DevserverStack, DockerStack, docker_engine_problem

    if args.engine == "devserver":
        return DevserverStack(spec)
    if args.engine == "docker":
        problem = docker_engine_problem()
        if problem is not None:
            raise _console.CommandError(f"--engine docker: {problem}")
        return DockerStack(spec)
    devserver = DevserverStack(spec)
    if devserver.records() and (not for_up or devserver.record() is not None):
        return devserver  # also with a replica that died: status names it, down forgets it, up restarts it
    problem = docker_engine_problem()
    if problem is None:
        return DockerStack(spec)
    if for_up:
        _say(f"{problem}: running the same stack on the devserver")
    return devserver


def _prepare(declaration: Path, in_container: bool = False) -> Any:
    """The exporter service's step: the demo fills a declaration of only demo models that have no version yet."""
    from tfsk.demo import DEMO_MODELS
    from tfsk.deploy import prepare_stack

    def export_demo(base: Path) -> dict[str, int]:
        _say(f"  no model under {base} yet: exporting the demo models")
        from tfsk.demo import export_demo  # TensorFlow: only when there is something to export

        return {name: result.version for name, result in export_demo(base).items()}

    return prepare_stack(declaration, on_step=lambda line: _say(f"  {line}"), fill_missing=export_demo,
                         fillable=DEMO_MODELS, in_container=in_container)


def _cmd_prepare(args: argparse.Namespace) -> int:
    prepared = _prepare(args.declaration, in_container=args.container)
    for name, version in prepared.exported.items():
        _say(f"  exported {name} version {version}")
    for report in prepared.reports:
        for finding in report.findings:
            _say(f"  {finding}")
    return 0 if prepared.ok else 1


def _cmd_up(args: argparse.Namespace, spec: Any) -> int:
    from tfsk.deploy import DevserverStack

    engine = _engine(args, spec, for_up=True)
    if isinstance(engine, DevserverStack):
        if args.monitoring:
            _say("note: --monitoring starts Prometheus and Grafana containers, which need Docker; the devserver "
                 "serves its own metrics")
        if not args.no_prepare:
            _say("== exporter: models and configs")
            prepared = _prepare(spec.declaration.source)
            if not prepared.ok:
                for finding in (f for r in prepared.reports for f in r.findings):
                    _say(f"  {finding}")
                return 1
        _say(f"== serving on the devserver (the flags of service '{spec.serving.name}' in {spec.compose.path.name})")
        replicas = engine.up(timeout=args.timeout, on_progress=lambda line: _say(f"  {line}"))
    else:
        _say(f"== serving on Docker: docker compose -f {spec.compose.path.name}")
        profiles = ("monitoring",) if args.monitoring else ()
        replicas = [engine.up(profiles=profiles, batching=args.batching, build=args.build, timeout=args.timeout,
                              on_progress=lambda line: _say(f"  {line}"))]
    _say(f"\nthe stack is up ({engine.name}{f', {len(replicas)} replicas' if len(replicas) > 1 else ''}); "
         f"every model is AVAILABLE{' on each' if len(replicas) > 1 else ''}:")
    for number, endpoints in enumerate(replicas, 1):
        if len(replicas) > 1:
            _say(f"  replica {number}")
        for line in endpoints.lines():
            _say(f"  {'  ' if len(replicas) > 1 else ''}{line}")
    targets = ",".join(endpoints.grpc for endpoints in replicas)
    _say(f"try: tfsk status composed --target {targets}   |   tfsk stack status   |   tfsk stack down")
    return 0


def _cmd_down(args: argparse.Namespace, spec: Any) -> int:
    engine = _engine(args, spec, for_up=False)
    stopped = engine.down()
    if engine.name == "devserver":
        if not stopped:
            _say("the devserver stack is not running")
        for record, running in stopped:
            what = f"replica {record.replica}, gRPC {record.endpoints['grpc']}"
            _say(f"stopped the devserver (pid {record.pid}{f'; {what}' if len(stopped) > 1 else ''})" if running
                 else f"{what}: had already exited (pid {record.pid}); forgotten")
    else:
        _say("stopped the Docker stack")
    return 0


def _labels(spec: Any) -> dict[str, dict[str, int]]:
    from tfsk import serving_config as sc

    return {entry.name: dict(entry.version_labels) for entry in sc.model_entries(spec.served_config())}


def _cmd_status(args: argparse.Namespace, spec: Any) -> int:
    engine = _engine(args, spec, for_up=False)
    if engine.name == "devserver":
        replicas = engine.status()
        if not replicas:
            if args.json:
                print(json.dumps({"engine": "devserver", "running": False}))
            else:
                _say("the stack is not running (no devserver started by `tfsk stack up`, no Docker engine)")
            return 1  # what was checked (a running stack) is not there (maybe no models.config yet either)
        return _devserver_status(args, engine, replicas, _labels(spec))
    header, states = engine.status()
    labels = _labels(spec)
    endpoints = spec.endpoints().to_json()
    healthy = all(state.available for state in states)
    if args.json:
        print(json.dumps({"engine": engine.name, "running": True, "healthy": healthy, "endpoints": endpoints,
                          "config_error": None, "models": _models_json(states, labels)}, indent=2))
        return 0 if healthy else 1
    _say(f"engine: docker\n{header}")
    _say(f"health: {'healthy (every model has a version AVAILABLE)' if healthy else 'NOT healthy'}")
    _say_endpoints(endpoints, "  ")
    _say_models(states, labels, "  ")
    return 0 if healthy else 1


def _models_json(states: list[Any], labels: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    return [{"name": s.name, "error": s.error, "labels": labels.get(s.name, {}),
             "versions": [vars(v) for v in s.versions]} for s in states]


def _say_endpoints(endpoints: dict[str, str | None], indent: str) -> None:
    for name, value in endpoints.items():
        if value:
            _say(f"{indent}{name:<10} {value}")


def _say_models(states: list[Any], labels: dict[str, dict[str, int]], indent: str) -> None:
    for state in states:
        named = ", ".join(f"{label}->{version}" for label, version in sorted(labels.get(state.name, {}).items()))
        _say(f"{indent}model {state.name}: {state.describe()}" + (f"; labels {named}" if named else ""))


def _devserver_status(args: argparse.Namespace, engine: Any, replicas: list[Any],
                      labels: dict[str, dict[str, int]]) -> int:
    """Every replica: its pid, endpoints and models; one that exited is named with its port and log."""
    first = replicas[0][0]
    config_problem = engine.config_problem(first)  # every replica polls the same file
    healthy = config_problem is None and all(states is not None and all(s.available for s in states)
                                             for _, states in replicas)
    if args.json:
        described = [{"replica": record.replica, "pid": record.pid, "running": states is not None,
                      "log": record.log, "endpoints": record.endpoints,
                      "models": _models_json(states or [], labels)} for record, states in replicas]
        print(json.dumps({"engine": "devserver", "running": True, "healthy": healthy, "endpoints": first.endpoints,
                          "config_error": config_problem, "models": described[0]["models"],
                          "replicas": described}, indent=2))
        return 0 if healthy else 1
    several = len(replicas) > 1
    _say(f"engine: devserver ({f'{len(replicas)} replicas' if several else f'pid {first.pid}, log {first.log}'})")
    everywhere = " on every replica" if several else ""
    _say(f"health: healthy (every model has a version AVAILABLE{everywhere})" if healthy else "health: NOT healthy")
    if config_problem:
        _say(f"  config: {config_problem}")
    for record, states in replicas:
        indent = "    " if several else "  "
        if several:
            _say(f"  replica {record.replica}: " + (f"pid {record.pid}, log {record.log}" if states is not None else
                 f"EXITED (pid {record.pid}, gRPC {record.endpoints['grpc']} does not answer); its log: "
                 f"{record.log}; `tfsk stack up` starts it again"))
        elif states is None:
            _say(f"  EXITED: the devserver (pid {record.pid}, gRPC {record.endpoints['grpc']}) is not running; its "
                 f"log: {record.log}; `tfsk stack up` starts it again")
        _say_endpoints(record.endpoints, indent)
        _say_models(states or [], labels, indent)
    return 0 if healthy else 1


def _cmd_logs(args: argparse.Namespace, spec: Any) -> int:
    engine = _engine(args, spec, for_up=False)
    if engine.name == "docker":
        return int(engine.logs(args.follow))
    try:
        for line in engine.logs(args.follow):
            print(line, flush=True)
    except KeyboardInterrupt:
        pass
    return 0


def _cmd_check(args: argparse.Namespace, spec: Any) -> int:
    from tfsk.deploy import (
        check_rendered_config_map,
        check_stack,
        validate_with_compose_cli,
        validate_with_promtool,
    )

    reports = check_stack(spec.compose, spec.declaration, check_disk=not args.no_disk_check)
    rendered = check_rendered_config_map(spec)  # k8s/configmap.yaml beside tfsk.toml, as rendered, still current?
    if rendered is not None:
        reports.append(rendered)
    tools = {"compose schema": validate_with_compose_cli(spec.compose.path),
             "Prometheus config": validate_with_promtool(spec.compose)}
    ok = all(r.ok for r in reports) and all(t is None or t.ok for t in tools.values())
    if args.json:
        print(json.dumps({"ok": ok, "reports": [r.to_json() for r in reports],
                          "tools": {name: vars(t) if t else None for name, t in tools.items()}}, indent=2))
        return 0 if ok else 1
    for name, tool in tools.items():
        if tool is None:
            _say(f"{name}: not checked (docker compose / docker-compose / promtool not installed)")
            continue
        _say(f"{name} ({tool.tool}): {'OK' if tool.ok else 'INVALID'}")
        if not tool.ok:
            _say("  " + tool.output.replace("\n", "\n  "))
    for report in reports:
        _say(f"{report.source}: {'OK' if report.ok else 'INVALID'} ({len(report.errors)} error(s), "
             f"{len(report.warnings)} warning(s))")
        for finding in report.findings:
            _say(f"  {finding}")
    return 0 if ok else 1


def _cmd_render(args: argparse.Namespace, spec: Any) -> int:
    from tfsk.deploy import (
        KUBERNETES_VERSION,
        check_manifests,
        render_kubernetes,
        validate_with_kubernetes_schemas,
        write_manifests,
    )

    manifests = render_kubernetes(spec)
    report = check_manifests(manifests, spec)
    schemas = validate_with_kubernetes_schemas(manifests)
    invalid = [s for s in schemas or [] if s.error]
    ok = report.ok and not invalid
    written = write_manifests(manifests, args.out) if ok else []
    if args.json:
        print(json.dumps({"ok": ok, "written": [str(p) for p in written], "report": report.to_json(),
                          "schemas": None if schemas is None else [vars(s) for s in schemas]}, indent=2))
        return 0 if ok else 1
    for finding in report.findings:
        _say(f"  {finding}")
    for schema in invalid:
        _say(f"  {schema.kind} {schema.name}: not valid against the Kubernetes schemas: {schema.error}")
    if not ok:
        _say("nothing written: fix the above")
        return 1
    checked = "not checked against the Kubernetes schemas (pip install kubernetes-validate)" if schemas is None \
        else f"all {len(schemas)} valid against the Kubernetes {KUBERNETES_VERSION} schemas"
    settings = manifests.settings
    _say(f"wrote {len(written)} files to {args.out} ({checked}); models from: {settings.models}")
    for path in written:
        _say(f"  {path}")
    if settings.models == "image":
        _say(f"the pods run {settings.image}: build and push it with `tfsk stack build-image` and `docker push`")
    _say(f"apply: kubectl apply -k {args.out}   |   clients: dns:///{settings.name}-headless"
         f"{'.' + settings.namespace if settings.namespace else ''}:{spec.container_port('port')}")
    return 0


def _cmd_build_image(args: argparse.Namespace, spec: Any) -> int:
    from tfsk.deploy import build_serving_image, read_kubernetes_settings

    tag = args.tag or read_kubernetes_settings(spec.declaration.source).image
    image = build_serving_image(spec, tag, build=not args.no_build)
    _say(f"wrote {image.dockerfile}")
    if image.built:
        _say(f"built {image.tag}; push it where the cluster pulls from: docker push {image.tag}")
        return 0
    _say(f"not built ({image.reason}); build it where Docker runs: docker build -f {image.dockerfile.name} "
         f"-t {image.tag} .")
    return 0 if args.no_build else 2  # could not run (no Docker): the Dockerfile is written, not built


def main(argv: Sequence[str] | None = None, prog: str = "tfsk stack") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser(prog, _console.wants_json(argv)).parse_args(argv)

    def body() -> int:
        # A StackError or ConfigError exits 2 (could not run), a StackError with the server's last log
        # lines where there are some: _console.guarded.
        from tfsk.deploy import load_stack

        if args.command == "prepare":
            return _cmd_prepare(args)
        spec = load_stack(args.compose_file, args.declaration, environ=_environ(args))
        handlers = {"up": _cmd_up, "down": _cmd_down, "status": _cmd_status, "logs": _cmd_logs,
                    "check": _cmd_check, "render": _cmd_render, "build-image": _cmd_build_image}
        return int(handlers[args.command](args, spec))

    return _console.guarded(f"{prog} {args.command}", argv, body)
