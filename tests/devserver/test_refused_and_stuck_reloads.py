"""Reload defects, reproduced against a real ``tfsk serve`` process with real clients.

- A refused config (by RPC or by the polled config file) changes nothing served: no request fails.
- Reloads that wait forever for a new model release their gRPC thread at the caller's deadline;
  serving goes on; a later reload says which model the earlier one still waits for.
- A version that cannot load ends with TF Serving's C++ loader codes.
"""

import shutil
import threading
import time

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from server_process import ServerProcess, wait_for
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tfsk.demo import DEMO_TOWERS

AVAILABLE, END = get_model_status_pb2.ModelVersionStatus.AVAILABLE, get_model_status_pb2.ModelVersionStatus.END
PLATFORM = 'model_platform: "tensorflow"'


def config_text(base, **extra):
    """The demo's four models; ``extra``: more text per model name (a new name adds a model)."""
    names = ["tower_a", "tower_b", "tower_c", "composed", *[n for n in extra if n not in
                                                              ("tower_a", "tower_b", "tower_c", "composed")]]
    entries = []
    for name in names:
        body = extra.get(name, PLATFORM)
        entries.append(f'config {{ name: "{name}" base_path: "{base / name}" {body} }}')
    return "model_config_list {\n" + "\n".join(entries) + "\n}\n"


def reload(channel, text, timeout=30):
    request = model_management_pb2.ReloadConfigRequest()
    text_format.Parse(text, request.config)
    return model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(request, timeout=timeout)


def status(channel, name):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = name
    response = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=10)
    return [(s.version, s.state, s.status.error_code, s.status.error_message) for s in response.model_version_status]


class ClientLoop:
    """Clients asking ``composed`` and ``tower_a`` for predictions until stopped; counts every answer."""

    def __init__(self, channel, threads=4):
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        self.requests, self.failures, self._stop = 0, [], threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self):
        composed, tower = predict_pb2.PredictRequest(), predict_pb2.PredictRequest()
        composed.model_spec.name, tower.model_spec.name = "composed", "tower_a"
        for part, (width, _, _) in DEMO_TOWERS.items():
            features = tf.make_tensor_proto(np.ones((2, width), np.float32))
            composed.inputs[f"{part}__features"].CopyFrom(features)
            if part == "tower_a":
                tower.inputs["features"].CopyFrom(features)
        requests = [composed, tower]
        while not self._stop.is_set():
            for request in requests:
                try:
                    self.stub.Predict(request, timeout=10)
                    error = None
                except grpc.RpcError as failed:
                    error = (failed.code(), failed.details())
                with self._lock:
                    self.requests += 1
                    if error:
                        self.failures.append(error)

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_):
        self._stop.set()
        for thread in self._threads:
            thread.join()


LABEL_ON_UNLOADED = 'model_platform: "tensorflow" model_version_policy { specific { versions: 99 } } ' \
                    'version_labels { key: "stable" value: 99 }'


def test_a_refused_config_changes_nothing_served(demo_base, tmp_path):
    base = tmp_path / "models"
    shutil.copytree(demo_base, base)
    good = config_text(base)
    config = tmp_path / "models.config"
    config.write_text(good)
    with ServerProcess(f"--model_config_file={config}", "--model_config_file_poll_wait_seconds=1",
                       "--file_system_poll_wait_seconds=1") as server, ClientLoop(server.channel) as clients:
        channel = server.channel
        wait_for(lambda: clients.requests > 20)
        refused = [
            (config_text(base, composed=LABEL_ON_UNLOADED), grpc.StatusCode.FAILED_PRECONDITION,
             "Request to assign label to version 99 of model composed, which is not currently available for inference"),
            (config_text(base, pt='model_platform: "pytorch"'), grpc.StatusCode.INVALID_ARGUMENT,
             "Model pt requests unsupported platform pytorch"),
        ]
        for text, code, message in refused:  # by RPC
            try:
                reload(channel, text)
                raise AssertionError("the config was accepted")
            except grpc.RpcError as error:
                assert (error.code(), error.details()) == (code, message)
        for text, _code, message in refused:  # by the polled config file
            config.write_text(text)
            wait_for(lambda message=message: "PollFilesystemAndReloadConfig failed to ReloadConfig" in server.log()
                     and message in server.log(), timeout=30)
            time.sleep(2.5)  # two more polls refuse it again while the clients keep asking
        config.write_text(good)
        time.sleep(2)
        assert status(channel, "composed") == [(1, AVAILABLE, 0, "")]  # never left, never reloaded
        try:
            status(channel, "pt")
            raise AssertionError("the refused model pt is known")
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.NOT_FOUND
    print(f"refused-config test: {clients.requests} requests, {len(clients.failures)} failed")
    assert clients.failures == [] and clients.requests > 100


