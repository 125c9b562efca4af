"""The monitoring profile's files, and the serving healthcheck run by real bash against real HTTP servers."""

import json
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from server_process import free_port
from support import REPO

HEALTHCHECK = REPO / "monitoring" / "healthcheck.sh"
DASHBOARD = REPO / "monitoring" / "grafana" / "dashboards" / "tf-serving.json"
needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None,
                                    reason="promtool is not installed (apt-get install prometheus)")


@needs_promtool
def test_promtool_accepts_the_prometheus_config():
    run = subprocess.run(["promtool", "check", "config", "--syntax-only", str(REPO / "monitoring" / "prometheus.yml")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr


@needs_promtool
def test_every_dashboard_query_is_valid_promql(tmp_path):
    queries = [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"tfsk:dashboard_query_{n}", "expr": q.replace("$__rate_interval", "1m")}
        for n, q in enumerate(queries)]}]}
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    run = subprocess.run(["promtool", "check", "rules", str(tmp_path / "rules.yml")], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    (tmp_path / "bad.yml").write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [
        {"record": "x:y", "expr": "sum by (model_name (rate(x[1m]))"}]}]}))
    assert subprocess.run(["promtool", "check", "rules", str(tmp_path / "bad.yml")], capture_output=True,
                          timeout=60).returncode != 0  # promtool does parse the queries


def test_the_dashboard_shows_what_the_issue_asks_and_uses_the_provisioned_datasource():
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    assert "sum by (model_name, status) (rate(:tensorflow:serving:request_count" in exprs
    assert exprs.count("histogram_quantile(") == 3 and ":tensorflow:serving:request_latency_bucket" in exprs
    assert ':tensorflow:cc:saved_model:load_attempt_count{status="fail"}' in exprs
    assert ':tensorflow:cc:saved_model:load_attempt_count{status="success"}' in exprs
    provisioning = REPO / "monitoring" / "grafana" / "provisioning"
    source = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    assert source["url"] == "http://prometheus:9090" and source["type"] == "prometheus"
    assert {p["datasource"]["uid"] for p in dashboard["panels"]} == {source["uid"]}
    provider = yaml.safe_load((provisioning / "dashboards" / "tf-serving.yml").read_text())["providers"][0]
    grafana = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["grafana"]
    assert f"./monitoring/grafana/dashboards:{provider['options']['path']}:ro" in grafana["volumes"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


class _FakeStatus:
    """A real HTTP server answering GET /v1/models/<name> as TF Serving's REST API does (reference §9.5)."""

    def __init__(self, states):
        self.states = states
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                if name not in outer.states:
                    body, code = {"error": f"Could not find any versions of model {name}"}, 404
                else:
                    body, code = {"model_version_status": [{"version": "1", "state": outer.states[name], "status": {
                        "error_code": "OK", "error_message": ""}}]}, 200
                data = json.dumps(body, indent=1).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def run_healthcheck(port, config):
    return subprocess.run(["bash", str(HEALTHCHECK), str(port), str(config)], capture_output=True, text=True,
                          timeout=60)


def test_healthcheck_is_healthy_only_when_every_configured_model_is_available(tmp_path):
    config = tmp_path / "models.config"
    config.write_text('model_config_list {\n  config {\n    name: "a"\n    base_path: "/models/a"\n  }\n'
                      '  config {\n    name: "b"\n    base_path: "/models/b"\n    version_labels { key: "stable" '
                      'value: 1 }\n  }\n}\n')
    status = _FakeStatus({"a": "AVAILABLE", "b": "AVAILABLE"})
    try:
        run = run_healthcheck(status.port, config)
        assert run.returncode == 0, run.stdout + run.stderr
        assert run.stdout.splitlines() == ["model a: AVAILABLE", "model b: AVAILABLE"]
        status.states["b"] = "LOADING"
        run = run_healthcheck(status.port, config)
        assert run.returncode == 1 and "model b: no version AVAILABLE (HTTP/1.0 200 OK)" in run.stdout
        del status.states["a"]
        run = run_healthcheck(status.port, config)
        assert run.returncode == 1 and "model a: no version AVAILABLE (HTTP/1.0 404 Not Found)" in run.stdout
    finally:
        status.close()
    run = run_healthcheck(free_port(), config)
    assert run.returncode == 1 and "is not open yet" in run.stdout
    config.write_text("model_config_list {\n}\n")
    run = run_healthcheck(free_port(), config)
    assert run.returncode == 1 and "no model in" in run.stdout
