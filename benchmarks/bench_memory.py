"""What hostile and large requests cost the devserver in memory: the real server process's
peak (VmHWM, reset before each case through /proc/PID/clear_refs) and resident memory a moment
after the answer (VmRSS), from /proc/PID/status, next to the request's and the answer's sizes.
Predict cases on the demo models; Classify/Regress cases on half_plus_two (the tests' model)
with a million or ten million small tf.Examples (``x: 1.5``, 19 bytes each on the wire).
Writes benchmarks/results/memory[-LABEL].json.

    .venv/bin/python benchmarks/bench_memory.py [--tree DIR --label before] [--cases a,b] [--baseline FILE ...]

``--tree`` serves another source tree laid out like this one (``git archive main | tar -x -C DIR``
gives the code before a change), so before and after are measured by the same script on the same
machine. A case whose expected peak does not fit in the memory available now is skipped, and
said so, rather than pushing the machine into swap or the OOM killer (so the old code's 200 MB
cases are best run alone). ``--baseline`` prints the figures of earlier runs (their JSON files,
e.g. the ``before`` ones) beside this run's, case by case.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from _common import REPO, export_demo_once, write_results  # noqa: E402

GB = 1e9
PACKAGES = ("exporter", "serving_config", "client", "devserver")
TOWERS = (("tower_a", 10), ("tower_b", 10), ("tower_c", 5))


def shadow(tree: Path) -> Path:
    """A folder where ``python -m tfsk`` imports ``tree``'s code (its four package folders as tfsk.*)."""
    root = Path(tempfile.mkdtemp(prefix="bench-memory-tree-"))
    package = root / "tfsk"
    package.mkdir()
    for entry in (tree / "tfsk").iterdir():
        (package / entry.name).symlink_to(entry)
    for name in PACKAGES:
        (package / name).symlink_to(tree / name)
    return root


