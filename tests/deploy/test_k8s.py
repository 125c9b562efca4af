"""``tfsk stack render k8s``: the manifests validated against the Kubernetes schemas (kubernetes-validate,
bundled schemas, offline) and checked against the compose stack and tfsk.toml they come from."""

import importlib.util
import subprocess
from pathlib import Path

import pytest
import yaml
from support import REPO, tfsk

from tfsk import deploy


def _health_tests():
    """The healthcheck tests' REST status server (a real HTTP server answering as TF Serving does)."""
    path = Path(__file__).with_name("test_monitoring_and_health.py")
    module_spec = importlib.util.spec_from_file_location("tfsk_health_tests", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install 'tfsk[test]' (kubernetes-validate)")


def spec_of(folder, kubernetes="", environ=None):
    if kubernetes:
        declaration = folder / "tfsk.toml"
        declaration.write_text(declaration.read_text() + "\n[kubernetes]\n" + kubernetes)
    return deploy.load_stack(folder / "docker-compose.yml", environ=environ or {})


def container_of(manifests):
    return manifests.find("Deployment")["spec"]["template"]["spec"]["containers"][0]


def assert_valid(manifests, spec):
    results = deploy.validate_with_kubernetes_schemas(manifests)
    assert results and all(r.error is None for r in results), [r for r in results if r.error]
    report = deploy.check_manifests(manifests, spec)
    assert report.ok, [str(f) for f in report.findings]


render = deploy.render_kubernetes


@pytest.mark.parametrize("kubernetes", [
    "",
    'models = "volume"\nclaim = "models"\nstorage = "20Gi"\nstorage_class = "standard"\nreplicas = 3\n',
    'models = "object-store"\nbase_uri = "gs://bucket/serving"\nservice_account = "serving"\nservice_monitor = true\n'
    'namespace = "ml"\ncpu_limit = "2"\n',
])
def test_every_manifest_is_valid_for_kubernetes_and_agrees_with_the_stack(stack_dir, kubernetes):
    spec = spec_of(stack_dir, kubernetes)
    manifests = render(spec)
    assert_valid(manifests, spec)
    kinds = sorted(d["kind"] for d in manifests.documents())
    assert {"ConfigMap", "Deployment", "PodDisruptionBudget", "Service"} <= set(kinds)
    assert kinds.count("Service") == 2
    if "service_monitor = true" in kubernetes:  # a custom resource: no schema in kubernetes-validate
        monitor = manifests.find("ServiceMonitor")
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/monitoring/prometheus/metrics",
                                                 "interval": "15s"}]
        selected = [d["metadata"]["name"] for d in manifests.documents() if d["kind"] == "Service" and
                    monitor["spec"]["selector"]["matchLabels"].items() <= d["metadata"]["labels"].items()]
        assert selected == ["tfsk-serving"]  # not the headless Service too: each pod scraped once
        assert all(d["metadata"]["namespace"] == "ml" for d in manifests.documents())


def test_the_schemas_are_really_checked(stack_dir):
    manifests = render(spec_of(stack_dir))
    container_of(manifests)["ports"][0]["containerPort"] = "8500"  # a string where Kubernetes wants an integer
    manifests.find("Service")["spec"]["colour"] = "red"            # a field Kubernetes does not have
    errors = {r.kind: r.error for r in deploy.validate_with_kubernetes_schemas(manifests) if r.error}
    assert "is not of type 'integer'" in errors["Deployment"] and "colour" in errors["Service"]


def test_the_deployment_runs_the_compose_flags_with_the_configs_from_the_configmap(stack_dir):
    compose = stack_dir / "docker-compose.yml"
    compose.write_text(compose.read_text().replace("      - --enable_model_warmup=true\n",
                                                   "      - --enable_model_warmup=true\n      - --grpc_max_threads=64\n"))
    spec = spec_of(stack_dir)
    manifests = render(spec)
    container = container_of(manifests)
    moved = {"--model_config_file=/models/models.config": "--model_config_file=/etc/tfsk/models.config",
             "--monitoring_config_file=/models/monitoring.config": "--monitoring_config_file=/etc/tfsk/monitoring.config"}
    expected = [moved.get(a, a) for a in spec.serving.command if not a.endswith("=")]
    assert container["args"] == expected and "--grpc_max_threads=64" in expected  # one source: the compose file
    assert container["command"] == ["tensorflow_model_server"]
    data = manifests.find("ConfigMap")["data"]
    assert set(data) == {"models.config", "monitoring.config", "batching_parameters.config", "healthcheck.sh"}
    assert data["healthcheck.sh"] == (REPO / "monitoring" / "healthcheck.sh").read_text()
    assert 'base_path: "/models/composed"' in data["models.config"]
    batching = render(spec_of(stack_dir, environ={"TFSK_BATCHING": "true", "TFSK_BATCHING_PARAMETERS_FILE":
                                                  "/models/batching_parameters.config"}))
    assert {"--enable_batching=true", "--batching_parameters_file=/etc/tfsk/batching_parameters.config"} <= set(
        container_of(batching)["args"])


