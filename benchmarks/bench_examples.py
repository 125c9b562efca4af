"""Throughput of ordinary Classify and Regress requests (1 to 256 tf.Examples) on this tree's
devserver against another tree's (``--tree``, e.g. main before a change: ``git archive main |
tar -x -C DIR``), both serving half_plus_two at once. Rounds interleave the two servers (the
order alternating), each measuring requests per second with concurrent clients; the ratio
this/other of each round is printed with its median. Writes benchmarks/results/examples.json.

    .venv/bin/python benchmarks/bench_examples.py --tree DIR [--rounds 5] [--seconds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from _common import REPO, export_demo_once, run_clients, spread, write_results  # noqa: E402
from bench_memory import Server  # noqa: E402

BATCHES = (1, 16, 256)


def request(method: str, batch: int):
    import numpy as np
    from tensorflow_serving.apis import classification_pb2, regression_pb2

    message = classification_pb2.ClassificationRequest() if method == "Classify" else regression_pb2.RegressionRequest()
    message.model_spec.name = "default"
    message.model_spec.signature_name = "classify_x_to_y" if method == "Classify" else "regress_x_to_y"
    for value in np.random.default_rng(batch).standard_normal(batch):
        message.input.example_list.examples.add().features.feature["x"].float_list.value.append(float(value))
    return message


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, required=True, help="the other source tree (the baseline)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=2)
    args = parser.parse_args()
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    base = export_demo_once(Path(tempfile.mkdtemp(prefix="bench-examples-")) / "models")
    servers = {"this": Server(REPO, base, []), "other": Server(args.tree.resolve(), base, [])}
    results: dict[str, dict] = {}
    try:
        for method in ("Classify", "Regress"):
            for batch in BATCHES:
                message = request(method, batch)
                calls = {}
                for side, server in servers.items():
                    stub = getattr(prediction_service_pb2_grpc.PredictionServiceStub(server.channel), method)
                    expected = stub(message, timeout=30)  # also warms the signature's callable
                    calls[side] = lambda _, stub=stub, message=message: stub(message, timeout=30)
                    results.setdefault(f"{method}_{batch}", {})[f"{side}_answer_bytes"] = expected.ByteSize()
                rounds: dict[str, list[float]] = {"this": [], "other": []}
                for index in range(args.rounds):
                    for side in (("this", "other") if index % 2 == 0 else ("other", "this")):
                        rounds[side].append(run_clients(calls[side], args.clients, args.seconds)["throughput_rps"])
                ratios = [a / b for a, b in zip(rounds["this"], rounds["other"])]
                entry = results[f"{method}_{batch}"]
                entry.update({"this_rps": rounds["this"], "other_rps": rounds["other"], "ratio": spread(ratios)})
                print(f"{method:<9} batch {batch:>4}: this {statistics.median(rounds['this']):8.0f} rps, "
                      f"other {statistics.median(rounds['other']):8.0f} rps, ratio this/other median "
                      f"{statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f})", flush=True)
    finally:
        for server in servers.values():
            server.stop()
    path = write_results("examples", {"tree": str(args.tree), "clients": args.clients, "seconds": args.seconds,
                                      "cases": results})
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
