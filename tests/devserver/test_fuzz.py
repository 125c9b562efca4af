"""Malformed requests on all seven RPCs, generated from a fixed seed, against a real server process.

Every answer must come from the handlers' own checks (TF Serving's codes), never INTERNAL or
UNKNOWN; the server must stay up with every version AVAILABLE, answer a good request right, and
its resident memory (VmRSS of the process) may grow by at most RSS_BOUND over the whole run.
Reloads send only configs TF Serving refuses (none that would wait for a model forever). A few
raw byte strings that are not protobuf at all check the transport, which answers them itself.
"""

import collections
import random
from pathlib import Path

import grpc
import pytest
from server_process import ServerProcess
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)
from tensorflow_serving.config import model_server_config_pb2

SEED = 20261124
CASES_PER_RPC = 50  # 7 RPCs: 350 requests, plus the raw-bytes ones
RSS_BOUND = 400 * 2**20
LIMIT = 64 * 2**20
MODELS = ("default", "tower_a", "composed")
NAMES = ["default", "tower_a", "composed", "", "nope", "default ", "DEFAULT", "x" * 300, "\u00e9t\u00e9", "../default"]
SIGNATURES = ["", "serving_default", "classify_x_to_y", "regress_x_to_y", "regress_x2_to_y3", "tfsk_lineage", "nope",
              "tower_a", "\x00"]
ALIASES = ["x", "features", "inputs", "tower_a__features", "tower_b__features", "tower_c__features", "z", "", "y"]
DIMS = [0, 1, 1, 2, 3, 7, 10, -1, -7, 2**31, 2**62, 2**63 - 1, 10**6, 10**8, 10**12]
FIELDS = ["float_val", "double_val", "int_val", "int64_val", "bool_val", "string_val", "half_val",
          "scomplex_val", "dcomplex_val", "uint32_val", "uint64_val"]
SCALARS = {"float_val": lambda r: r.choice([0.0, -1.5, 3.4e38, float("nan"), float("inf")]),
           "double_val": lambda r: r.uniform(-1e300, 1e300), "scomplex_val": lambda r: r.uniform(-9, 9),
           "dcomplex_val": lambda r: r.uniform(-9, 9), "int_val": lambda r: r.randint(-2**31, 2**31 - 1),
           "int64_val": lambda r: r.randint(-2**63, 2**63 - 1), "bool_val": lambda r: r.random() < 0.5,
           "half_val": lambda r: r.randint(-2**31, 2**31 - 1), "uint32_val": lambda r: r.randint(0, 2**32 - 1),
           "uint64_val": lambda r: r.randint(0, 2**64 - 1), "string_val": lambda r: r.randbytes(r.randint(0, 12))}
BAD_CODES = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}


REAL_ALIASES = {"default": ["x"], "tower_a": ["features"],
                "composed": ["tower_a__features", "tower_b__features", "tower_c__features"]}


def model_spec(r, spec):
    """Mostly a model that is served (so the request gets past resolution), sometimes anything."""
    spec.name = r.choice(MODELS) if r.random() < 0.75 else r.choice(NAMES)
    choice = r.random()
    if choice < 0.1:
        spec.version.value = r.choice([1, 123, 0, -5, 2**62])
    elif choice < 0.15:
        spec.version_label = r.choice(["stable", "", "canary"])
    if r.random() < 0.3:
        spec.signature_name = r.choice(SIGNATURES)


def tensor(r, proto):
    proto.dtype = r.choice([1, 1, 1, 2, 3, 7, 9, 10, 19, 14, 8, 18, 4, 5, 6, 17, 22, 23, 0, 20, 21, 11, 99, 1000])
    rank = r.choice([0, 1, 1, 2, 2, 3, 4, 65, 200, 254, 255, 400])
    dims = [r.choice(DIMS) for _ in range(rank)] if rank <= 4 else [r.choice([1, 1, 1, 1, 2, 0, 2**40]) for _ in range(rank)]
    if r.random() < 0.1:
        proto.tensor_shape.unknown_rank = True
    for size in dims:
        proto.tensor_shape.dim.add().size = size
    kind = r.random()
    if kind < 0.3:
        proto.tensor_content = r.randbytes(r.choice([0, 1, 3, 4, 8, 12, 40, 100]))
    elif kind < 0.8:
        field = r.choice(FIELDS)
        getattr(proto, field).extend(SCALARS[field](r) for _ in range(r.choice([0, 1, 1, 2, 5, 30])))