def answered(call, *args):
    """``call(*args)``, or ``[]`` while it answers NOT_FOUND (a model not polled yet)."""
    try:
        return call(*args)
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        return []


def with_model(text, name, path):
    """``text`` (a config) plus model ``name`` at ``path``."""
    return text.rstrip().removesuffix("}") + f'config {{ name: "{name}" base_path: "{path}" {PLATFORM} }}\n}}\n'


def test_stuck_reloads_release_their_threads_and_say_what_they_wait_for(demo_base, tmp_path):
    base = tmp_path / "models"
    shutil.copytree(demo_base, base)
    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "empty").mkdir()
    stuck_paths = [tmp_path / "missing", tmp_path / "a_file", "gs://bucket/model", tmp_path / "empty"]
    good = config_text(base)
    config = tmp_path / "models.config"
    config.write_text(good)
    # 8 gRPC threads (the default on 2 cores): eight pinned reloads used to leave none for Predict.
    with ServerProcess(f"--model_config_file={config}", "--grpc_max_threads=8") as server, \
            ClientLoop(server.channel, threads=2) as clients:
        channel = server.channel
        wait_for(lambda: clients.requests > 10)
        started = time.monotonic()
        try:  # TF Serving waits for new0 forever; the caller's deadline ends the wait here
            reload(channel, with_model(good, "new0", tmp_path / "missing"), timeout=2)
            raise AssertionError("a reload waiting for a missing base path returned OK")
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 10

        survived = 0
        for burst in (8, 32, 128):
            answers, lock = [], threading.Lock()

            def stuck_reload(i, answers=answers, lock=lock):
                try:
                    reload(channel, with_model(good, f"new{i}", stuck_paths[i % len(stuck_paths)]), timeout=2)
                    answer = ("OK", "")
                except grpc.RpcError as error:
                    answer = (error.code().name, error.details())
                with lock:
                    answers.append(answer)

            threads = [threading.Thread(target=stuck_reload, args=(i + 1,)) for i in range(burst)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert len(answers) == burst
            codes = {code for code, _ in answers}
            assert codes <= {"FAILED_PRECONDITION", "DEADLINE_EXCEEDED"}, codes
            refused = next(details for code, details in answers if code == "FAILED_PRECONDITION")
            assert refused.startswith("An earlier config reload (HandleReloadConfigRequest, ")
            assert ("still waiting for model new0 to become available: Could not find base path "
                    f"{tmp_path / 'missing'} for servable new0 with error NOT_FOUND") in refused
            before = clients.requests
            wait_for(lambda before=before: clients.requests > before + 10, timeout=20)  # Predict still answers
            survived += burst
        # Give new0 a version: the earlier reload's wait ends, and reloads are accepted again.
        shutil.copytree(base / "tower_a", tmp_path / "missing")
        wait_for(lambda: [s[:2] for s in answered(status, channel, "new0")] == [(1, AVAILABLE)], timeout=30)
        assert reload(channel, good).status.error_code == 0
    print(f"stuck reloads: {survived} concurrent stuck reloads with 2 s deadlines survived; "
          f"{clients.requests} predictions, {len(clients.failures)} failed")
    assert clients.failures == [], clients.failures[:3]


def test_versions_that_cannot_load_end_with_tf_serving_codes(demo_base, tmp_path):
    base = tmp_path / "models"
    shutil.copytree(demo_base / "tower_a", base / "tower_a")
    model = base / "tower_a"
    with ServerProcess("--model_name=tower_a", f"--model_base_path={model}", "--file_system_poll_wait_seconds=1",
                       "--max_num_load_retries=0") as server:
        for version, damage in ((2, "truncated"), (3, "junk"), (4, "no saved_model.pb")):
            shutil.copytree(model / "1", tmp_path / "staging")
            pb = tmp_path / "staging" / "saved_model.pb"
            if damage == "truncated":
                pb.write_bytes(pb.read_bytes()[: pb.stat().st_size // 2])
            elif damage == "junk":
                pb.write_bytes(b"definitely not a SavedModel")
            else:
                pb.unlink()
            (tmp_path / "staging").rename(model / str(version))
            wait_for(lambda v=version: status(server.channel, "tower_a")[0][:2] == (v, END), timeout=30)
        found = {v: (code, message) for v, _state, code, message in status(server.channel, "tower_a")}
        assert found[2] == (grpc.StatusCode.OUT_OF_RANGE.value[0], "Read less bytes than requested")
        assert found[3] == (grpc.StatusCode.DATA_LOSS.value[0],
                            f"Can't parse {model / '3' / 'saved_model.pb'} as binary proto")
        assert found[4][0] == grpc.StatusCode.NOT_FOUND.value[0]
        assert found[4][1].startswith("Specified file path does not appear to contain a SavedModel bundle")
        assert found[1] == (0, "")  # version 1 keeps serving
