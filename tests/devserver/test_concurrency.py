"""Serving goes on while versions load and unload: no request fails during a swap."""

import shutil
import threading
import time

import grpc
import numpy as np
import tensorflow as tf
from server_process import ServerProcess, wait_for
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tfsk import exporter
from tfsk.demo import DEMO_TOWERS


def composed_request():
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "composed"
    rng = np.random.default_rng(0)
    for part, (width, _, _) in DEMO_TOWERS.items():
        request.inputs[f"{part}__features"].CopyFrom(tf.make_tensor_proto(rng.standard_normal((4, width)).astype(np.float32)))
    return request


def test_no_request_fails_while_a_new_composed_version_swaps_in(demo_base, tmp_path):
    base = tmp_path / "models"
    shutil.copytree(demo_base, base)
    with ServerProcess("--model_name=composed", f"--model_base_path={base / 'composed'}",
                       "--file_system_poll_wait_seconds=1", "--grpc_max_threads=16") as server:
        assert "Running gRPC ModelServer at 127.0.0.1:" in server.log()  # loopback unless told otherwise
        stub = prediction_service_pb2_grpc.PredictionServiceStub(server.channel)
        request = composed_request()
        seen, failures, stop = set(), [], threading.Event()

        def client():
            while not stop.is_set():
                try:
                    seen.add(stub.Predict(request, timeout=30).model_spec.version.value)
                except grpc.RpcError as error:
                    failures.append((error.code(), error.details()))

        threads = [threading.Thread(target=client) for _ in range(8)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(1)
            exporter.export_composed(base, "composed", list(DEMO_TOWERS), "tfsk.demo:build_head")
            wait_for(lambda: 2 in seen, timeout=60)
            time.sleep(1.5)  # keep asking while version 1 unloads
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert failures == []
        assert seen == {1, 2}
