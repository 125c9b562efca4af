"""The devserver against floors measured in the same run, interleaved and repeated:

- small Predicts on the demo composed model (batch 1 and 256 latency; throughput at 1, 8 and 32
  clients) against a bare gRPC-Python echo server of the same framework (it parses the request
  and answers a canned response as large as the devserver's: RPC, no model);
- large tensors (64x150528 float32) through an identity and a reducing model with the project's
  client, the devserver answering in its default typed ``float_val`` form and with
  ``--enable_serialization_as_tensor_content``, against the raw-bytes gRPC floor (the same
  request bytes sent, the devserver's answer bytes returned, nothing encoded or decoded).

Each repeat measures every case on the devserver and on its floor back to back (order
alternating), so drift on a shared machine hits both alike; ratios are computed per repeat and
reported as median and spread (min..max) over the repeats. Writes benchmarks/results/devserver.json.

    .venv/bin/python benchmarks/bench_devserver.py [--seconds 1] [--repeats 5] [--large-calls 4]
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
    run_clients,
    spread,
    time_calls,
    write_results,
)

from tfsk._base.naming import DEFAULT_SIGNATURE  # noqa: E402

ECHO_SERVER = """
import sys
from concurrent import futures
import grpc
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

canned, raw = {}, {}

class Echo(prediction_service_pb2_grpc.PredictionServiceServicer):
    def Predict(self, request, context):
        # Answer with a response as large as the real one, so only the model's work is missing.
        return canned[request.inputs["tower_a__features"].tensor_shape.dim[0].size]

def raw_echo(request, context):  # bytes in, the canned answer's bytes out: the transport alone
    return raw[len(request)]

for path in sys.argv[2:]:
    data = open(path, "rb").read()
    kind, key = path.rsplit("/", 1)[1].split("-")[:2]
    if kind == "small":
        canned[int(key)] = predict_pb2.PredictResponse.FromString(data)
    else:
        raw[int(key)] = data
