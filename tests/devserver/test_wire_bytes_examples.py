"""Classify, Regress and MultiInference on wire bytes, on a real server: requests with many
examples are read in place (examples as spans of the request) and give the answers small parsed
requests give; what their feed takes is charged to --max_request_tensor_bytes, so requests over
it are refused with RESOURCE_EXHAUSTED before anything is built, while the server goes on
answering other models."""

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest
from tensorflow.core.example import example_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    inference_pb2,
    model_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from tests.server_process import ServerProcess
from tfsk._base.packed import length_delimited

LIMIT = 4 * 2**20
MB = 2**20
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.fixture(scope="module")
def server(half_plus, tmp_path_factory):
    config = tmp_path_factory.mktemp("examples") / "models.config"
    config.write_text(f"""model_config_list {{
  config {{ name: "default" base_path: "{half_plus / 'half_plus_two'}" model_platform: "tensorflow" }}
  config {{ name: "other" base_path: "{half_plus / 'half_plus_three'}" model_platform: "tensorflow" }}
}}""")
    with ServerProcess(f"--model_config_file={config}", f"--max_request_tensor_bytes={LIMIT}") as running:
        yield running


def stub(server):
    return prediction_service_pb2_grpc.PredictionServiceStub(server.channel)


def example(x=None, **int_features):
    value = example_pb2.Example()
    if x is not None:
        value.features.feature["x"].float_list.value.append(x)
    for key, number in int_features.items():
        value.features.feature[key].int64_list.value.append(number)
    return value


def fill(request_input, xs, context=None):
    holder = request_input.example_list if context is None else request_input.example_list_with_context
    for x in xs:  # some end in a zero byte (x = 0.0, n = 0), lengths vary with n
        holder.examples.add().CopyFrom(example(x, n=int(abs(x) * 1000) % 3))
    if context is not None:
        holder.context.CopyFrom(context)


def expected(xs):
    return np.float32(0.5) * np.asarray(xs, np.float32) + np.float32(2)


@pytest.mark.parametrize("count", [3, 5000])
@pytest.mark.parametrize("form", ["same", "varied", "context"])
def test_many_examples_answer_as_few_do(server, count, form):
    rng = np.random.default_rng(count)
    xs = np.full(count, 1.5, np.float32) if form == "same" else rng.standard_normal(count).astype(np.float32)
    xs[::7] = 0.0
    context = example(None, c=1) if form == "context" else None
    regress = regression_pb2.RegressionRequest()
    regress.model_spec.name = "default"
    regress.model_spec.signature_name = "regress_x_to_y"
    fill(regress.input, xs.tolist(), context)
    assert (regress.ByteSize() > 2048) == (count > 3)  # the large ones take the wire path
    response = stub(server).Regress(regress, timeout=60)
    np.testing.assert_array_equal([r.value for r in response.result.regressions], expected(xs))
    assert (response.model_spec.name, response.model_spec.signature_name, response.model_spec.version.value) == (
        "default", "regress_x_to_y", 123)
    classify = classification_pb2.ClassificationRequest(model_spec=regress.model_spec, input=regress.input)
    classify.model_spec.signature_name = "classify_x_to_y"
    response = stub(server).Classify(classify, timeout=60)
    assert [[(c.label, c.score) for c in k.classes] for k in response.result.classifications] == [
        [("", float(y))] for y in expected(xs)]
    multi = inference_pb2.MultiInferenceRequest(input=regress.input)
    for signature, method in (("regress_x_to_y", "regress"), ("classify_x_to_y", "classify")):
        multi.tasks.add(model_spec=model_pb2.ModelSpec(name="default", signature_name=signature),
                        method_name=f"tensorflow/serving/{method}")
    results = stub(server).MultiInference(multi, timeout=60).results
    np.testing.assert_array_equal([r.value for r in results[0].regression_result.regressions], expected(xs))
    np.testing.assert_array_equal([k.classes[0].score for k in results[1].classification_result.classifications],
                                  expected(xs))
    assert [r.model_spec.signature_name for r in results] == ["regress_x_to_y", "classify_x_to_y"]


