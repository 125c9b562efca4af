"""The client against the baseline users have today (``tensorflow_serving.apis`` stubs with
``tf.make_tensor_proto`` / ``tf.make_ndarray``), measured in the same run:

- encode + decode (serialized to bytes and parsed back, as on the wire) of a 64x150528 float32
  tensor and of a 256x10 batch;
- cold start: a fresh interpreter up to the first Predict answer, time and peak memory;
- end-to-end Predict latency on the demo composed model served by the devserver;
- the same Predict with the client's input check on (the default) and off, interleaved.

Prints ratios (baseline / ours: above 1 means we are faster or smaller); writes
benchmarks/results/client.json.

    .venv/bin/python benchmarks/bench_client.py [--seconds 2] [--cold-runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
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

# Peak memory is the process's own high-water mark (VmHWM): it starts afresh at exec, unlike
# ru_maxrss, which would include the benchmark process the child was forked from.
PEAK = """
print("peak-kib", next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")))
"""
OURS_COLD = """
import sys, numpy as np
from tfsk.client import Client
with Client(sys.argv[1], timeout=60) as serving:
    serving.predict("tower_c", {"features": np.ones((1, 5), np.float32)})
""" + PEAK
BASELINE_COLD = """
import sys, numpy as np, grpc
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(sys.argv[1]))
request = predict_pb2.PredictRequest()
request.model_spec.name = "tower_c"
request.inputs["features"].CopyFrom(tf.make_tensor_proto(np.ones((1, 5), np.float32)))
tf.make_ndarray(stub.Predict(request, timeout=60).outputs["embedding"])
""" + PEAK


def codec(seconds: float) -> dict:
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    from tfsk._base.messages import MESSAGES, TensorProto
    from tfsk.client import decode_tensor, encode_tensor
    from tfsk.client._wire import decode_predict_response, encode_predict_request

    spec = MESSAGES["ModelSpec"](name="m")

    def response_bytes(array):
        response = predict_pb2.PredictResponse()
        response.outputs["x"].CopyFrom(tf.make_tensor_proto(array))
        return response.SerializeToString()

    # Both sides do what a Predict call does with the tensor: array -> request bytes, and
    # response bytes -> array (the same bytes for both).
    def ours(array):
        data = response_bytes(array)
        return lambda: (encode_predict_request(spec, {"x": array}), decode_predict_response(data)[0]["x"])[1]

    def baseline(array):
        data = response_bytes(array)

        def run():
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "m"
            request.inputs["x"].CopyFrom(tf.make_tensor_proto(array))
            request.SerializeToString()
            return tf.make_ndarray(predict_pb2.PredictResponse.FromString(data).outputs["x"])

        return run

    def ours_messages(array):
        return lambda: decode_tensor(TensorProto.FromString(encode_tensor(array, TensorProto()).SerializeToString()))

    results = {}
    for label, shape in (("64x150528", (64, 150528)), ("256x10", (256, 10))):
        array = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        assert np.array_equal(ours(array)(), array) and np.array_equal(baseline(array)(), array)
        assert np.array_equal(ours_messages(array)(), array)
        mine = latency_stats(time_calls(ours(array), seconds=seconds, warmup=3))
        theirs = latency_stats(time_calls(baseline(array), seconds=seconds, warmup=3))
        messages = latency_stats(time_calls(ours_messages(array), seconds=seconds, warmup=3))
        megabytes = array.nbytes / 1e6
        results[label] = {"megabytes": megabytes, "ours": mine, "baseline": theirs, "ours_via_messages": messages,
                          "ours_mb_per_s": megabytes / (mine["p50_ms"] / 1e3),
                          "baseline_mb_per_s": megabytes / (theirs["p50_ms"] / 1e3),
                          "ours_via_messages_mb_per_s": megabytes / (messages["p50_ms"] / 1e3),
                          "speedup": theirs["p50_ms"] / mine["p50_ms"],
                          "speedup_via_messages": theirs["p50_ms"] / messages["p50_ms"]}
    return results


def cold_start(script: str, target: str, runs: int) -> dict:
    times, peaks = [], []
    for _ in range(runs):
        start = time.perf_counter()
        run = subprocess.run([sys.executable, "-c", script, target], cwd=REPO, capture_output=True, text=True,
                             env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        elapsed = time.perf_counter() - start
        if run.returncode != 0:
            raise RuntimeError(f"cold-start script failed with {run.returncode}: {run.stderr[-2000:]}")
        times.append(elapsed)
        peaks.append(int(run.stdout.split("peak-kib")[1].split()[0]) / 1024)
    return {"seconds_median": statistics.median(times), "seconds": times, "peak_mib_median": statistics.median(peaks),
            "peak_mib": peaks}


def end_to_end(address: str, seconds: float) -> dict:
    import grpc
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from tfsk.client import Client
    from tfsk.exporter.demo import DEMO_TOWERS

    results = {}
    channel = grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", -1)])
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    with Client(address) as serving:
        for batch in (1, 256):
            rng = np.random.default_rng(batch)
            inputs = {f"{p}__features": rng.standard_normal((batch, w)).astype(np.float32) for p, (w, _, _) in DEMO_TOWERS.items()}

            def baseline(inputs=inputs):
                request = predict_pb2.PredictRequest()
                request.model_spec.name = "composed"
                for name, value in inputs.items():
                    request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
                return {k: tf.make_ndarray(v) for k, v in stub.Predict(request, timeout=30).outputs.items()}

            def ours(inputs=inputs):
                return serving.predict("composed", inputs)

            assert np.allclose(baseline()["prediction"], ours()["prediction"])
            results[f"batch{batch}"] = {"ours": latency_stats(time_calls(ours, seconds=seconds)),
                                        "baseline": latency_stats(time_calls(baseline, seconds=seconds))}
    channel.close()
    return results


def input_check(address: str, seconds: float, rounds: int = 10) -> dict:
    """Predict with inputs checked against the cached signature vs sent unchecked: same server,
    alternating short runs so drift on a shared machine hits both alike."""
    import numpy as np

    from tfsk.client import Client
    from tfsk.exporter.demo import DEMO_TOWERS

    results = {}
    with Client(address) as checked, Client(address, check_inputs=False) as unchecked:
        for batch in (1, 256):
            rng = np.random.default_rng(batch)
            inputs = {f"{p}__features": rng.standard_normal((batch, w)).astype(np.float32) for p, (w, _, _) in DEMO_TOWERS.items()}
            samples: dict[str, list[float]] = {"on": [], "off": []}
            for _ in range(rounds):
                for key, serving in (("on", checked), ("off", unchecked)):
                    samples[key] += time_calls(lambda serving=serving, inputs=inputs: serving.predict("composed", inputs),
                                               seconds=seconds / rounds, warmup=2)
            on, off = latency_stats(samples["on"]), latency_stats(samples["off"])
            results[f"batch{batch}"] = {"check_on": on, "check_off": off, "p50_ratio_off_over_on": off["p50_ms"] / on["p50_ms"]}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--cold-runs", type=int, default=3, help="fresh interpreters per cold-start measurement")
    args = parser.parse_args()
    from tests.server_process import ServerProcess

    base = export_demo_once(Path(tempfile.mkdtemp(prefix="bench-client-")) / "models")
    config = base / "bench.config"
    config.write_text("model_config_list {\n" + "".join(
        f'  config {{ name: "{m}" base_path: "{base / m}" model_platform: "tensorflow" }}\n'
        for m in ("composed", "tower_c")) + "}\n")
    codec_results = codec(args.seconds)
    with ServerProcess(f"--model_config_file={config}") as server:
        cold = {"ours": cold_start(OURS_COLD, server.address, args.cold_runs),
                "baseline": cold_start(BASELINE_COLD, server.address, args.cold_runs)}
        latency = end_to_end(server.address, args.seconds)
        checks = input_check(server.address, 2 * args.seconds)

    print(f"{'measure':<40}{'baseline':>12}{'ours':>12}{'ratio':>10}")
    ratios = {}
    for label, entry in codec_results.items():
        ratios[f"codec_{label}_speedup"] = entry["speedup"]
        print(f"{f'encode+decode {label} (MB/s)':<40}{entry['baseline_mb_per_s']:>12.0f}{entry['ours_mb_per_s']:>12.0f}"
              f"{entry['speedup']:>9.2f}x")
        print(f"{'  same via message objects (MB/s)':<40}{entry['baseline_mb_per_s']:>12.0f}"
              f"{entry['ours_via_messages_mb_per_s']:>12.0f}{entry['speedup_via_messages']:>9.2f}x")
    for key, unit in (("seconds_median", "s"), ("peak_mib_median", "MiB")):
        theirs, mine = cold["baseline"][key], cold["ours"][key]
        ratios[f"cold_start_{key}_ratio"] = theirs / mine
        print(f"{f'cold start to first answer ({unit})':<40}{theirs:>12.2f}{mine:>12.2f}{theirs / mine:>9.2f}x")
    for batch, entry in latency.items():
        for stat in ("p50_ms", "p99_ms"):
            theirs, mine = entry["baseline"][stat], entry["ours"][stat]
            ratios[f"predict_{batch}_{stat}_ratio"] = theirs / mine
            print(f"{f'Predict {batch} {stat}':<40}{theirs:>12.3f}{mine:>12.3f}{theirs / mine:>9.2f}x")
    for batch, entry in checks.items():
        ratios[f"input_check_{batch}_p50_ratio"] = entry["p50_ratio_off_over_on"]
        print(f"{f'Predict {batch} p50, check off / on':<40}{entry['check_off']['p50_ms']:>12.3f}"
              f"{entry['check_on']['p50_ms']:>12.3f}{entry['p50_ratio_off_over_on']:>9.2f}x")
    targets = {"cold_start_under_0.5s": cold["ours"]["seconds_median"] < 0.5,
               "cold_start_under_100MiB": cold["ours"]["peak_mib_median"] < 100,
               "large_tensor_at_least_3x": codec_results["64x150528"]["speedup"] >= 3}
    print("targets: " + ", ".join(f"{name} {'met' if ok else 'MISSED'}" for name, ok in targets.items()))
    path = write_results("client", {"seconds_per_measure": args.seconds, "codec": codec_results, "cold_start": cold,
                                    "predict": latency, "input_check": checks, "ratios": ratios, "targets": targets})
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