server = grpc.server(futures.ThreadPoolExecutor(max_workers=64), options=[
    ("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)])
prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Echo(), server)
server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("bench.Raw", {"Echo": grpc.unary_unary_rpc_method_handler(raw_echo)})])
server.add_insecure_port("127.0.0.1:" + sys.argv[1])
server.start()
print("ready", flush=True)
server.wait_for_termination()
"""
LARGE = (64, 150528)


def build_requests():
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    from tfsk.demo import DEMO_TOWERS

    requests = {}
    for batch in (1, 256):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "composed"
        rng = np.random.default_rng(batch)
        for part, (width, _, _) in DEMO_TOWERS.items():
            request.inputs[f"{part}__features"].CopyFrom(tf.make_tensor_proto(rng.standard_normal((batch, width)).astype(np.float32)))
        requests[batch] = request
    return requests


def build_large_models(base: Path) -> None:
    """``identity`` (x -> x) and ``reduce`` (x -> row sums) over float32 [batch, width]."""
    import tensorflow as tf

    v1 = tf.compat.v1
    info = v1.saved_model.utils.build_tensor_info
    for name, make in (("identity", lambda x: tf.identity(x, name="y")), ("reduce", lambda x: tf.reduce_sum(x, axis=1, name="y"))):
        if (base / name / "1").exists():
            continue
        with tf.Graph().as_default(), v1.Session() as session:
            x = v1.placeholder(tf.float32, [None, None], name="x")
            builder = v1.saved_model.Builder(str(base / name / "1"))
            builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map={
                DEFAULT_SIGNATURE: v1.saved_model.signature_def_utils.build_signature_def(
                    {"x": info(x)}, {"y": info(make(x))}, "tensorflow/serving/predict")})
            builder.save()


def small_round(stub, requests, seconds: float) -> dict:
    result = {f"batch{b}_p50_ms": latency_stats(time_calls(lambda b=b: stub.Predict(requests[b], timeout=30),
                                                           seconds=seconds, warmup=5))["p50_ms"] for b in (1, 256)}
    for clients in (1, 8, 32):
        result[f"throughput_{clients}_rps"] = run_clients(lambda _: stub.Predict(requests[1], timeout=30), clients,
                                                           seconds)["throughput_rps"]
    return result


def large_calls(call, calls: int) -> float:
    """Median seconds of ``calls`` calls after one warm call."""
    call()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per small measurement")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (>= 5 for the README)")
    parser.add_argument("--large-calls", type=int, default=4, help="calls per large-tensor measurement and round")
    parser.add_argument("--no-large", action="store_true", help="skip the large-tensor cases")
    args = parser.parse_args()

    import grpc
    import numpy as np
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    from tests.server_process import ServerProcess, free_port
    from tfsk._base.messages import MESSAGES
    from tfsk.client import Client
    from tfsk.client._wire import encode_predict_request
    from tfsk.devserver._malloc import TUNABLE

    work = Path(tempfile.mkdtemp(prefix="bench-devserver-"))
    base = export_demo_once(work / "models")
    build_large_models(base)
    requests = build_requests()
    config = work / "bench.config"
    config.write_text("model_config_list {\n" + "".join(
        f'  config {{ name: "{m}" base_path: "{base / m}" model_platform: "tensorflow" }}\n'
        for m in ("composed", "identity", "reduce")) + "}\n")
    large = np.random.default_rng(0).standard_normal(LARGE).astype(np.float32)
    unlimited = ("--max_request_tensor_bytes=0", "--grpc_max_threads=64")

    with ServerProcess(f"--model_config_file={config}", *unlimited) as server, \
            ServerProcess(f"--model_config_file={config}", "--enable_serialization_as_tensor_content", *unlimited) as content:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(server.channel)
        canned = []
        for batch in (1, 256):
            canned.append(work / f"small-{batch}")
            canned[-1].write_bytes(stub.Predict(requests[batch], timeout=30).SerializeToString())
        # The floor of each large case: its request's bytes in, the devserver's answer bytes out.
        large_cases = {}
        for form, target in (("float_val", server), ("tensor_content", content)):
            for model in ("identity", "reduce"):
                request = encode_predict_request(MESSAGES["ModelSpec"](name=model), {"x": large})
                answer = target.channel.unary_unary("/tensorflow.serving.PredictionService/Predict")(request, timeout=120)
                key = len(request) + len(large_cases)  # request sizes are equal; make them distinct keys
                request += b"\x00" * len(large_cases)  # padding only the raw echo sees (it never parses)
                (work / f"raw-{key}").write_bytes(answer)
                canned.append(work / f"raw-{key}")
                large_cases[f"{model}_{form}"] = (target, model, request, len(answer))
        echo_port = free_port()
        # The floor runs with the devserver's malloc (huge pages for large buffers, devserver/_malloc.py),
        # so the ratios measure the server's work, not the allocator.
        echo = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, str(echo_port), *map(str, canned)],
                                stdout=subprocess.PIPE, cwd=REPO, env={**os.environ, "GLIBC_TUNABLES": f"{TUNABLE}=1"})
        try:
            echo.stdout.readline()
            options = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
            with grpc.insecure_channel(f"127.0.0.1:{echo_port}", options=options) as echo_channel, \
                    Client(server.address, timeout=120) as ours, Client(content.address, timeout=120) as ours_content:
                echo_stub = prediction_service_pb2_grpc.PredictionServiceStub(echo_channel)
                raw = echo_channel.unary_unary("/bench.Raw/Echo")
                rounds = []
                for repeat in range(args.repeats):
                    order = [("devserver", stub), ("echo", echo_stub)]
                    if repeat % 2:
                        order.reverse()
                    entry = {name: small_round(target, requests, args.seconds) for name, target in order}
                    if not args.no_large:
                        for case, (target, model, request, _) in large_cases.items():
                            client = ours_content if target is content else ours
                            timings = [("devserver", lambda c=client, m=model: c.predict(m, {"x": large})),
                                       ("floor", lambda r=request: raw(r, timeout=120))]
                            if repeat % 2:
                                timings.reverse()
                            entry[case] = {name: large_calls(call, args.large_calls) * 1e3 for name, call in timings}
                    rounds.append(entry)
                    print(f"round {repeat + 1}/{args.repeats} done", flush=True)
        finally:
            echo.terminate()
            echo.wait()

    ratios = {}
    for batch in (1, 256):
        key = f"batch{batch}_p50_ms"
        ratios[f"latency_{key}_dev_over_echo"] = spread([r["devserver"][key] / r["echo"][key] for r in rounds])
    for clients in (1, 8, 32):
        key = f"throughput_{clients}_rps"
        ratios[f"{key}_dev_over_echo"] = spread([r["devserver"][key] / r["echo"][key] for r in rounds])
    if not args.no_large:
        for case in large_cases:
            ratios[f"large_{case}_dev_over_floor"] = spread([r[case]["devserver"] / r[case]["floor"] for r in rounds])
    targets = {
        "batch1_p50_at_most_1.35x_echo": ratios["latency_batch1_p50_ms_dev_over_echo"]["median"] <= 1.35,
        "batch256_p50_at_most_1.5x_echo": ratios["latency_batch256_p50_ms_dev_over_echo"]["median"] <= 1.5,
        "throughput_8_at_least_0.65x_echo": ratios["throughput_8_rps_dev_over_echo"]["median"] >= 0.65,
        "throughput_32_at_least_0.65x_echo": ratios["throughput_32_rps_dev_over_echo"]["median"] >= 0.65,
    }
    if not args.no_large:
        targets["large_at_most_1.3x_floor"] = all(ratios[f"large_{c}_dev_over_floor"]["median"] <= 1.3 for c in large_cases)

    print(f"{'ratio (per round; median, min..max)':<48}{'median':>8}{'min':>8}{'max':>8}")
    for name, value in ratios.items():
        print(f"{name:<48}{value['median']:>8.2f}{value['min']:>8.2f}{value['max']:>8.2f}")
    print("targets: " + ", ".join(f"{name} {'met' if ok else 'MISSED'}" for name, ok in targets.items()))
    path = write_results("devserver", {"seconds_per_measure": args.seconds, "repeats": args.repeats,
                                       "load_average": os.getloadavg(), "rounds": rounds, "ratios": ratios,
                                       "targets": targets})
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
