"""The client against two baselines measured in the same run: what most users write today
(``tensorflow_serving.apis`` stubs with ``tf.make_tensor_proto`` / ``tf.make_ndarray``), and a
careful user who fills ``tensor_content`` with ``tobytes()`` and reads answers with
``np.frombuffer`` (or ``np.array`` of the typed field):

- encode + decode (array -> request bytes, answer bytes -> array) at 256x10, 1024x1000 and
  64x150528, float32 / int64 / string, with the answer in TF Serving's default form (typed
  ``*_val``) and as ``tensor_content``; contenders interleaved within each of ``--repeats``
  rounds, ratios per round reported as median (min-max);
- cold start: a fresh interpreter up to the first Predict answer, time and peak memory;
- end-to-end Predict latency on the demo composed model served by the devserver;
- the same Predict with the client's input check on (the default) and off, interleaved.

Prints ratios (baseline / ours: above 1 means we are faster or smaller); writes
benchmarks/results/client.json.

    .venv/bin/python benchmarks/bench_client.py [--seconds 2] [--cold-runs 3] [--repeats 5] [--codec-only]
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
    spread,
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


CODEC_CASES = (("256x10", (256, 10), "float32"), ("256x10", (256, 10), "int64"), ("256x10", (256, 10), "string"),
               ("1024x1000", (1024, 1000), "float32"), ("1024x1000", (1024, 1000), "int64"),
               ("64x150528", (64, 150528), "float32"))


def _codec_array(shape, kind):
    import numpy as np

    rng = np.random.default_rng(0)
    if kind == "string":
        return np.array([b"item-%d" % i for i in range(int(np.prod(shape)))], dtype=object).reshape(shape)
    if kind == "int64":
        return rng.integers(-(1 << 40), 1 << 40, shape, dtype=np.int64)
    return rng.standard_normal(shape).astype(np.float32)


def codec_contenders(array, answer: bytes):
    """What a Predict does with a tensor, three ways: array -> request bytes, and the server's
    answer bytes -> array (the same bytes for all three)."""
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    from tfsk._base.messages import MESSAGES
    from tfsk.client._wire import decode_predict_response, encode_predict_request

    spec = MESSAGES["ModelSpec"](name="m")
    fields = {1: "float_val", 9: "int64_val", 7: "string_val"}
    read_as = {1: np.float32, 9: np.int64, 7: object}

    def ours():
        encode_predict_request(spec, {"x": array})
        return decode_predict_response(answer)[0]["x"]

    def careful():
        # A user who knows the format: tensor_content from tobytes(), and back with frombuffer.
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "m"
        tensor = request.inputs["x"]
        for size in array.shape:
            tensor.tensor_shape.dim.add().size = size
        if array.dtype == object:
            tensor.dtype = 7
            tensor.string_val.extend(array.ravel().tolist())
        else:
            tensor.dtype = 1 if array.dtype == np.float32 else 9
            tensor.tensor_content = array.tobytes()
        request.SerializeToString()
        out = predict_pb2.PredictResponse.FromString(answer).outputs["x"]
        shape = [d.size for d in out.tensor_shape.dim]
        if out.tensor_content:
            return np.frombuffer(out.tensor_content, dtype=read_as[out.dtype]).reshape(shape)
        return np.array(getattr(out, fields[out.dtype]), dtype=read_as[out.dtype]).reshape(shape)

    def make_tensor_proto():
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "m"
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(array))
        request.SerializeToString()
        return tf.make_ndarray(predict_pb2.PredictResponse.FromString(answer).outputs["x"])

    return {"ours": ours, "careful": careful, "make_tensor_proto": make_tensor_proto}


def _answers(array) -> dict[str, bytes]:
    """The answer in TF Serving's default form (typed ``*_val``) and as ``tensor_content``."""
    from tensorflow_serving.apis import predict_pb2

    from tfsk._base.codec import encode_as_fields, encode_tensor

    answers = {}
    for form, encode in (("typed", encode_as_fields), ("tensor_content", encode_tensor)):
        response = predict_pb2.PredictResponse()
        encode(array, response.outputs["x"])
        answers[form] = response.SerializeToString()
    if array.dtype == object:
        del answers["tensor_content"]  # TF Serving sends strings as string_val in both modes
    return answers