def build_half_plus_two(base: Path) -> Path:
    """half_plus_two/00000123, built as the tests build it (tests/devserver/conftest.py)."""
    import importlib.util

    target = base / "half_plus_two"
    if not target.exists():
        spec = importlib.util.spec_from_file_location("half_plus", REPO / "tests" / "devserver" / "conftest.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.build_half_plus(target / "00000123", 0.5, 2.0, 3.0)
    return target


class Server:
    def __init__(self, tree: Path, base: Path, flags: list[str]) -> None:
        import grpc

        sys.path.insert(0, str(REPO / "tests"))
        from server_process import free_port

        from tfsk.devserver import start_process

        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="bench-memory-", suffix=".log", delete=False)
        config = Path(self.log.name).with_suffix(".config")
        config.write_text("model_config_list {\n" + "".join(
            f'  config {{ name: "{name}" base_path: "{base / name}" model_platform: "tensorflow" }}\n'
            for name in ("tower_a", "composed")) +
            f'  config {{ name: "default" base_path: "{build_half_plus_two(base)}" model_platform: "tensorflow" }}\n'
            "}\n")
        # `python -m` puts the working directory first on sys.path: the shadow folder decides which tfsk runs.
        # It answers once its start-up models are loaded (TF Serving opens its ports only then).
        self.server = start_process([f"--port={self.port}", f"--model_config_file={config}", *flags],
                                    log=self.log.name, cwd=shadow(tree), timeout=180)
        self.process = self.server.process
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}", options=[
            ("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)])

    def status(self, field: str) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        return 0

    def reset_peak(self) -> None:
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")

    def stop(self) -> None:
        self.channel.close()
        self.server.stop()


def available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def composed_request(rows: int, typed: bool):
    import numpy as np
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "composed"
    rng = np.random.default_rng(rows)
    for part, width in TOWERS:
        tensor = request.inputs[f"{part}__features"]
        tensor.dtype = 1
        tensor.tensor_shape.dim.add().size = rows
        tensor.tensor_shape.dim.add().size = width
        if typed:
            tensor.float_val.append(0.5)
        else:
            tensor.tensor_content = rng.standard_normal((rows, width), dtype=np.float32).tobytes()
    return request


def zeros_request():
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "tower_a"
    tensor = request.inputs["features"]
    tensor.dtype = 1
    for size in (100_000_000, 7):  # no values: 2.8 GB of zeros by TensorFlow's rule
        tensor.tensor_shape.dim.add().size = size
    return request


def examples_request(signature: str, megabytes: int) -> bytes:
    """A Classification/RegressionRequest (same fields) on ``default``, its example_list one small
    Example repeated until the request is ``megabytes`` MB: built as bytes, since a message with
    ten million Examples would take the client gigabytes."""
    from tensorflow.core.example import example_pb2
    from tensorflow_serving.apis import model_pb2

    from tfsk._base.packed import length_delimited

    example = example_pb2.Example()
    example.features.feature["x"].float_list.value.append(1.5)
    one = length_delimited(1, example.SerializeToString())  # ExampleList.examples = 1
    spec = model_pb2.ModelSpec(name="default", signature_name=signature).SerializeToString()
    examples = one * (megabytes * 1_000_000 // len(one))
    # model_spec = 1, input = 2 { example_list = 1 { examples } }
    return length_delimited(1, spec) + length_delimited(2, length_delimited(1, examples))


# name -> (method, request builder (a message or its bytes), concurrent copies, peak expected before the fix,
# for the skip rule)
CASES = {
    "zeros_40_bytes": ("Predict", zeros_request, 1, 7 * GB),
    "zeros_40_bytes_x4": ("Predict", zeros_request, 4, 26 * GB),
    "one_float_val_1M_rows": ("Predict", lambda: composed_request(1_000_000, typed=True), 1, 4 * GB),
    "valid_200MB": ("Predict", lambda: composed_request(2_000_000, typed=False), 1, 11.5 * GB),
    "regress_examples_20MB": ("Regress", lambda: examples_request("regress_x_to_y", 20), 1, 0.7 * GB),
    "classify_examples_20MB": ("Classify", lambda: examples_request("classify_x_to_y", 20), 1, 0.8 * GB),
    "regress_examples_200MB": ("Regress", lambda: examples_request("regress_x_to_y", 200), 1, 6.5 * GB),
    "classify_examples_200MB": ("Classify", lambda: examples_request("classify_x_to_y", 200), 1, 7.5 * GB),
}


def run_case(server: Server, name: str) -> dict:
    import grpc

    method, build, copies, _ = CASES[name]
    request = build()
    request = request if isinstance(request, bytes) else request.SerializeToString()
    # Bytes in, bytes out: the client parses nothing, so its own memory stays out of the way.
    call_bytes = server.channel.unary_unary(f"/tensorflow.serving.PredictionService/{method}")

    def call(_: int) -> tuple[str, int, str]:
        try:
            return "OK", len(call_bytes(request, timeout=600)), ""
        except grpc.RpcError as error:
            return error.code().name, 0, (error.details() or "")[:300]

    time.sleep(1)
    server.reset_peak()
    before = server.status("VmRSS")
    began = time.perf_counter()
    with ThreadPoolExecutor(copies) as pool:
        answers = list(pool.map(call, range(copies)))
    seconds = time.perf_counter() - began
    time.sleep(2)  # let the allocator hand back what it frees
    peak, after = server.status("VmHWM"), server.status("VmRSS")
    code, answer_bytes, message = answers[0]
    request_bytes = len(request)
    return {"method": method, "seconds": seconds, "copies": copies, "request_bytes": request_bytes, "code": code, "answer_bytes": answer_bytes,
            "message": message, "rss_before": before, "peak": peak, "rss_after": after,
            "peak_growth": peak - before, "held_after": after - before,
            "peak_growth_per_payload_byte": (peak - before) / max(request_bytes + answer_bytes, 1),
            "peak_growth_per_request_byte": (peak - before) / max(request_bytes, 1),
            "codes": [a[0] for a in answers]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=REPO, help="source tree to serve (default: this one)")
    parser.add_argument("--label", default="", help="suffix of the results file, e.g. before")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated: " + ", ".join(CASES))
    parser.add_argument("--flag", action="append", default=[], help="extra devserver flag, e.g. --flag=--max_request_tensor_bytes=0")
    parser.add_argument("--baseline", type=Path, action="append", default=[],
                        help="results JSON of another run (e.g. --label before) to print beside this one")
    args = parser.parse_args()
    import json

    baseline: dict[str, dict] = {}
    for path in args.baseline:
        baseline.update({name: entry for name, entry in json.loads(path.read_text())["cases"].items()
                         if "skipped" not in entry})

    work = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    base = export_demo_once(work / "models")
    server = Server(args.tree.resolve(), base, args.flag)
    results = {}
    try:
        idle = server.status("VmRSS")
        for name in args.cases.split(","):
            expected = CASES[name][3] if args.tree.resolve() != REPO else 0
            if expected and available() < expected + 3 * GB:
                results[name] = {"skipped": f"needs ~{expected / GB:.0f} GB, {available() / GB:.1f} GB available"}
            elif server.process.poll() is not None:
                results[name] = {"skipped": "the server had died"}
            else:
                results[name] = run_case(server, name)
                if server.process.poll() is not None:
                    results[name]["server_died"] = True
    finally:
        server.stop()
    print(f"tree {args.tree}  idle RSS {idle / GB:.2f} GB")
    print(f"{'case':<26}{'request':>11}{'answer':>11}{'code':>20}{'peak GB':>9}{'after GB':>10}{'growth/payload':>16}"
          f"{'growth/request':>16}{'seconds':>9}" + ("   | baseline: peak GB  growth/request  seconds" if baseline else ""))
    for name, entry in results.items():
        if "skipped" in entry:
            print(f"{name:<26}skipped: {entry['skipped']}")
            continue
        print(f"{name:<26}{entry['request_bytes']:>11}{entry['answer_bytes']:>11}{entry['code']:>20}"
              f"{entry['peak'] / GB:>9.2f}{entry['rss_after'] / GB:>10.2f}{entry['peak_growth_per_payload_byte']:>16.1f}"
              f"{entry['peak_growth_per_request_byte']:>16.1f}{entry['seconds']:>9.1f}", end="")
        old = baseline.get(name)
        print(f"   | {old['code']:>8} {old['peak'] / GB:>6.2f}  {old['peak_growth_per_request_byte']:>14.1f}"
              f"  {old.get('seconds', float('nan')):>7.1f}" if old else "")
    path = write_results("memory" + (f"-{args.label}" if args.label else ""),
                         {"tree": str(args.tree), "flags": args.flag, "idle_rss": idle, "cases": results})
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
