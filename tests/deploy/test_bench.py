"""``tfsk bench`` against a real devserver (gRPC, REST, Prometheus metrics on): its percentiles against the
server's own histogram, open and closed loops, each option and each refusal. Steps are short (0.5 s):
these tests check what is measured and reported, never how fast anything is (benchmarks/ does)."""

import json
import math
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from rest_http import get
from server_process import ServerProcess, free_port
from support import tfsk
from tiny_models import tiny_tower

from tfsk.deploy.bench import BenchError, LoadStep, run_bench

METRICS_PATH = "/monitoring/prometheus/metrics"
QUICK = ("--duration", "0.5s", "--warmup", "0.1s")


def heavy_model():
    """A model slow enough (a few ms) that the transport is small next to a histogram bucket."""
    import keras

    features = keras.Input((512,), name="features")
    hidden = features
    for seed in range(4):
        hidden = keras.layers.Dense(1024, activation="relu",
                                    kernel_initializer=keras.initializers.GlorotUniform(seed=seed))(hidden)
    return keras.Model(features, keras.layers.Dense(1)(hidden), name="heavy")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from tfsk import exporter

    folder = tmp_path_factory.mktemp("bench")
    models = folder / "models"
    examples = [{"features": np.full((2, 3), float(i), np.float32)} for i in range(3)]
    exporter.export_part(tiny_tower(seed=1), models, "tiny", examples=examples)
    exporter.export_part(tiny_tower(seed=2), models, "tiny")
    exporter.export_part(heavy_model(), models, "heavy")
    config = folder / "models.config"
    config.write_text(
        f'model_config_list {{\n'
        f'  config {{ name: "tiny" base_path: "{models / "tiny"}" model_platform: "tensorflow"\n'
        f'           model_version_policy {{ specific {{ versions: 1 versions: 2 }} }}\n'
        f'           version_labels {{ key: "stable" value: 1 }} version_labels {{ key: "canary" value: 2 }} }}\n'
        f'  config {{ name: "heavy" base_path: "{models / "heavy"}" model_platform: "tensorflow" }}\n'
        f'}}\n')
    monitoring = folder / "monitoring.config"
    monitoring.write_text(f'prometheus_config {{ enable: true path: "{METRICS_PATH}" }}\n')
    rest_port = free_port()
    with ServerProcess(f"--model_config_file={config}", f"--rest_api_port={rest_port}",
                       f"--monitoring_config_file={monitoring}", "--allow_version_labels_for_unavailable_models") as process:
        process.rest_port = rest_port
        process.rest_address = f"127.0.0.1:{rest_port}"
        process.models = models
        yield process


def bench(*args, check=True):
    run = tfsk("bench", *args)
    if check:
        assert run.returncode == 0, run.stderr
    return run


# --- the server's own histogram ---------------------------------------------------------------------------------

def latency_histogram(server, model):
    """request_latency bucket upper bounds (µs) and cumulative counts for gRPC Predict of ``model``."""
    text = get(server.rest_port, METRICS_PATH).body.decode()
    buckets = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if (sample.name == ":tensorflow:serving:request_latency_bucket" and labels.get("model_name") == model
                    and labels.get("API") == "Predict" and labels.get("entrypoint") == "GRPC"):
                buckets[float(labels["le"])] = sample.value
    return buckets


def bucket_of(bounds, counts, quantile):
    """Index of the bucket holding the quantile, by the cumulative counts (Prometheus's own rule)."""
    rank = quantile * counts[-1]
    return next(i for i, count in enumerate(counts) if count >= rank)


def test_percentiles_agree_with_the_servers_request_latency_histogram(server):
    before = latency_histogram(server, "heavy")
    report = run_bench(server.address, "heavy", [LoadStep(concurrency=2, duration_seconds=1.5, warmup_seconds=0)],
                       processes=1, batch_size=8)
    after = latency_histogram(server, "heavy")
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0) for b in bounds]
    step = report.steps[0]
    # the same run: every request the bench measured, plus its one probe request, and nothing else
    assert counts[-1] == step.requests + 1 and not step.errors
    for name, quantile in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        server_bucket = bucket_of(bounds, counts, quantile)
        ours_us = step.latency_ms[name] * 1e3
        ours_bucket = next(i for i, bound in enumerate(bounds) if ours_us <= bound)
        lower = bounds[server_bucket - 1] if server_bucket else 0.0
        # within the histogram's resolution: the server's bucket, or the next one up (ours adds the transport)
        assert ours_us >= lower * 0.95, (name, ours_us, lower)
        assert ours_bucket - server_bucket in (0, 1), (name, ours_us, bounds[server_bucket])


