"""What hostile and large Predict requests cost the devserver in memory: the real server process's
peak (VmHWM, reset before each case through /proc/PID/clear_refs) and resident memory a moment
after the answer (VmRSS), from /proc/PID/status, next to the request's and the answer's sizes.
Writes benchmarks/results/memory[-LABEL].json.

    .venv/bin/python benchmarks/bench_memory.py [--tree DIR --label before] [--cases a,b]

``--tree`` serves another source tree laid out like this one (``git archive main | tar -x -C DIR``
gives the code before a change), so before and after are measured by the same script on the same
machine. A case whose expected peak does not fit in the memory available now is skipped, and
said so, rather than pushing the machine into swap or the OOM killer.
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
            for name in ("tower_a", "composed")) + "}\n")
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


# name -> (request builder, concurrent copies, peak expected before the fix, for the skip rule)
CASES = {
    "zeros_40_bytes": (zeros_request, 1, 7 * GB),
    "zeros_40_bytes_x4": (zeros_request, 4, 26 * GB),
    "one_float_val_1M_rows": (lambda: composed_request(1_000_000, typed=True), 1, 4 * GB),
    "valid_200MB": (lambda: composed_request(2_000_000, typed=False), 1, 11.5 * GB),
}


def run_case(server: Server, name: str) -> dict:
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    build, copies, _ = CASES[name]
    request = build()
    stub = prediction_service_pb2_grpc.PredictionServiceStub(server.channel)

    def call(_: int) -> tuple[str, int, str]:
        try:
            return "OK", stub.Predict(request, timeout=600).ByteSize(), ""
        except grpc.RpcError as error:
            return error.code().name, 0, (error.details() or "")[:300]

    time.sleep(1)
    server.reset_peak()
    before = server.status("VmRSS")
    with ThreadPoolExecutor(copies) as pool:
        answers = list(pool.map(call, range(copies)))
    time.sleep(2)  # let the allocator hand back what it frees
    peak, after = server.status("VmHWM"), server.status("VmRSS")
    code, answer_bytes, message = answers[0]
    request_bytes = request.ByteSize()
    return {"copies": copies, "request_bytes": request_bytes, "code": code, "answer_bytes": answer_bytes,
            "message": message, "rss_before": before, "peak": peak, "rss_after": after,
            "peak_growth": peak - before, "held_after": after - before,
            "peak_growth_per_payload_byte": (peak - before) / max(request_bytes + answer_bytes, 1),
            "codes": [a[0] for a in answers]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=REPO, help="source tree to serve (default: this one)")
    parser.add_argument("--label", default="", help="suffix of the results file, e.g. before")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated: " + ", ".join(CASES))
    parser.add_argument("--flag", action="append", default=[], help="extra devserver flag, e.g. --flag=--max_request_tensor_bytes=0")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    base = export_demo_once(work / "models")
    server = Server(args.tree.resolve(), base, args.flag)
    results = {}
    try:
        idle = server.status("VmRSS")
        for name in args.cases.split(","):
            expected = CASES[name][2] if args.tree.resolve() != REPO else 0
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
    print(f"{'case':<24}{'request':>11}{'answer':>11}{'code':>20}{'peak GB':>9}{'after GB':>10}{'growth/payload':>16}")
    for name, entry in results.items():
        if "skipped" in entry:
            print(f"{name:<24}skipped: {entry['skipped']}")
            continue
        print(f"{name:<24}{entry['request_bytes']:>11}{entry['answer_bytes']:>11}{entry['code']:>20}"
              f"{entry['peak'] / GB:>9.2f}{entry['rss_after'] / GB:>10.2f}{entry['peak_growth_per_payload_byte']:>16.1f}")
    path = write_results("memory" + (f"-{args.label}" if args.label else ""),
                         {"tree": str(args.tree), "flags": args.flag, "idle_rss": idle, "cases": results})
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
