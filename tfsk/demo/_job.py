"""The main job, end to end on this machine (``tfsk demo``; its arguments: ``tfsk.cli.demo``).

Export the demo towers and the composed model (or reuse the newest complete set when nothing
changed), write TF Serving's configs from tfsk.toml, serve them on the devserver, and query the
composed model and each of its parts over gRPC with the client. Each step says what it did; a
failure stops the job with one line saying what went wrong (and the server's last log lines when
the server is the cause).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tfsk import __version__
from tfsk._base import layout
from tfsk._base.flags import format_flag
from tfsk._base.naming import DEFAULT_SIGNATURE
from tfsk._base.ports import why_port_is_taken
from tfsk.cli import (
    EXIT_NOT_RIGHT,
    CommandError,
    ExportSteps,
    Progress,
    quiet_native_stderr,
    setup_logging,
)

from ._names import COMPOSED_NAME, DEMO_MODEL_NAMES, HEAD_FACTORY

__all__ = ["DemoReport", "reusable_demo", "run_demo"]

#: The demo's composed model and head factory (TF-free names: the models themselves import Keras).
DEMO_COMPOSED = COMPOSED_NAME
DEMO_HEAD_FACTORY = HEAD_FACTORY
#: How long the served models may take to become AVAILABLE.
LOAD_TIMEOUT_SECONDS = 120
LOG_TAIL_LINES = 15


class DemoReport:
    """Human lines as the demo goes (not under --json), and the facts for --json at the end."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.facts: dict[str, Any] = {}

    def step(self, text: str) -> None:
        self.line(f"\n== {text}")

    def line(self, text: str) -> None:
        if not self.as_json:
            print(text, flush=True)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _newest(model_dir: Path) -> int | None:
    complete = [v.version for v in layout.list_versions(model_dir) if v.complete]
    return max(complete) if complete else None


def reusable_demo(base: Path) -> dict[str, int] | None:
    """The newest complete demo set under ``base``, if exporting again would only repeat it.

    The demo is seeded, so its models only change with the code that builds them: the newest
    composed version is reused when this tfsk version made it from the demo head, and every part
    version it was built from is still there and is its part's newest (so the server, which serves
    the newest, serves exactly that set). Read from the lineage files alone: no TensorFlow needed.
    """
    version = _newest(base / DEMO_COMPOSED)
    if version is None:
        return None
    lineage = _read_json(base / DEMO_COMPOSED / str(version) / layout.ASSETS_EXTRA / layout.LINEAGE_FILE) or {}
    if (lineage.get("kind") != "composed" or lineage.get("exported_by", {}).get("tfsk") != __version__
            or lineage.get("head", {}).get("source", {}).get("factory") != DEMO_HEAD_FACTORY
            or not lineage.get("parts")
            # made before every part kept its Keras model: exporter.load_composed could not load it back
            or not all(part.get("keras_sha256") for part in lineage["parts"])):
        return None
    found = {part["name"]: part["version"] for part in lineage["parts"]}
    if any(_newest(base / name) != part_version for name, part_version in found.items()):
        return None
    return {**found, DEMO_COMPOSED: version}


def _export(base: Path, fresh: bool, report: DemoReport, verbose: bool) -> None:
    reused = None if fresh else reusable_demo(base)
    if reused is not None:
        report.step(f"reuse the demo models in {base} (unchanged since they were exported; --fresh exports anew)")
        for name, version in reused.items():
            report.line(f"  {name}: version {version} at {base / name / str(version)}")
        report.facts["export"] = {"reused": True, "models": [{"model": n, "version": v, "path": str(base / n / str(v))}
                                                              for n, v in reused.items()]}
        return
    report.step(f"export the demo parts and the composed model into {base} (a new version of each)")
    with quiet_native_stderr(verbose), Progress("export demo", enabled=not report.as_json) as progress:
        setup_logging(verbose, progress)
        progress.note("importing TensorFlow")
        from tfsk import exporter

        from ._models import export_demo

        steps = ExportSteps(progress, DEMO_MODEL_NAMES, len(exporter.EXPORT_STEPS))
        try:
            results = export_demo(base, on_step=steps)
        except exporter.ExportError as error:
            raise CommandError(f"the export failed: {error}") from None
        steps.done()
    for name, result in results.items():
        report.line(f"  {name}: version {result.version} at {result.path}")
    report.facts["export"] = {"reused": False, "models": [
        {"model": name, "version": r.version, "path": str(r.path)} for name, r in results.items()]}