# --- closed and open loop, outputs --------------------------------------------------------------------------------

def test_closed_loop_sweep_writes_json_csv_and_svg_without_tensorflow(server, tmp_path):
    out, table, plot = tmp_path / "run.json", tmp_path / "run.csv", tmp_path / "run.svg"
    code = ("import sys; from tfsk.cli import main; code = main(sys.argv[1:]); "
            "print('tensorflow' in sys.modules, file=sys.stderr); sys.exit(code)")
    from support import python

    run = python(code, "bench", "tiny", "--target", server.address, "--concurrency", "1,4", *QUICK,
                 "--processes", "2", "--json", str(out), "--csv", str(table), "--plot", str(plot))
    assert run.returncode == 0, run.stderr
    assert run.stderr.strip().splitlines()[-1] == "False"  # the bench never loads TensorFlow
    data = json.loads(out.read_text())
    assert [s["concurrency"] for s in data["steps"]] == [1, 4] and data["processes"] == 2
    assert data["inputs"] == "synthesized" and data["knee"] in (0, 1)
    for step in data["steps"]:
        assert step["requests"] > 0 and not step["errors"] and step["sustained"]
        latency = step["latency_ms"]
        assert 0 < latency["p50"] <= latency["p90"] <= latency["p95"] <= latency["p99"] <= latency["max"]
        assert step["generator_cpu"] > 0
    rows = table.read_text().splitlines()
    assert rows[0].startswith("concurrency,rate,requests,throughput,p50_ms") and len(rows) == 3
    assert [row.split(",")[-1] for row in rows[1:]].count("true") == 1  # the knee, marked once
    svg = ElementTree.parse(plot).getroot()
    assert svg.tag.endswith("svg") and len(svg.findall("{http://www.w3.org/2000/svg}polyline")) == 4
    assert "knee" in run.stdout and "p99 ms" in run.stdout  # the plain table (stdout is not a terminal)


def test_open_loop_counts_every_scheduled_send_and_merges_processes(server):
    report = run_bench(server.address, "tiny", [LoadStep(rate=40, duration_seconds=0.5, warmup_seconds=0.1)],
                       processes=2, arrivals="constant")
    step = report.steps[0]
    assert step.scheduled == 20  # 40/s for 0.5 s, split over two processes, staggered
    assert step.requests + step.missed_sends >= step.scheduled and not step.errors
    poisson = run_bench(server.address, "tiny", [LoadStep(rate=40, duration_seconds=0.5, warmup_seconds=0.1)],
                        processes=1, arrivals="poisson", seed=3)
    assert poisson.steps[0].scheduled > 0 and poisson.arrivals == "poisson"


def test_generator_processes_start_from_a_script_without_a_main_guard(server, tmp_path):
    script = tmp_path / "measure.py"  # multiprocessing's spawn would run this file again in each child
    script.write_text("from tfsk.deploy.bench import LoadStep, run_bench\n"
                      f"report = run_bench({server.address!r}, 'tiny', [LoadStep(concurrency=4, duration_seconds=0.3, "
                      "warmup_seconds=0)], processes=2)\n"
                      "print('requests', report.steps[0].requests, report.processes)\n")
    from support import python

    run = python(f"import runpy; runpy.run_path({str(script)!r}, run_name='__main__')")
    assert run.returncode == 0, run.stderr
    words = run.stdout.split()
    assert words[0] == "requests" and int(words[1]) > 0 and words[2] == "2"


