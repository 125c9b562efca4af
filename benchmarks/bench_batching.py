"""Throughput with ``--enable_batching`` against the same devserver without it, at 32 concurrent clients.

Two models: the demo composed model (tiny towers: batching must not cost much) and a heavy
composed model whose tower weights total over 64 MB (4096-wide layers: one run per request reads
every weight, a batch reads them once for all its rows). Both servers run at once; the
measurements alternate between them (off/on, then on/off, ...) for ``--repeats`` rounds, and
the medians and the on/off ratios are reported with p50/p99 latency. Writes
benchmarks/results/batching.json.

    .venv/bin/python benchmarks/bench_batching.py [--seconds 3] [--repeats 5] [--clients 32] [--models composed,heavy]
        [--batch-threads 2] [--batch-timeout-micros 0] [--server-flag=--FLAG=VALUE ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from _common import export_demo_once, run_clients, write_results  # noqa: E402

#: Heavy towers: part name -> (input features, hidden widths, seed); 128x4096 + 4096x2048 floats each (~34 MB).
HEAVY_TOWERS = {"heavy_a": (128, (4096, 2048), 5), "heavy_b": (128, (4096, 2048), 6)}
BATCHING = {"max_batch_size": 32, "batch_timeout_micros": 0, "max_enqueued_batches": 1000, "num_batch_threads": 2}


def export_heavy(base: Path) -> tuple[Path, int]:
    """Export the heavy parts and their composed model once; return the folder and the weight bytes."""
    import keras

    from tfsk import exporter
    from tfsk.demo import HEAD_FACTORY

    if not (base / "heavy" / "1").exists():
        for name, (features, widths, seed) in HEAVY_TOWERS.items():
            inputs = keras.Input(shape=(features,), name="features")
            x = inputs
            for index, units in enumerate(widths):
                x = keras.layers.Dense(units, activation="relu", name=f"dense_{index}",
                                       kernel_initializer=keras.initializers.GlorotUniform(seed=seed * 10 + index))(x)
            exporter.export_part(keras.Model(inputs, x, name=name), base, name)
        exporter.export_composed(base, "heavy", list(HEAVY_TOWERS), HEAD_FACTORY)
    weights = sum(p.stat().st_size for p in (base / "heavy" / "1" / "variables").iterdir())
    return base / "heavy", weights


def make_request(model: str, towers: dict[str, tuple[int, tuple[int, ...], int]], seed: int):
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    rng = np.random.default_rng(seed)
    for part, (width, _, _) in towers.items():
        request.inputs[f"{part}__features"].CopyFrom(
            tf.make_tensor_proto(rng.standard_normal((1, width)).astype(np.float32)))
    return request


def _predicts(stub, requests):
    """Client ``index`` sends one-row Predicts, its own of ``requests``, back to back."""
    return lambda index: stub.Predict(requests[index % len(requests)], timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (off/on alternate first)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--work", type=Path, help="folder for the exported models (default: a temporary one)")
    parser.add_argument("--models", default="composed,heavy", help="which of composed,heavy to measure")
    parser.add_argument("--batch-threads", type=int, default=BATCHING["num_batch_threads"], help="num_batch_threads")
    parser.add_argument("--batch-timeout-micros", type=int, default=BATCHING["batch_timeout_micros"])
    parser.add_argument("--server-flag", action="append", default=[], metavar="FLAG",
                        help="another tfsk serve flag for both servers, e.g. --server-flag=--tensorflow_intra_op_parallelism=1")
    args = parser.parse_args()

    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    from tests.server_process import ServerProcess
    from tfsk import serving_config
    from tfsk.demo import DEMO_TOWERS

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-batching-"))
    base = export_demo_once(work / "models")
    heavy_dir, heavy_bytes = export_heavy(work / "models")
    config = work / "models.config"
    config.write_text(f"""model_config_list {{
  config {{ name: "composed" base_path: "{base / 'composed'}" model_platform: "tensorflow" }}
  config {{ name: "heavy" base_path: "{heavy_dir}" model_platform: "tensorflow" }}
}}""")
    params = work / "batching.config"
    batching = {**BATCHING, "num_batch_threads": args.batch_threads, "batch_timeout_micros": args.batch_timeout_micros}
    serving_config.write_batching_parameters(serving_config.BatchingSettings(**batching), params)
    towers = {"composed": DEMO_TOWERS, "heavy": HEAVY_TOWERS}
    requests = {model: [make_request(model, towers[model], s) for s in range(8)] for model in args.models.split(",")}
    common = (f"--model_config_file={config}", "--grpc_max_threads=64", *args.server_flag)
    servers = {"off": ServerProcess(*common), "on": ServerProcess(*common, "--enable_batching",
                                                                   f"--batching_parameters_file={params}")}
    runs: dict[str, dict[str, list[dict]]] = {m: {"off": [], "on": []} for m in requests}
    try:
        channels = {mode: grpc.insecure_channel(s.address) for mode, s in servers.items()}
        stubs = {mode: prediction_service_pb2_grpc.PredictionServiceStub(c) for mode, c in channels.items()}
        for model in requests:  # warm both servers (graph optimisation happens on the first runs)
            for mode in stubs:
                run_clients(_predicts(stubs[mode], requests[model]), args.clients, 1.0)
        for round_ in range(args.repeats):
            order = ("off", "on") if round_ % 2 == 0 else ("on", "off")
            for model in requests:
                for mode in order:
                    result = run_clients(_predicts(stubs[mode], requests[model]), args.clients, args.seconds)
                    runs[model][mode].append(result)
                    print(f"round {round_ + 1} {model:<9} batching {mode:<3}: {result['throughput_rps']:8.1f} rps  "
                          f"p50 {result['p50_ms']:7.2f} ms  p99 {result['p99_ms']:7.2f} ms", flush=True)
        for channel in channels.values():
            channel.close()
    finally:
        for server in servers.values():
            server.stop()

    summary = {}
    print(f"\n{'model':<10}{'off rps':>10}{'on rps':>10}{'on/off':>8}{'off p50':>10}{'on p50':>10}{'off p99':>10}"
          f"{'on p99':>10}  (medians of {args.repeats}, {args.clients} clients, ms)")
    for model, by_mode in runs.items():
        med = {mode: {k: statistics.median(r[k] for r in results) for k in ("throughput_rps", "p50_ms", "p99_ms")}
               for mode, results in by_mode.items()}
        ratios = [on["throughput_rps"] / off["throughput_rps"] for on, off in zip(by_mode["on"], by_mode["off"])]
        summary[model] = {"median": med, "throughput_ratio_on_off": statistics.median(ratios),
                          "per_round_ratios": ratios}
        print(f"{model:<10}{med['off']['throughput_rps']:>10.1f}{med['on']['throughput_rps']:>10.1f}"
              f"{summary[model]['throughput_ratio_on_off']:>8.2f}"
              f"{med['off']['p50_ms']:>10.2f}{med['on']['p50_ms']:>10.2f}"
              f"{med['off']['p99_ms']:>10.2f}{med['on']['p99_ms']:>10.2f}")
    path = write_results("batching", {"clients": args.clients, "seconds_per_measure": args.seconds,
                                      "repeats": args.repeats, "batching_parameters": batching, "server_flags": args.server_flag,
                                      "heavy_weight_bytes": heavy_bytes, "runs": runs, "summary": summary})
    print(f"heavy model weights: {heavy_bytes / 2**20:.1f} MiB; results written to {path}")


if __name__ == "__main__":
    main()