def feature(r, example):
    key = r.choice(["x", "x2", "padding", "", "y"])
    entry = example.features.feature[key]
    kind = r.choice(["float_list", "int64_list", "bytes_list", None])
    if kind == "float_list":
        entry.float_list.value.extend(r.uniform(-9, 9) for _ in range(r.choice([0, 1, 1, 2])))
    elif kind == "int64_list":
        entry.int64_list.value.extend(r.randint(-9, 9) for _ in range(r.choice([0, 1, 2])))
    elif kind == "bytes_list":
        entry.bytes_list.value.append(r.randbytes(r.choice([0, 3, 2**20])))


def examples(r, request_input):
    kind = r.random()
    if kind < 0.1:
        return  # the oneof left empty
    with_context = kind > 0.6
    holder = request_input.example_list_with_context if with_context else request_input.example_list
    for _ in range(r.choice([0, 1, 1, 2, 5, 40])):
        example = holder.examples.add()
        for _ in range(r.choice([0, 1, 1, 2])):
            feature(r, example)
    if with_context:
        for _ in range(r.choice([0, 1, 2])):
            feature(r, holder.context)
        if r.random() < 0.2:  # a big context in front of every example: the budget refuses it
            holder.context.features.feature["padding"].bytes_list.value.append(b"\0" * (2 * 2**20))
            while len(holder.examples) < 40:
                holder.examples.add()


def predict_case(r):
    request = predict_pb2.PredictRequest()
    if r.random() < 0.9:
        model_spec(r, request.model_spec)
    if r.random() < 0.1:  # a signature with no inputs and a scalar string output (the exporter's lineage)
        request.model_spec.signature_name = "tfsk_lineage"
        return "Predict", request
    real = REAL_ALIASES.get(request.model_spec.name, ALIASES)
    for _ in range(r.choice([0, 1, 1, 1, 2, 3])):
        tensor(r, request.inputs[r.choice(real) if r.random() < 0.8 else r.choice(ALIASES)])
    for _ in range(r.choice([0, 0, 0, 1, 2])):
        request.output_filter.append(r.choice(["y", "prediction", "", "nope", "tower_a"]))
    return "Predict", request


def examples_case(method, message_class):
    def make(r):
        request = message_class()
        if r.random() < 0.9:
            model_spec(r, request.model_spec)
        examples(r, request.input)
        return method, request

    return make


def multi_inference_case(r):
    request = inference_pb2.MultiInferenceRequest()
    for _ in range(r.choice([0, 1, 2, 3])):
        task = request.tasks.add()
        model_spec(r, task.model_spec)
        task.method_name = r.choice(["tensorflow/serving/classify", "tensorflow/serving/regress",
                                     "tensorflow/serving/predict", "", "nope"])
    examples(r, request.input)
    return "MultiInference", request


def metadata_case(r):
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    if r.random() < 0.8:
        model_spec(r, request.model_spec)
    for _ in range(r.choice([0, 1, 1, 2])):
        request.metadata_field.append(r.choice(["signature_def", "signature_def", "", "graph", "\xff"]))
    return "GetModelMetadata", request


def status_case(r):
    request = get_model_status_pb2.GetModelStatusRequest()
    if r.random() < 0.85:
        model_spec(r, request.model_spec)
    return "GetModelStatus", request


def reload_case(r, good_config):
    """The served config with one change TF Serving refuses, so an accepted one would change nothing."""
    request = model_management_pb2.ReloadConfigRequest()
    change = r.choice(["unset", "custom", "duplicate", "relative", "no_platform", "both", "model_type",
                       "platform_change", "unsupported_label"])
    if change == "unset":
        return "HandleReloadConfigRequest", request
    if change == "custom":
        request.config.custom_model_config.type_url = "type.googleapis.com/nope"
        return "HandleReloadConfigRequest", request
    request.config.CopyFrom(good_config)
    models = request.config.model_config_list.config
    if change == "duplicate":
        models.add().CopyFrom(models[r.randrange(len(models))])
    elif change == "relative":
        models.add(name="fresh", base_path=r.choice(["models/fresh", "", "./x"]), model_platform="tensorflow")
    elif change == "no_platform":
        models.add(name="fresh", base_path="/nonexistent/fresh")
    elif change == "both":
        models[0].model_type = 1
    elif change == "model_type":
        models.add(name="fresh", base_path="/nonexistent/fresh", model_type=r.choice([0, 2, 7]))
    elif change == "platform_change":
        models[r.randrange(len(models))].model_platform = r.choice(["tensorflow_lite", "nope"])
    else:
        models[0].version_labels[r.choice(["stable", "x"])] = r.choice([999, 0])
    return "HandleReloadConfigRequest", request