def test_merged_and_malformed_requests_read_as_the_runtime_reads_them(server):
    raw = server.channel.unary_unary("/tensorflow.serving.PredictionService/Regress")
    spec = model_pb2.ModelSpec(name="default", signature_name="regress_x_to_y").SerializeToString()
    one = length_delimited(1, example(4.0).SerializeToString())
    many = length_delimited(2, length_delimited(1, one * 1000))  # input { example_list { examples * 1000 } }
    # input given twice: the lists merge, as protobuf merges a repeated message field
    answer = regression_pb2.RegressionResponse.FromString(raw(length_delimited(1, spec) + many + many, timeout=60))
    assert [r.value for r in answer.result.regressions] == [4.0] * 2000
    broken = length_delimited(2, length_delimited(1, one * 1000 + b"\x0a\x05\x0a\x03\x0a\x01"))  # a bad Example
    for data in (length_delimited(1, spec) + broken, length_delimited(1, spec) + many[:-1]):
        with pytest.raises(grpc.RpcError) as caught:
            raw(data, timeout=60)
        assert (caught.value.code(), caught.value.details()) == (grpc.StatusCode.INTERNAL,
                                                                 "Exception deserializing request!")


def many_examples(megabytes, signature="regress_x_to_y"):
    spec = model_pb2.ModelSpec(name="default", signature_name=signature).SerializeToString()
    one = length_delimited(1, example(1.5).SerializeToString())
    return length_delimited(1, spec) + length_delimited(2, length_delimited(1, one * (megabytes * MB // len(one))))


def memory(server, field):
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(field)


def test_four_requests_over_the_budget_at_once_are_refused_and_other_models_keep_answering(server):
    # 220,000 examples each: their feed takes ~9 MB, over the 4 MiB limit
    data = {"Regress": many_examples(4), "Classify": many_examples(4, "classify_x_to_y")}
    raw = {method: server.channel.unary_unary(f"/tensorflow.serving.PredictionService/{method}")
           for method in ("Regress", "Classify")}
    other = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name="other"))
    other.inputs["x"].dtype = 1
    other.inputs["x"].tensor_shape.dim.add().size = 1
    other.inputs["x"].float_val.append(2.0)
    stop, answers = threading.Event(), []

    def keep_asking():
        while not stop.is_set():
            answers.append(stub(server).Predict(other, timeout=30).outputs["y"].float_val[0])

    def refused(method):
        with pytest.raises(grpc.RpcError) as caught:
            raw[method](data[method], timeout=120)
        return caught.value.code(), caught.value.details()

    Path(f"/proc/{server.process.pid}/clear_refs").write_text("5")
    before = memory(server, "VmRSS")
    asker = threading.Thread(target=keep_asking)
    asker.start()
    try:
        with ThreadPoolExecutor(4) as pool:
            outcomes = list(pool.map(refused, ["Regress", "Classify", "Regress", "Classify"]))
    finally:
        stop.set()
        asker.join(60)
    for code, message in outcomes:
        assert code == EXHAUSTED, message
        assert message.startswith("the request's 220752 examples would take ")
        assert f"more than the limit of {LIMIT} (--max_request_tensor_bytes={LIMIT})" in message
        assert "raise --max_request_tensor_bytes" in message
    assert answers and set(answers) == {4.0}  # half_plus_three: 0.5 * 2 + 3
    # four 4 MB requests, each held once as it came: nowhere near what building them would take
    assert memory(server, "VmHWM") - before < 4 * 4 * 3 * MB + 60 * MB
    assert server.process.poll() is None
    within = regression_pb2.RegressionResponse.FromString(raw["Regress"](many_examples(1), timeout=60))
    assert len(within.result.regressions) == 55188 and within.result.regressions[-1].value == 2.75
    assert stub(server).Predict(other, timeout=30).outputs["y"].float_val[0] == 4.0
