"""Prometheus metrics on the REST port of a real ``tfsk serve``: TF Serving's names and format, counted
the way it counts, parsed by prometheus-client, checked by ``promtool`` and scraped by a real
Prometheus server where one is installed."""

import json
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rest_http import get, post, request
from server_process import ServerProcess, free_port, wait_for
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

PATH = "/monitoring/prometheus/metrics"
#: promtool's lint notes that are TF Serving's own naming (":" separators, no "_total", no HELP).
EXPECTED_LINT = ("metric names should not contain ':'", 'should have "_total" suffix', "no help text",
                 'should not have "_count" suffix')


@pytest.fixture(scope="module")
def server(half_plus, tmp_path_factory):
    folder = tmp_path_factory.mktemp("metrics")
    monitoring = folder / "monitoring.config"
    monitoring.write_text(f'prometheus_config {{ enable: true path: "{PATH}" }}\n')
    config = folder / "models.config"
    config.write_text(f'model_config_list {{ config {{ name: "default" base_path: "{half_plus / "half_plus_two"}" '
                      'model_platform: "tensorflow" } }\n')
    port = free_port()
    with ServerProcess(f"--model_config_file={config}", f"--rest_api_port={port}",
                       f"--monitoring_config_file={monitoring}") as process:
        process.rest_port = port
        process.half_plus = half_plus
        yield process


def scrape(server):
    reply = get(server.rest_port, PATH)
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/plain")
    return reply.body.decode()


def samples(text):
    """name and labels -> value, by prometheus-client's parser (which calls counter samples ``*_total``)."""
    return {(family.name if s.name == family.name + "_total" else s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(text, name, **labels):
    return samples(text).get((name, tuple(sorted(labels.items()))), 0)


def grpc_predict(server, model):
    request_proto = predict_pb2.PredictRequest()
    request_proto.model_spec.name = model
    request_proto.inputs["x"].CopyFrom(__import__("tensorflow").make_tensor_proto([2.0], dtype="float32"))
    stub = prediction_service_pb2_grpc.PredictionServiceStub(server.channel)
    try:
        stub.Predict(request_proto, timeout=10)
    except Exception:  # noqa: BLE001 - failures are counted too; the test reads the counters
        pass


def test_tf_serving_names_and_format(server):
    text = scrape(server)
    assert "# HELP" not in text and text.endswith("\n")
    assert "# TYPE :tensorflow:serving:request_count counter" in text
    assert "# TYPE :tensorflow:serving:request_latency histogram" in text
    assert "# TYPE :tensorflow:cc:saved_model:load_attempt_count counter" in text
    assert "_total" not in text and "_created" not in text
    path = str(server.half_plus / "half_plus_two" / "00000123")
    assert value(text, ":tensorflow:cc:saved_model:load_attempt_count", model_path=path, status="success") == 1
    families = {f.name for f in text_string_to_metric_families(text)}  # prometheus-client's own parser
    assert ":tensorflow:serving:request_count" in families


def test_promtool_accepts_the_page(server):
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    post(server.rest_port, "/v1/models/default:predict", {"instances": [1.0]})
    result = subprocess.run(["promtool", "check", "metrics"], input=scrape(server), capture_output=True, text=True,
                            timeout=60)
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode in (0, 3), complaints  # 3: lint notes only; 1 would be a parse error
    unexpected = [line for line in complaints if not any(note in line for note in EXPECTED_LINT)]
    assert not unexpected


def test_requests_are_counted_as_tf_serving_counts_them(server):
    before = scrape(server)
    post(server.rest_port, "/v1/models/default:predict", {"instances": [1.0]})
    post(server.rest_port, "/v1/models/nope:predict", {"instances": [1.0]})
    get(server.rest_port, "/v1/models/default")
    get(server.rest_port, "/v1/models")
    grpc_predict(server, "default")
    grpc_predict(server, "nope")
    model_service_pb2_grpc.ModelServiceStub(server.channel).GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "default"}), timeout=10)  # not counted
    after = scrape(server)

    def increase(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    count = ":tensorflow:serving:request_count"
    assert increase(count, model_name="default", status="OK") == 3  # REST predict + REST status + gRPC Predict
    assert increase(count, model_name="nope", status="NOT_FOUND") == 2
    assert increase(count, model_name="", status="INVALID_ARGUMENT") == 1  # GET /v1/models, no name
    latency = ":tensorflow:serving:request_latency_count"
    assert increase(latency, model_name="default", API="predict", entrypoint="REST") == 1
    assert increase(latency, model_name="default", API="", entrypoint="REST") == 1
    assert increase(latency, model_name="default", API="Predict", entrypoint="GRPC") == 1
    assert increase(":tensorflow:serving:runtime_latency_count", model_name="default", API="Predict",
                    runtime="TF1") == 2
    buckets = [s for s in text_string_to_metric_families(after) if s.name == ":tensorflow:serving:request_latency"]
    bounds = [s.labels["le"] for s in buckets[0].samples if s.name.endswith("_bucket")][:3]
    assert bounds == ["10", "18", "32.4"]  # TF's 10 * 1.8^k buckets, printed as TF prints them


def test_a_query_string_on_the_metrics_path_is_refused(server):
    reply = request(server.rest_port, "GET", PATH + "?x=1")
    assert reply.status == 400
    assert reply.body.decode() == f"Unexpected path: {PATH}?x=1. Should be {PATH}"


def test_reload_reports_metric_increases(server):
    """``metric_names``: the increase of each metric's first point while the reload ran."""
    config = model_management_pb2.ReloadConfigRequest()
    for name in ("default", "again"):  # "again" loads the same SavedModel: its one load_attempt_count point grows
        model = config.config.model_config_list.config.add()
        model.name, model.base_path, model.model_platform = name, str(server.half_plus / "half_plus_two"), "tensorflow"
    config.metric_names.extend(["/tensorflow/cc/saved_model/load_attempt_count", "/no/such/metric"])
    response = model_service_pb2_grpc.ModelServiceStub(server.channel).HandleReloadConfigRequest(config, timeout=120)
    assert [(m.name, m.int64_value_increase) for m in response.metric] == [
        ("/tensorflow/cc/saved_model/load_attempt_count", 1), ("/no/such/metric", 0)]


def test_a_real_prometheus_scrapes_the_page(server, tmp_path):
    if shutil.which("prometheus") is None:
        pytest.skip("no prometheus server installed (Debian: apt-get install prometheus)")
    post(server.rest_port, "/v1/models/default:predict", {"instances": [1.0]})
    web = free_port()
    (tmp_path / "prometheus.yml").write_text(json.dumps({
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [{"job_name": "tfsk", "metrics_path": PATH,
                            "static_configs": [{"targets": [f"127.0.0.1:{server.rest_port}"]}]}]}))
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
                                    f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{web}"],
                                   stdout=log, stderr=subprocess.STDOUT)
        try:
            def query():
                url = f"http://127.0.0.1:{web}/api/v1/query?" + urllib.parse.urlencode(
                    {"query": '{__name__=":tensorflow:serving:request_count",model_name="default",status="OK"}'})
                try:
                    with urllib.request.urlopen(url, timeout=5) as answer:
                        return json.load(answer)["data"]["result"]
                except OSError:
                    return None

            result = wait_for(query, timeout=60, interval=0.5)
            assert float(result[0]["value"][1]) >= 1
            with urllib.request.urlopen(f"http://127.0.0.1:{web}/api/v1/targets", timeout=5) as answer:
                target = json.load(answer)["data"]["activeTargets"][0]
            assert target["health"] == "up" and not target["lastError"]
        finally:
            process.terminate()
            process.wait(timeout=30)