def _serve_as_declared(labelled: dict[str, dict[str, int]], fresh: bool, declaration_path: Path,
                       report: DemoReport) -> None:
    """tfsk.toml labels versions (a rollout wrote them): serve what it declares, export nothing.

    A new demo set would become the newest version of every part at once, on this server and on a
    running stack (the parts serve ``latest``), while the labelled composed versions were built from
    the parts the rollout chose: the standalone parts would no longer be what ``stable`` was built from.
    """
    said = "; ".join(f"{name}: {', '.join(f'{k} -> {v}' for k, v in sorted(labels.items()))}"
                     for name, labels in sorted(labelled.items()))
    if fresh:
        raise CommandError(f"{declaration_path} labels versions ({said}), as tfsk rollout writes them; a fresh demo "
                           f"set would replace the part versions they were built from on every server that serves the "
                           f"newest. Run the demo without --fresh (it serves what tfsk.toml declares), or finish the "
                           f"rollout and remove the labels and versions from tfsk.toml first")
    report.step(f"serve what {declaration_path} declares ({said}, written by tfsk rollout); no new demo set is "
                f"exported over them")
    report.facts["export"] = {"reused": True, "declared_labels": labelled, "models": []}


def _write_configs(declaration_path: Path, report: DemoReport) -> Path:
    from tfsk import serving_config

    report.step(f"write TF Serving configs from {declaration_path}")
    declaration = serving_config.load_declaration(declaration_path)
    host_config, written = None, []
    for rendered in serving_config.write_configs(declaration):
        report.line(f"  {rendered.kind} ({rendered.target or 'both'}): {rendered.path}")
        written.append({"kind": rendered.kind, "target": rendered.target, "path": str(rendered.path)})
        if rendered.kind == "models" and rendered.target == "host":
            host_config = rendered.path
        checked = serving_config.validate_file(
            rendered.path, mapping=declaration.mapping if rendered.target == "container" else None)
        for finding in checked.findings:
            report.line(f"    {finding}")
        if not checked.ok:
            raise CommandError(f"{rendered.path} is not valid: " + "; ".join(str(f) for f in checked.errors),
                               code=EXIT_NOT_RIGHT)
    report.facts["configs"] = written
    if host_config is None:
        raise CommandError(f"{declaration_path} declares no models config for the host")
    return host_config


class _Server:
    """The devserver as a child process whose output goes to a log file (never to our stdout)."""

    def __init__(self, port: int, host_config: Path, log_path: Path, detach: bool) -> None:
        from tfsk.devserver import start_process

        self.port, self.log_path = port, log_path
        # as the stack serves: labels tfsk.toml declares (a rollout's stable/canary) apply at start-up
        self.command = ["tfsk", "serve", f"--port={port}", f"--model_config_file={host_config}",
                        "--file_system_poll_wait_seconds=1",
                        format_flag("allow_version_labels_for_unavailable_models", True)]
        # detach: its own session, so it outlives us and our terminal's Ctrl-C, and holds no pipe of ours;
        # not waited for here: the query step watches it while the models load
        self.server = start_process(self.command[2:], log=log_path, detach=detach, wait=False)
        self.process = self.server.process

    def tail(self) -> str:
        return "\n".join(f"    {line}" for line in self.server.tail(LOG_TAIL_LINES).splitlines())

    def check_alive(self) -> None:
        status = self.server.poll()
        if status is not None:
            raise CommandError(f"the devserver exited (status {status}) before the demo was done; its last log "
                               f"lines ({self.log_path}):\n{self.tail()}", log=str(self.log_path))

    def stop(self) -> None:
        self.server.stop()


def _wait_available(serving: Any, server: _Server, model: str, deadline: float) -> int:
    """Wait for ``model`` while watching the server: a dead server is reported at once, not after the timeout."""
    while True:
        server.check_alive()
        left = deadline - time.monotonic()
        try:
            return int(serving.wait_until_available(model, timeout=max(0.5, min(2.0, left))))
        except TimeoutError:
            if left <= 0:
                raise CommandError(f"{model} was not AVAILABLE within {LOAD_TIMEOUT_SECONDS}s; the devserver's last "
                                   f"log lines ({server.log_path}):\n{server.tail()}") from None