def test_a_rate_far_above_what_the_generator_can_send_is_not_sustained(server, tmp_path):
    out = tmp_path / "run.json"
    run = bench("tiny", "--target", server.address, "--rate", "1000000", *QUICK, "--processes", "1", "--json", str(out))
    data = json.loads(out.read_text())
    step = data["steps"][0]
    assert step["sustained"] is False and step["missed_sends"] > step["scheduled"] // 2
    assert data["knee"] is None  # a step the generator did not keep is never the knee
    assert "NOT SUSTAINED" in run.stdout  # the table says so too


# --- options ----------------------------------------------------------------------------------------------------

def test_rest_protocol_closed_and_open_loop(server):
    run = bench("tiny", "--target", server.rest_address, "--protocol", "rest", "--concurrency", "2", *QUICK,
                "--processes", "1", "--json")
    step = json.loads(run.stdout)["steps"][0]
    assert json.loads(run.stdout)["protocol"] == "rest" and step["requests"] > 0 and not step["errors"]
    report = run_bench(server.rest_address, "tiny", [LoadStep(rate=20, duration_seconds=0.5, warmup_seconds=0.1)],
                       protocol="rest", processes=1, label="canary")
    assert report.steps[0].scheduled == 10 and report.steps[0].requests > 0 and not report.steps[0].errors


def test_given_inputs_version_and_label(server, tmp_path):
    np.save(tmp_path / "x.npy", np.ones((4, 3), np.float32))
    run = bench("tiny", "--target", server.address, "--version", "2", "--input", f"features=@{tmp_path / 'x.npy'}",
                "--concurrency", "1", *QUICK, "--processes", "1", "--json")
    data = json.loads(run.stdout)
    assert data["version"] == 2 and data["inputs"] == "given" and data["steps"][0]["requests"] > 0
    run = bench("tiny", "--target", server.address, "--label", "canary", "--input", "features=[[1, 2, 3]]",
                "--concurrency", "1", *QUICK, "--processes", "1", "--json")
    assert json.loads(run.stdout)["label"] == "canary" and not json.loads(run.stdout)["steps"][0]["errors"]


def test_another_signature_a_bigger_batch_and_the_threads_engine(server):
    report = run_bench(server.address, "tiny", [LoadStep(concurrency=1, duration_seconds=0.3, warmup_seconds=0)],
                       signature="tfsk_lineage", processes=1)
    assert report.signature == "tfsk_lineage" and report.steps[0].requests > 0 and not report.steps[0].errors
    with pytest.raises(BenchError, match="no signature 'nope'.*serving_default"):
        run_bench(server.address, "tiny", [LoadStep(concurrency=1)], signature="nope", processes=1)
    batched = run_bench(server.address, "tiny", [LoadStep(concurrency=3, duration_seconds=0.3, warmup_seconds=0)],
                        batch_size=16, processes=1, engine="threads")
    assert batched.steps[0].requests > 0 and not batched.steps[0].errors
    with pytest.raises(BenchError, match="engine 'fibers'"):
        run_bench(server.address, "tiny", [LoadStep(concurrency=1)], engine="fibers")


def test_every_replica_of_the_target_gets_its_share(server):
    other = server.address.replace("127.0.0.1", "localhost")  # the same server under a second address
    report = run_bench(f"{server.address},{other}", "tiny", [LoadStep(concurrency=4, duration_seconds=0.5,
                                                                      warmup_seconds=0.1)], processes=1)
    replicas = report.steps[0].replicas
    assert set(replicas) == {server.address, other} and report.target == [server.address, other]
    counts = [replicas[a]["requests"] for a in (server.address, other)]
    assert min(counts) > 0 and abs(counts[0] - counts[1]) <= 4  # in turn, one each
    assert sum(counts) == report.steps[0].requests