def codec(seconds: float, repeats: int) -> dict:
    """Each contender timed in turn within a round (order rotating), ``repeats`` rounds; the
    ratios are per round, reported as median and spread."""
    import numpy as np

    results = {}
    for size, shape, kind in CODEC_CASES:
        array = _codec_array(shape, kind)
        for form, answer in _answers(array).items():
            contenders = codec_contenders(array, answer)
            for name, run in contenders.items():
                assert np.array_equal(run(), array), name
            rounds = []
            for repeat in range(repeats):
                names = list(contenders)
                names = names[repeat % len(names):] + names[: repeat % len(names)]
                rounds.append({name: latency_stats(time_calls(contenders[name], seconds=seconds / len(names),
                                                              warmup=2, max_calls=20_000))["p50_ms"] for name in names})
            label = f"{size} {kind} {form}"
            results[label] = {
                "megabytes": array.nbytes / 1e6 if array.dtype != object else None, "rounds": rounds,
                "careful_over_ours": spread([r["careful"] / r["ours"] for r in rounds]),
                "make_tensor_proto_over_ours": spread([r["make_tensor_proto"] / r["ours"] for r in rounds]),
                "ours_p50_ms": statistics.median(r["ours"] for r in rounds),
            }
            print(f"codec {label}: done", flush=True)
    return results


def codec_targets(results: dict) -> dict[str, bool]:
    return {"codec_at_least_1x_careful": all(e["careful_over_ours"]["median"] >= 1.0 for e in results.values()),
            "codec_at_least_3x_make_tensor_proto": all(e["make_tensor_proto_over_ours"]["median"] >= 3
                                                       for e in results.values())}


def report_codec(results: dict) -> None:
    print(f"{'encode+decode (ratio = theirs / ours)':<40}{'ours p50 ms':>12}{'careful':>20}{'make_tensor_proto':>20}")
    for label, entry in results.items():
        cells = [f"{entry[k]['median']:.2f} ({entry[k]['min']:.2f}-{entry[k]['max']:.2f})"
                 for k in ("careful_over_ours", "make_tensor_proto_over_ours")]
        print(f"{label:<40}{entry['ours_p50_ms']:>12.3f}{cells[0]:>20}{cells[1]:>20}")
    print("codec targets: " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in codec_targets(results).items()))


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
    from tfsk.demo import DEMO_TOWERS

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
    from tfsk.demo import DEMO_TOWERS

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
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds of the codec measurements")
    parser.add_argument("--codec-only", action="store_true", help="only the encode+decode measurements")
    args = parser.parse_args()
    from tests.server_process import ServerProcess

    base = export_demo_once(Path(tempfile.mkdtemp(prefix="bench-client-")) / "models")
    config = base / "bench.config"
    config.write_text("model_config_list {\n" + "".join(
        f'  config {{ name: "{m}" base_path: "{base / m}" model_platform: "tensorflow" }}\n'
        for m in ("composed", "tower_c")) + "}\n")
    codec_results = codec(args.seconds, args.repeats)
    if args.codec_only:
        report_codec(codec_results)
        write_results("client_codec", {"seconds_per_measure": args.seconds, "repeats": args.repeats,
                                        "load_average": os.getloadavg(), "codec": codec_results})
        return
    with ServerProcess(f"--model_config_file={config}") as server:
        cold = {"ours": cold_start(OURS_COLD, server.address, args.cold_runs),
                "baseline": cold_start(BASELINE_COLD, server.address, args.cold_runs)}
        latency = end_to_end(server.address, args.seconds)
        checks = input_check(server.address, 2 * args.seconds)

    report_codec(codec_results)
    ratios = {}
    print(f"{'measure':<40}{'baseline':>12}{'ours':>12}{'ratio':>10}")
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
               **codec_targets(codec_results)}
    print("targets: " + ", ".join(f"{name} {'met' if ok else 'MISSED'}" for name, ok in targets.items()))
    path = write_results("client", {"seconds_per_measure": args.seconds, "codec": codec_results, "cold_start": cold,
                                    "predict": latency, "input_check": checks, "ratios": ratios, "targets": targets})
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
