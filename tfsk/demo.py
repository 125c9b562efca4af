"""``tfsk demo``: the main job, end to end on this machine.

Export the demo towers and the composed model, write TF Serving's configs from ``tfsk.toml``,
serve them on the devserver, and query the composed model and each of its parts over gRPC with
the client. Each step prints what it did; any failure stops the job with a non-zero status.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def _export(base: Path) -> None:
    _step(f"export the demo parts and the composed model into {base}")
    from tfsk.exporter import export_demo

    for name, result in export_demo(base).items():
        print(f"  {name}: version {result.version} at {result.path}")


def _write_configs(declaration_path: Path) -> Path:
    from tfsk import serving_config

    _step(f"write TF Serving configs from {declaration_path}")
    declaration = serving_config.load_declaration(declaration_path)
    host_config = None
    for rendered in serving_config.write_configs(declaration):
        print(f"  {rendered.kind} ({rendered.target or 'both'}): {rendered.path}")
        if rendered.kind == "models" and rendered.target == "host":
            host_config = rendered.path
        report = serving_config.validate_file(rendered.path, mapping=declaration.mapping if rendered.target == "container" else None)
        for finding in report.findings:
            print(f"    {finding}")
        report.raise_for_errors()
    assert host_config is not None
    return host_config


def _query(target: str, models: Sequence[str]) -> bool:
    from tfsk.client import Client

    _step(f"query over gRPC at {target}")
    with Client(target, timeout=30) as serving:
        for model in models:
            version = serving.wait_until_available(model, timeout=120)
            print(f"  {model}: version {version} AVAILABLE")
        signature = serving.metadata("composed").signatures["serving_default"]
        rng = np.random.default_rng(0)
        inputs = {name: rng.standard_normal((4, spec.shape[1])).astype(spec.dtype) for name, spec in signature.inputs.items()}
        result = serving.predict("composed", inputs)
        print(f"  composed@{result.version} prediction: {', '.join(f'{v:.4f}' for v in result['prediction'].ravel())}")
        for part in serving.parts("composed"):
            part_inputs = {k: inputs[f"{part.name}__{k}"] for k in part.inputs}
            inside = serving.predict("composed", part_inputs, signature=part.signature)
            alone = serving.predict(part.name, part_inputs)
            output = next(iter(part.outputs))
            print(f"  {part.name}: part {part.version} inside composed@{inside.version} via '{part.signature}', "
                  f"standalone {part.name}@{alone.version}: {output} {inside[output].shape}, "
                  f"max |difference| {np.max(np.abs(inside[output] - alone[output])):.2g}")
        report = serving.check_consistency("composed")
        verdict = "consistent" if report.consistent else "INCONSISTENT"
        print(f"  check: composed@{report.version} is {verdict} with the part versions it was built from")
        return report.consistent


def main(argv: Sequence[str] | None = None, prog: str = "tfsk demo") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--declaration", type=Path, default=Path("tfsk.toml"), help="the config declaration")
    parser.add_argument("--port", type=int, default=8500, help="gRPC port of the devserver (loopback)")
    parser.add_argument("--keep-serving", action="store_true", help="leave the devserver running at the end")
    args = parser.parse_args(argv)

    from tfsk import serving_config

    try:
        declaration = serving_config.load_declaration(args.declaration)
    except serving_config.ConfigError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 1
    _export(declaration.mapping.host_root)
    try:
        host_config = _write_configs(args.declaration)
    except serving_config.ConfigError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 1

    _step(f"serve on the devserver: tfsk serve --port={args.port} --model_config_file={host_config}")
    server = subprocess.Popen([sys.executable, "-m", "tfsk", "serve", f"--port={args.port}",
                               f"--model_config_file={host_config}", "--file_system_poll_wait_seconds=1"])
    try:
        consistent = _query(f"127.0.0.1:{args.port}", [m.name for m in declaration.models])
    except Exception as error:  # the server's own log says more; stop it either way
        print(f"{prog}: error: {error}", file=sys.stderr)
        server.terminate()
        server.wait()
        return 1
    if args.keep_serving:
        print(f"\nthe devserver keeps serving at 127.0.0.1:{args.port} (pid {server.pid}); try: "
              f"tfsk predict composed --target 127.0.0.1:{args.port} ...")
        return 0 if consistent else 1
    _step("stop the devserver")
    server.terminate()
    server.wait(timeout=30)
    print("\ndone: exported, configured, served and queried.")
    return 0 if consistent else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