def _query(server: _Server, models: Sequence[str], report: DemoReport) -> bool:
    import numpy as np

    from tfsk.client import Client, ClientError

    target = f"127.0.0.1:{server.port}"
    report.step(f"query over gRPC at {target}")
    facts: dict[str, Any] = {"available": {}, "parts": []}
    report.facts["query"] = facts
    deadline = time.monotonic() + LOAD_TIMEOUT_SECONDS
    try:
        with Client(target, timeout=30) as serving:
            for model in models:
                facts["available"][model] = version = _wait_available(serving, server, model, deadline)
                report.line(f"  {model}: version {version} AVAILABLE")
            signature = serving.metadata(DEMO_COMPOSED).signatures[DEFAULT_SIGNATURE]
            rng = np.random.default_rng(0)
            inputs = {name: rng.standard_normal((4, spec.shape[1])).astype(spec.dtype)  # type: ignore[index,arg-type]
                      for name, spec in signature.inputs.items()}
            result = serving.predict(DEMO_COMPOSED, inputs)
            facts["prediction"] = result["prediction"].ravel().tolist()
            report.line(f"  {DEMO_COMPOSED}@{result.version} prediction: "
                        f"{', '.join(f'{v:.4f}' for v in facts['prediction'])}")
            for part in serving.parts(DEMO_COMPOSED):
                part_inputs = {k: inputs[f"{part.name}__{k}"] for k in part.inputs}
                inside = serving.predict(DEMO_COMPOSED, part_inputs, signature=part.signature)
                alone = serving.predict(part.name, part_inputs)
                output = next(iter(part.outputs))
                difference = float(np.max(np.abs(inside[output] - alone[output])))
                facts["parts"].append({"part": part.name, "part_version": part.version, "signature": part.signature,
                                       "standalone_version": alone.version, "max_abs_difference": difference})
                report.line(f"  {part.name}: part {part.version} inside {DEMO_COMPOSED}@{inside.version} via "
                            f"'{part.signature}', standalone {part.name}@{alone.version}: {output} "
                            f"{inside[output].shape}, max |difference| {difference:.2g}")
            check = serving.check_consistency(DEMO_COMPOSED)
    except ClientError as error:
        server.check_alive()  # a server that died mid-query is the real story
        raise CommandError(f"querying the devserver failed: {error}") from None
    facts["consistent"] = check.consistent
    verdict = "consistent" if check.consistent else "INCONSISTENT"
    report.line(f"  check: {DEMO_COMPOSED}@{check.version} is {verdict} with the part versions it was built from")
    return bool(check.consistent)


def run_demo(declaration_path: Path, port: int, report: DemoReport, *, fresh: bool = False, keep_serving: bool = False,
             verbose: bool = False) -> bool:
    """The main job's steps, said on ``report`` as they go (its facts hold what ``--json`` prints);
    whether the composed model agrees with its parts. A step that fails raises a :class:`tfsk.TfskError`."""
    from tfsk import serving_config

    declaration = serving_config.load_declaration(declaration_path)
    taken = why_port_is_taken("127.0.0.1", port)
    if taken:
        raise CommandError(f"port {port} on 127.0.0.1 is taken ({taken}): another server is listening there - the "
                           f"stack (stop it with: tfsk stack down) or an earlier 'tfsk demo --keep-serving' (stop "
                           f"it with: kill PID, as it said); or pick another --port")
    base = declaration.mapping.host_root
    labelled = {m.name: m.label_map for m in declaration.models if m.label_map}
    if labelled:
        _serve_as_declared(labelled, fresh, declaration_path, report)
    else:
        _export(base, fresh, report, verbose)
    host_config = _write_configs(declaration_path, report)

    log_path = base / f"devserver-{port}.log"
    server = _Server(port, host_config, log_path, detach=keep_serving)
    report.step(f"serve on the devserver: {' '.join(server.command)}  (log: {log_path})")
    report.facts["server"] = {"port": port, "pid": server.process.pid, "log": str(log_path), "kept": keep_serving}
    try:
        consistent = _query(server, [m.name for m in declaration.models], report)
    except BaseException:
        server.stop()
        raise
    if keep_serving:
        report.line(f"\nthe devserver keeps serving at 127.0.0.1:{port} (pid {server.process.pid}, log "
                    f"{log_path}); try: tfsk status {DEMO_COMPOSED} --target 127.0.0.1:{port}; "
                    f"stop it with: kill {server.process.pid}")
    else:
        report.step("stop the devserver")
        server.stop()
    return consistent