def test_rollouts_keep_every_replica_and_clients_can_balance(stack_dir):
    manifests = render(spec_of(stack_dir, "replicas = 3\n"))
    deployment = manifests.find("Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate",
                                              "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    assert manifests.find("PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    headless = manifests.find("Service", "tfsk-serving-headless")["spec"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is False
    service = manifests.find("Service", "tfsk-serving")["spec"]
    assert service["type"] == "ClusterIP"
    assert [(p["name"], p["port"]) for p in service["ports"]] == [("grpc", 8500), ("http", 8501)]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"prometheus.io/scrape": "true", "prometheus.io/port": "8501",
                           "prometheus.io/path": "/monitoring/prometheus/metrics"}
    container = container_of(manifests)
    assert container["livenessProbe"]["tcpSocket"] == {"port": "grpc"}
    assert container["startupProbe"]["failureThreshold"] * container["startupProbe"]["periodSeconds"] >= 600
    assert deployment["spec"]["template"]["spec"]["nodeSelector"] == {"kubernetes.io/arch": "amd64"}


def test_the_pods_run_the_tensorflow_that_exported_the_models(stack_dir):
    pytest.importorskip("tensorflow", reason="the exporting TensorFlow is what the image tag is compared with")
    spec = spec_of(stack_dir, 'models = "volume"\n', environ={"TF_SERVING_VERSION": "2.20.0"})
    report = deploy.check_manifests(deploy.render_kubernetes(spec), spec)
    assert [f.code for f in report.warnings] == ["image-tag"]
    assert "the image runs TensorFlow 2.20.0" in report.warnings[0].message


def test_the_readiness_probe_is_ready_only_when_every_declared_model_is_available(stack_dir, tmp_path):
    manifests = render(spec_of(stack_dir))
    config_dir = tmp_path / "etc-tfsk"  # the ConfigMap as the pod sees it at /etc/tfsk
    config_dir.mkdir()
    for key, text in manifests.find("ConfigMap")["data"].items():
        (config_dir / key).write_text(text)
    probe = container_of(manifests)["readinessProbe"]["exec"]["command"]
    assert probe[:2] == ["bash", "/etc/tfsk/healthcheck.sh"]
    status = _health_tests()._FakeStatus({name: "AVAILABLE" for name in ("tower_a", "tower_b", "tower_c", "composed")})

    def run_probe():
        command = [w.replace("/etc/tfsk", str(config_dir)) for w in probe]
        command[2] = str(status.port)  # the REST port, here the status server's
        return subprocess.run(command, capture_output=True, text=True, timeout=60)

    try:
        assert run_probe().returncode == 0
        status.states["composed"] = "LOADING"
        run = run_probe()
        assert run.returncode == 1 and "model composed: no version AVAILABLE" in run.stdout
    finally:
        status.close()


def test_how_the_models_reach_the_pods(stack_dir):
    stack = stack_dir / "tfsk.toml"
    original = stack.read_text()
    image = render(spec_of(stack_dir, 'image = "registry.example/serving-models:7"\n'))
    container = container_of(image)
    assert container["image"] == "registry.example/serving-models:7"
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/etc/tfsk"]

    stack.write_text(original)
    volume = render(spec_of(stack_dir, 'models = "volume"\nclaim = "models"\n'))
    assert container_of(volume)["image"] == "tensorflow/serving:2.21.0"
    assert {"name": "models", "mountPath": "/models", "readOnly": True} in container_of(volume)["volumeMounts"]
    claim = volume.find("PersistentVolumeClaim", "models")["spec"]
    assert claim["accessModes"] == ["ReadOnlyMany"]

    stack.write_text(original)
    bucket = render(spec_of(stack_dir, 'models = "object-store"\nbase_uri = "gs://bucket/serving/"\n'))
    assert 'base_path: "gs://bucket/serving/composed"' in bucket.find("ConfigMap")["data"]["models.config"]
    assert [m["mountPath"] for m in container_of(bucket)["volumeMounts"]] == ["/etc/tfsk"]


@pytest.mark.parametrize("kubernetes, message", [
    ('models = "object-store"\nbase_uri = "s3://bucket/models"\n', "has no S3 file system"),
    ('models = "object-store"\n', 'needs base_uri = "gs://BUCKET/PATH"'),
    ('models = "ftp"\n', "one of image, volume, object-store"),
    ("replicas = 0\n", "give 1 or more"),
    ('name = "Serving_1"\n', "Kubernetes names are lower-case"),
    ('memory = "lots"\n', "not a Kubernetes quantity"),
    ("replica = 2\n", "unknown key(s) replica"),
    ('replicas = "2"\n', "must be a int"),
])
def test_bad_kubernetes_settings_get_one_clear_error(stack_dir, kubernetes, message):
    with pytest.raises(deploy.StackError, match=message.replace("(", r"\(").replace(")", r"\)")):
        render(spec_of(stack_dir, kubernetes))


def test_a_path_flag_outside_every_volume_is_found(stack_dir):
    compose = stack_dir / "docker-compose.yml"
    compose.write_text(compose.read_text().replace("      - --enable_model_warmup=true\n",
                                                   "      - --enable_model_warmup=true\n"
                                                   "      - --ssl_config_file=/models/ssl.config\n"))
    spec = spec_of(stack_dir, 'models = "object-store"\nbase_uri = "gs://b/m"\n')
    report = deploy.check_manifests(deploy.render_kubernetes(spec), spec)
    assert [f.code for f in report.errors] == ["path-not-mounted"]


def test_render_writes_a_kustomize_layout_and_never_replaces_a_foreign_file(stack_dir):
    out = stack_dir / "k8s"
    run = tfsk("stack", "render", "k8s", "-f", str(stack_dir / "docker-compose.yml"), "--out", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "valid against the Kubernetes 1.37.0 schemas" in run.stdout
    kustomization = yaml.safe_load((out / "kustomization.yaml").read_text())
    assert sorted(p.name for p in out.iterdir()) == sorted(kustomization["resources"] + ["kustomization.yaml"])
    deployment = yaml.safe_load((out / "deployment.yaml").read_text())
    assert deployment["kind"] == "Deployment" and kubernetes_validate.validate(deployment, "1.37.0", strict=True)
    again = tfsk("stack", "render", "k8s", "-f", str(stack_dir / "docker-compose.yml"), "--out", str(out))
    assert again.returncode == 0  # its own files are rendered again
    (out / "service.yaml").write_text("# mine\n")
    refused = tfsk("stack", "render", "k8s", "-f", str(stack_dir / "docker-compose.yml"), "--out", str(out))
    assert refused.returncode == 2 and "was not written by `tfsk stack render k8s`" in refused.stderr
    assert (out / "service.yaml").read_text() == "# mine\n"
    (stack_dir / "tfsk.toml").write_text((stack_dir / "tfsk.toml").read_text() + '\n[kubernetes]\nmodels = "s3"\n')
    bad = tfsk("stack", "render", "k8s", "-f", str(stack_dir / "docker-compose.yml"), "--out", str(stack_dir / "x"))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "models = 's3'" in bad.stderr
    assert not (stack_dir / "x").exists()


def test_the_serving_dockerfile_bakes_the_models_into_the_pinned_image(stack_dir):
    spec = deploy.load_stack(REPO / "docker-compose.yml", environ={})
    text = deploy.serving_dockerfile(spec)
    assert (REPO / "Dockerfile.serving").read_text() == text, "run `tfsk stack build-image --no-build` again"
    lines = text.splitlines()
    assert f"FROM --platform=linux/amd64 {spec.serving.image}" in lines
    copies = [line.split()[1:] for line in lines if line.startswith("COPY ")]
    assert ["demo-models/composed/", "/models/composed/"] in copies
    assert ["demo-models/models.config", "/models/models.config"] in copies
    ignore = (REPO / "Dockerfile.serving.dockerignore").read_text().splitlines()
    assert [line for line in ignore if not line.startswith("#")] == ["*", "!demo-models"]
    assert all(source.startswith("demo-models/") for source, _ in copies)
    cmd = yaml.safe_load(next(line for line in lines if line.startswith("CMD "))[4:])
    assert cmd == [a for a in spec.serving.command if not a.endswith("=")]
    assert 'ENTRYPOINT ["tensorflow_model_server"]' in lines
    run = tfsk("stack", "build-image", "-f", str(stack_dir / "docker-compose.yml"), "--no-build")
    assert run.returncode == 0 and (stack_dir / "Dockerfile.serving").read_text().startswith("# Written by")
    (stack_dir / "Dockerfile.serving").write_text("FROM scratch\n")
    refused = tfsk("stack", "build-image", "-f", str(stack_dir / "docker-compose.yml"), "--no-build")
    assert refused.returncode == 2 and "not replacing it" in refused.stderr


def test_build_image_says_why_it_did_not_build_without_docker(served_stack_dir):
    problem = deploy.docker_engine_problem()
    if problem is None:
        pytest.skip("a Docker engine answers here: the build itself is tested below")
    run = tfsk("stack", "build-image", "-f", str(served_stack_dir / "docker-compose.yml"), "--tag", "models:test")
    assert run.returncode == 2 and f"not built ({problem})" in run.stdout
    assert "docker build -f Dockerfile.serving -t models:test ." in run.stdout
    assert (served_stack_dir / "Dockerfile.serving").is_file()
    empty = tfsk("stack", "build-image", "-f", str(served_stack_dir.parent / "nowhere.yml"))
    assert empty.returncode == 2 and "cannot read the compose file" in empty.stderr


def test_build_image_builds_where_docker_runs(served_stack_dir):
    problem = deploy.docker_engine_problem()
    if problem is not None:
        pytest.skip(f"needs a Docker engine and the tensorflow/serving image: {problem}")
    spec = deploy.load_stack(served_stack_dir / "docker-compose.yml", environ={})
    image = deploy.build_serving_image(spec, "tfsk-test-serving-models:1")
    assert image.built, image.reason
    listed = subprocess.run(["docker", "image", "inspect", "tfsk-test-serving-models:1"], capture_output=True)
    assert listed.returncode == 0
