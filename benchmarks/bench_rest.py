"""REST predict against gRPC predict on the same devserver, the same model and the same inputs.

Rounds alternate the two transports (gRPC, REST, gRPC, REST, ...) so drift on a shared machine
hits both; each figure is the median over rounds of a round's median latency, and the ratio is
REST / gRPC. A second table measures what orjson buys when the server reads a large JSON body
(the standard json module as baseline, same bytes, interleaved). Writes benchmarks/results/rest.json.

    .venv/bin/python benchmarks/bench_rest.py [--seconds 1] [--rounds 5]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from _common import export_demo_once, time_calls, write_results  # noqa: E402

BATCHES = (1, 64, 1024)


def build_inputs(batch: int):
    import numpy as np

    from tfsk.demo import DEMO_TOWERS

    rng = np.random.default_rng(batch)
    return {f"{part}__features": rng.standard_normal((batch, width)).astype(np.float32)
            for part, (width, _, _) in DEMO_TOWERS.items()}


def grpc_call(channel, inputs):
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from tfsk._base.codec import encode_tensor

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "composed"
    for alias, array in inputs.items():
        encode_tensor(array, request.inputs[alias])
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    return lambda: stub.Predict(request, timeout=60)


def rest_call(port: int, inputs):
    body = json.dumps({"inputs": {k: v.tolist() for k, v in inputs.items()}}).encode()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)  # kept alive across calls

    def call():
        connection.request("POST", "/v1/models/composed:predict", body=body,
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(payload)
        return json.loads(payload)

    return call, len(body)


def interleaved(calls: dict, rounds: int, seconds: float) -> dict[str, dict[str, float]]:
    """Median over rounds of each round's median latency (ms), the transports taking turns."""
    medians: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            samples = time_calls(call, seconds=seconds, warmup=3)
            medians[name].append(statistics.median(samples) * 1e3)
    return {name: {"median_ms": statistics.median(values), "rounds_ms": values} for name, values in medians.items()}


def json_parsers(rounds: int, seconds: float) -> dict:
    """The server's body parse: orjson (what the devserver uses) against the json module, same large body."""
    import orjson

    body = json.dumps({"inputs": {k: v.tolist() for k, v in build_inputs(4096).items()}}).encode()
    result = interleaved({"json": lambda: json.loads(body), "orjson": lambda: orjson.loads(body)}, rounds, seconds)
    result["body_bytes"] = len(body)
    result["speedup"] = result["json"]["median_ms"] / result["orjson"]["median_ms"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per transport per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from tests.server_process import ServerProcess, free_port

    base = export_demo_once(Path(tempfile.mkdtemp(prefix="bench-rest-")) / "models")
    rest_port = free_port()
    results: dict = {"seconds_per_round": args.seconds, "rounds": args.rounds, "batches": {}}
    with ServerProcess("--model_name=composed", f"--model_base_path={base / 'composed'}",
                       f"--rest_api_port={rest_port}") as server:
        time.sleep(0.5)
        print(f"{'batch':<8}{'body KiB':>10}{'gRPC ms':>10}{'REST ms':>10}{'REST/gRPC':>11}")
        for batch in BATCHES:
            inputs = build_inputs(batch)
            rest, body_bytes = rest_call(rest_port, inputs)
            measured = interleaved({"grpc": grpc_call(server.channel, inputs), "rest": rest}, args.rounds, args.seconds)
            ratio = measured["rest"]["median_ms"] / measured["grpc"]["median_ms"]
            results["batches"][str(batch)] = {**measured, "rest_body_bytes": body_bytes, "ratio_rest_vs_grpc": ratio}
            print(f"{batch:<8}{body_bytes / 1024:>10.1f}{measured['grpc']['median_ms']:>10.3f}"
                  f"{measured['rest']['median_ms']:>10.3f}{ratio:>11.2f}")
    parsers = json_parsers(args.rounds, args.seconds)
    results["json_parse"] = parsers
    print(f"parse a {parsers['body_bytes'] / 1e6:.1f} MB body: json {parsers['json']['median_ms']:.1f} ms, "
          f"orjson {parsers['orjson']['median_ms']:.1f} ms ({parsers['speedup']:.2f}x)")
    print(f"results written to {write_results('rest', results)}")


if __name__ == "__main__":
    main()