def rss(server):
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def served(half_plus, demo_base, tmp_path_factory):
    config = model_server_config_pb2.ModelServerConfig()
    for name, path in (("default", half_plus / "half_plus_two"), ("tower_a", demo_base / "tower_a"),
                       ("composed", demo_base / "composed")):
        config.model_config_list.config.add(name=name, base_path=str(path), model_platform="tensorflow")
    path = tmp_path_factory.mktemp("fuzz") / "models.config"
    path.write_text(str(config))
    with ServerProcess(f"--model_config_file={path}", f"--max_request_tensor_bytes={LIMIT}") as server:
        yield server, config


def good_answer(server):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "default"
    request.inputs["x"].dtype = 1
    request.inputs["x"].float_val.extend([2.0, 4.0])
    request.inputs["x"].tensor_shape.dim.add().size = 2
    return list(prediction_service_pb2_grpc.PredictionServiceStub(server.channel).Predict(request, timeout=30)
                .outputs["y"].float_val)


def available_versions(server):
    stub = model_service_pb2_grpc.ModelServiceStub(server.channel)
    found = {}
    for name in MODELS:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = name
        found[name] = sorted(s.version for s in stub.GetModelStatus(request, timeout=30).model_version_status
                             if s.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE)
    return found


def test_fuzzed_requests_never_reach_internal_and_never_hurt_the_server(served):
    server, config = served
    r = random.Random(SEED)
    prediction = prediction_service_pb2_grpc.PredictionServiceStub(server.channel)
    models = model_service_pb2_grpc.ModelServiceStub(server.channel)
    assert good_answer(server) == [3.0, 4.0]
    versions = available_versions(server)
    assert all(versions.values()), versions
    baseline = rss(server)
    makers = [predict_case, examples_case("Classify", classification_pb2.ClassificationRequest),
              examples_case("Regress", regression_pb2.RegressionRequest), multi_inference_case, metadata_case,
              status_case, lambda r: reload_case(r, config)]
    counts, bad = collections.Counter(), []
    for index in range(CASES_PER_RPC * len(makers)):
        method, request = makers[index % len(makers)](r)
        stub = models if method in ("GetModelStatus", "HandleReloadConfigRequest") else prediction
        try:
            getattr(stub, method)(request, timeout=60)
            code = grpc.StatusCode.OK
        except grpc.RpcError as error:
            code = error.code()
            if code in BAD_CODES:
                bad.append((method, code, error.details(), str(request)[:400]))
        counts[method, code.name] += 1
        assert server.process.poll() is None, f"server died on {method}: {str(request)[:400]}"
    garbage = server.channel.unary_unary("/tensorflow.serving.PredictionService/Predict",
                                         request_serializer=None, response_deserializer=None)
    for _ in range(20):  # not protobuf at all: the transport answers these before any handler runs
        try:
            garbage(r.randbytes(r.randint(1, 64)), timeout=30)
            code, details = grpc.StatusCode.OK, ""
        except grpc.RpcError as error:
            code, details = error.code(), error.details()
        counts["raw bytes", code.name] += 1
        if code in BAD_CODES and details != "Exception deserializing request!":
            bad.append(("raw bytes", code, details, ""))
    print("fuzz answers:", dict(sorted(((f"{m} {c}", n) for (m, c), n in counts.items()))))
    growth = rss(server) - baseline
    print(f"fuzz RSS growth: {growth / 2**20:.1f} MiB over {sum(counts.values())} requests")
    assert not bad, bad[:5]
    assert good_answer(server) == [3.0, 4.0]
    assert available_versions(server) == versions
    assert growth < RSS_BOUND