def test_collectors_count_as_prometheus_clients_own_counter_and_histogram():
    """The devserver's collectors (kept for speed, see _metrics) give the samples prometheus-client's
    Counter and Histogram give for the same observations: bounds inclusive, cumulative buckets, sums."""
    from prometheus_client import CollectorRegistry, Counter, Histogram

    from tfsk.devserver import _metrics

    bounds = _metrics._exponential(10, 1.8, 33)
    values = [0, 9.99, 10, 10.01, 18, 18.0001, 5e5, 1e9, 3.25, 250.5, 250.5, 1e6 + 0.5]
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    histogram = _metrics._Metric("/t/latency", "d", ("model_name",), bounds, registry=ours)
    counter = _metrics._Metric("/t/count", "d", ("model_name", "status"), registry=ours)
    reference = Histogram(":t:latency", "d", ["model_name"], buckets=bounds, registry=theirs)
    reference_count = Counter(":t:count", "d", ["model_name", "status"], registry=theirs)
    for index, value in enumerate(values):
        model = "ab"[index % 2]
        histogram.recorder((model,))(value)
        reference.labels(model).observe(value)
        counter.recorder((model, "OK"))(2)
        reference_count.labels(model, "OK").inc(2)

    def kept(registry):
        return sorted((s.name.removesuffix("_total"), tuple(s.labels.items()), s.value)
                      for family in registry.collect() for s in family.samples if not s.name.endswith("_created"))

    assert kept(ours) == kept(theirs)
    assert any(s[0] == ":t:latency_bucket" and ("le", "10.0") in s[1] for s in kept(ours))
