"""Tensors that cannot exist, and requests that would make the server allocate far more than they
sent: refused before anything is allocated, with TF Serving's words where it has them, and the
flag (--max_request_tensor_bytes) where the devserver's own limit speaks. Memory is read from the
real server process (/proc/PID/status), with bounds far from what the defects took (GBs)."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from server_process import ServerProcess
from tensorflow_serving.apis import classification_pb2, predict_pb2, prediction_service_pb2_grpc

from tfsk.devserver import parse_flags

INVALID, EXHAUSTED = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED
LIMIT = 64 * 2**20
MB = 2**20


def memory(server, field="VmRSS"):
    """A line of /proc/PID/status of the server process, in bytes."""
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"{field} not in /proc/{server.process.pid}/status")


def reset_peak(server):
    Path(f"/proc/{server.process.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux >= 4.0)


@pytest.fixture(scope="module")
def server(half_plus, demo_base, tmp_path_factory):
    config = tmp_path_factory.mktemp("limits") / "models.config"
    config.write_text(f"""model_config_list {{
  config {{ name: "default" base_path: "{half_plus / 'half_plus_two'}" model_platform: "tensorflow" }}
  config {{ name: "tower_a" base_path: "{demo_base / 'tower_a'}" model_platform: "tensorflow" }}
  config {{ name: "composed" base_path: "{demo_base / 'composed'}" model_platform: "tensorflow" }}
}}""")
    with ServerProcess(f"--model_config_file={config}", f"--max_request_tensor_bytes={LIMIT}") as running:
        yield running


def predict(server, request):
    return prediction_service_pb2_grpc.PredictionServiceStub(server.channel).Predict(request, timeout=120)


def refused(server, request, method="Predict"):
    with pytest.raises(grpc.RpcError) as caught:
        getattr(prediction_service_pb2_grpc.PredictionServiceStub(server.channel), method)(request, timeout=120)
    return caught.value.code(), caught.value.details()


def request_for(model, alias, dims, dtype=tf.float32, **fields):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    tensor = request.inputs[alias]
    tensor.dtype = dtype.as_datatype_enum
    for size in dims:
        tensor.tensor_shape.dim.add().size = size
    for name, values in fields.items():
        getattr(tensor, name).extend(values)
    return request


@pytest.mark.parametrize("dims, dtype", [
    ([2147483648, 2147483648], tf.float32),   # 2**62 elements: 16 EiB, TF's allocator returns null
    ([2**62, 2, 2], tf.float32),              # more than 2**63 - 1 elements
    ([1] * 255, tf.float32),                  # TensorShape allows 254 dimensions
    ([3, -1], tf.int64),
    ([2147483648, 2147483648], tf.string),
])
def test_tensors_tensorflow_cannot_make_get_its_parsing_error(server, dims, dtype):
    assert refused(server, request_for("default", "x", dims, dtype)) == (INVALID, "tensor parsing error: x")


@pytest.mark.parametrize("dims, detail", [
    ([9223372036854775807, 0], "Shape [9223372036854775807,0] cannot be held in a numpy array"),
    ([1] * 65, "has 65 dimensions; a numpy array holds at most 64"),
    ([1] * 254, "has 254 dimensions; a numpy array holds at most 64"),
])
def test_shapes_tensorflow_takes_but_numpy_cannot_are_invalid_argument(server, dims, detail):
    code, message = refused(server, request_for("default", "x", dims))
    assert code == INVALID and message.startswith("tensor parsing error: x: Shape [") and detail in message
    assert "TF Serving would take it" in message


def test_a_40_byte_request_cannot_take_gigabytes(server):
    request = request_for("tower_a", "features", [100_000_000, 7])  # zeros by TF's rule: 2.8 GB
    assert request.ByteSize() < 60
    reset_peak(server)
    before = memory(server)
    code, message = refused(server, request)
    assert code == INVALID and message.startswith("tensor parsing error: features: its shape [100000000,7] of float "
                                                  "takes 2800000000 bytes, 2800000000 more than the request sent")
    assert f"(--max_request_tensor_bytes={LIMIT})" in message and "raise --max_request_tensor_bytes" in message
    huge = request_for("tower_a", "features", [1_000_000, 1_000_000])
    assert refused(server, huge)[0] == INVALID
    with ThreadPoolExecutor(4) as pool:  # four at once used to take 4 x 6 GB
        codes = list(pool.map(lambda _: refused(server, request)[0], range(4)))
    assert codes == [INVALID] * 4
    assert memory(server, "VmHWM") - before < 200 * MB and server.process.poll() is None


def test_short_typed_fields_expand_up_to_the_limit_and_answer_right(server):
    rows = 5_000_000  # 20 MB of x made from one value: under 64 MiB
    response = predict(server, request_for("default", "x", [rows], float_val=[4.0]))
    y = response.outputs["y"]
    assert len(y.float_val) == rows and y.float_val[0] == y.float_val[-1] == 4.0  # 0.5 * 4 + 2
    code, message = refused(server, request_for("default", "x", [20_000_000], float_val=[4.0]))  # 80 MB
    assert code == INVALID and "its shape [20000000] of float takes 80000000 bytes, 79999996 more" in message


def test_answers_are_bounded_by_what_was_sent_plus_the_limit(server):
    def composed(rows, **fields):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "composed"
        for part, width in (("tower_a", 10), ("tower_b", 10), ("tower_c", 5)):
            request.inputs[f"{part}__features"].CopyFrom(request_for("x", "x", [rows, width], **fields).inputs["x"])
        return request

    one = predict(server, composed(1, float_val=[0.5]))
    many = predict(server, composed(100_000, float_val=[0.5]))  # 97 floats a row: a 39 MB answer from 141 bytes
    for alias, tensor in many.outputs.items():
        width = len(one.outputs[alias].float_val)
        values = np.array(tensor.float_val, np.float32).reshape(100_000, width)
        row = np.array(one.outputs[alias].float_val, np.float32)  # every row alike (to the batch's rounding)
        np.testing.assert_allclose(values, np.broadcast_to(row, values.shape), rtol=1e-5, atol=1e-6)
    code, message = refused(server, composed(300_000, float_val=[0.5]))  # a 116 MB answer
    assert code == EXHAUSTED and message.startswith("the answer's tensors would take 116400000 bytes, more than the ")
    assert f"plus the limit of {LIMIT} (--max_request_tensor_bytes={LIMIT})" in message


def test_example_contexts_count_once_per_example(server):
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "default"
    request.model_spec.signature_name = "classify_x_to_y"
    context = request.input.example_list_with_context.context
    context.features.feature["x"].float_list.value.append(2.0)
    context.features.feature["padding"].bytes_list.value.append(b"\0" * MB)
    for _ in range(100):  # 100 x 1 MB would be fed: TF Serving puts the context in front of every example
        request.input.example_list_with_context.examples.add()
    code, message = refused(server, request, "Classify")
    assert code == INVALID and "100 examples, each with the 1048" in message and "--max_request_tensor_bytes" in message
    del request.input.example_list_with_context.examples[10:]
    result = prediction_service_pb2_grpc.PredictionServiceStub(server.channel).Classify(request, timeout=60)
    assert [c.classes[0].score for c in result.result.classifications] == [3.0] * 10


def test_memory_goes_back_after_a_large_answer(server):
    request = request_for("default", "x", [12_000_000], float_val=[1.0])  # 48 MB in, 48 MB out
    predict(server, request)  # the first one sizes the allocator's pools
    settled = memory(server)
    for _ in range(3):
        assert len(predict(server, request).outputs["y"].float_val) == 12_000_000
    assert memory(server) - settled < 150 * MB


def test_the_flag():
    assert parse_flags([]).max_request_tensor_bytes == 2**30
    assert parse_flags(["--max_request_tensor_bytes=0"]).max_request_tensor_bytes == 0


def test_without_a_limit_an_unallocatable_tensor_is_still_tf_servings_parsing_error():
    """--max_request_tensor_bytes=0 is TF Serving's behaviour: try to allocate; a failure is a parsing error."""
    from tfsk.devserver._limits import RequestBudget
    from tfsk.devserver._status import StatusError

    request = request_for("default", "x", [10**9, 10**9])  # 4 EB: no address space holds it
    with pytest.raises(StatusError) as caught:
        RequestBudget(0).decode("x", request.inputs["x"])
    assert (caught.value.code, caught.value.message) == (INVALID, "tensor parsing error: x")