def test_repeats_and_compare(server, tmp_path):
    first, second = tmp_path / "before.json", tmp_path / "after.json"
    before = run_bench(server.address, "tiny", [LoadStep(concurrency=c, duration_seconds=0.3, warmup_seconds=0)
                                                for c in (1, 2)], processes=1)
    first.write_text(json.dumps(before.to_json()))
    bench("tiny", "--target", server.address, "--concurrency", "2,4", *QUICK, "--processes", "1", "--repeats", "2",
          "--json", str(second))
    assert len(json.loads(second.read_text())["runs"]) == 2
    run = bench("compare", str(first), str(second), "--json")
    data = json.loads(run.stdout)
    assert [s["load"] for s in data["steps"]] == ["concurrency 2"]
    assert data["only_before"] == ["concurrency 1"] and data["only_after"] == ["concurrency 4"]
    assert data["repeats"] == {"before": 1, "after": 2}
    throughput = data["steps"][0]["throughput"]
    assert math.isclose(throughput["ratio"], throughput["after"] / throughput["before"], rel_tol=1e-3)
    assert throughput["noise"] >= 0 and set(data["steps"][0]) >= {"p50", "p90", "p95", "p99", "max"}
    plain = bench("compare", str(first), str(second))
    assert "concurrency 2" in plain.stdout and "x" in plain.stdout
    refused = bench("compare", str(first), str(tmp_path / "missing.json"), check=False)
    assert refused.returncode == 2 and "missing.json" in refused.stderr


# --- refusals: one clear line, exit 2 -----------------------------------------------------------------------------

@pytest.mark.parametrize("args, said", [
    (("nope",), "unknown model"),
    (("tiny", "--rate", "10,abc"), "'abc' is not a number of requests per second"),
    (("tiny", "--rate", "-5"), "above 0"),
    (("tiny", "--concurrency", "0"), "'0' is not a whole number of 1 or more"),
    (("tiny", "--duration", "10x"), "is not a duration"),
    (("tiny", "--input", "features=[[1, 2]]"), "refused the first request"),
])
def test_refusals_are_one_line_and_exit_2(server, args, said):
    run = bench("--target", server.address, *QUICK, "--processes", "1", *args, check=False)
    assert run.returncode == 2, run.stdout
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tfsk bench: error: ") and said in lines[0], run.stderr


def test_an_unreachable_target_is_refused(server):
    run = bench("tiny", "--target", f"127.0.0.1:{free_port()}", *QUICK, check=False)
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "cannot reach 127.0.0.1:" in run.stderr
    run = bench("tiny", "--target", "nohost", *QUICK, check=False)
    assert run.returncode == 2 and "is not host:port" in run.stderr




# --- recorded requests: warmup records and captured traffic --------------------------------------------------------

def test_examples_sends_a_versions_warmup_records(server):
    version = server.models / "tiny" / "1"
    run = bench("tiny", "--target", server.address, "--examples", str(version), "--label", "stable",
                "--concurrency", "1", *QUICK, "--processes", "1", "--json")
    data = json.loads(run.stdout)
    assert data["inputs"] == "replayed" and data["label"] == "stable"
    assert data["steps"][0]["requests"] > 0 and not data["steps"][0]["errors"]
    from tfsk.deploy.bench import requests_from_records

    assert len(requests_from_records(version, "tiny", "serving_default")) == 3  # the three example batches
    refused = bench("tiny", "--target", server.address, "--examples", str(server.models / "tiny" / "2"),
                    *QUICK, check=False)  # exported without examples: no warmup records
    assert refused.returncode == 2 and "--examples" in refused.stderr and refused.stderr.count("\n") == 1


def test_replay_sends_captured_traffic(server, tmp_path):
    from tfsk.client import Capture, Client

    capture = Capture(tmp_path / "captured")
    with Client(server.address, capture=capture) as client:
        for rows in (1, 2, 5):
            client.predict("tiny", {"features": np.ones((rows, 3), np.float32)})
    capture.close()
    run = bench("tiny", "--target", server.address, "--replay", str(tmp_path / "captured"), "--version", "2",
                "--concurrency", "2", *QUICK, "--processes", "1", "--json")
    data = json.loads(run.stdout)
    assert data["inputs"] == "replayed" and data["version"] == 2
    assert data["steps"][0]["requests"] > 0 and not data["steps"][0]["errors"]
    rest = bench("tiny", "--target", server.rest_address, "--protocol", "rest", "--replay", str(tmp_path / "captured"),
                 *QUICK, check=False)
    assert rest.returncode == 2 and "gRPC only" in rest.stderr
