"""Predict on the demo composed model through the devserver, against two floors measured in the
same run: the same signature called in-process (no RPC at all), and a bare gRPC echo server of
the same framework (RPC, no model). Prints a table and the ratios; writes benchmarks/results/devserver.json.

    .venv/bin/python benchmarks/bench_devserver.py [--seconds 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from _common import (  # noqa: E402
    REPO,
    export_demo_once,
    latency_stats,
    time_calls,
    write_results,
)

ECHO_SERVER = """
import sys
from concurrent import futures
import grpc
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

canned = {}

class Echo(prediction_service_pb2_grpc.PredictionServiceServicer):
    def Predict(self, request, context):
        # Answer with a response as large as the real one, so only the model's work is missing.
        return canned[request.inputs["tower_a__features"].tensor_shape.dim[0].size]

for batch, path in zip((1, 256), sys.argv[2:4]):
    response = predict_pb2.PredictResponse()
    response.ParseFromString(open(path, "rb").read())
    canned[batch] = response
server = grpc.server(futures.ThreadPoolExecutor(max_workers=64), options=[("grpc.so_reuseport", 0)])
prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Echo(), server)
server.add_insecure_port("127.0.0.1:" + sys.argv[1])
server.start()
print("ready", flush=True)
server.wait_for_termination()
"""


def build_requests():
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    from tfsk.exporter.demo import DEMO_TOWERS

    requests = {}
    for batch in (1, 256):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "composed"
        rng = np.random.default_rng(batch)
        for part, (width, _, _) in DEMO_TOWERS.items():
            request.inputs[f"{part}__features"].CopyFrom(tf.make_tensor_proto(rng.standard_normal((batch, width)).astype(np.float32)))
        requests[batch] = request
    return requests


def in_process_floor(version_dir: Path, requests, seconds: float) -> dict[int, dict]:
    """The composed signature called in this process through the same session path as the server."""
    from tfsk._base.codec import decode_tensor
    from tfsk.devserver._servable import load_servable

    servable = load_servable("composed", 1, version_dir, ["serve"])
    signature = servable.signature_defs["serving_default"]
    fetches = [signature.outputs[a].name for a in sorted(signature.outputs)]
    floors = {}
    for batch, request in requests.items():
        feeds = {signature.inputs[k].name: decode_tensor(v) for k, v in request.inputs.items()}
        floors[batch] = latency_stats(time_calls(lambda feeds=feeds: servable.run(feeds, fetches), seconds=seconds))
    servable.close()
    return floors


def rpc_latency(stub, request, seconds: float) -> dict:
    return latency_stats(time_calls(lambda: stub.Predict(request, timeout=30), seconds=seconds))


def throughput(stub, request, clients: int, seconds: float) -> float:
    done = [0] * clients
    stop = threading.Event()

    def worker(index: int) -> None:
        while not stop.is_set():
            stub.Predict(request, timeout=30)
            done[index] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return sum(done) / (time.perf_counter() - start)


def measure(address: str, requests, seconds: float) -> dict:
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", -1)]) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        result = {f"latency_batch{b}": rpc_latency(stub, requests[b], seconds) for b in (1, 256)}
        result["throughput_rps"] = {str(c): throughput(stub, requests[1], c, seconds) for c in (1, 8, 32)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    args = parser.parse_args()

    from tests.server_process import ServerProcess, free_port

    work = Path(tempfile.mkdtemp(prefix="bench-devserver-"))
    base = export_demo_once(work / "models")
    requests = build_requests()
    floor = in_process_floor(base / "composed" / "1", requests, args.seconds)

    with ServerProcess("--model_name=composed", f"--model_base_path={base / 'composed'}", "--grpc_max_threads=64") as server:
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        stub = prediction_service_pb2_grpc.PredictionServiceStub(server.channel)
        canned = []
        for batch in (1, 256):
            path = work / f"response{batch}.pb"
            path.write_bytes(stub.Predict(requests[batch], timeout=30).SerializeToString())
            canned.append(str(path))
        devserver = measure(server.address, requests, args.seconds)

    echo_port = free_port()
    echo = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, str(echo_port), *canned], stdout=subprocess.PIPE,
                            cwd=REPO, env={**os.environ})
    try:
        echo.stdout.readline()
        echo_result = measure(f"127.0.0.1:{echo_port}", requests, args.seconds)
    finally:
        echo.terminate()
        echo.wait()

    print(f"{'measure':<28}{'in-process':>12}{'echo gRPC':>12}{'devserver':>12}{'dev/in-proc':>13}{'dev/echo':>10}")
    ratios = {}
    for batch in (1, 256):
        key = f"latency_batch{batch}"
        for stat in ("p50_ms", "p99_ms"):
            ours, bare, local = devserver[key][stat], echo_result[key][stat], floor[batch][stat]
            ratios[f"{key}_{stat}"] = {"vs_in_process": ours / local, "vs_echo": ours / bare}
            print(f"{f'batch {batch} {stat}':<28}{local:>12.3f}{bare:>12.3f}{ours:>12.3f}{ours / local:>13.2f}{ours / bare:>10.2f}")
    for clients, rps in devserver["throughput_rps"].items():
        bare = echo_result["throughput_rps"][clients]
        ratios[f"throughput_{clients}_clients"] = {"vs_echo": rps / bare}
        print(f"{f'throughput {clients} clients (rps)':<28}{'':>12}{bare:>12.0f}{rps:>12.0f}{'':>13}{rps / bare:>10.2f}")
    path = write_results("devserver", {"seconds_per_measure": args.seconds, "in_process": {str(k): v for k, v in floor.items()},
                                       "echo_grpc": echo_result, "devserver": devserver, "ratios": ratios})
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
