"""Every client call against a real devserver serving the exported demo."""

import json
import threading
from concurrent import futures

import grpc
import numpy as np
import pytest
from server_process import ServerProcess, free_port

from tfsk import client
from tfsk.client import Client
from tfsk.demo import DEMO_TOWERS, build_head


@pytest.fixture
def serving(demo_server):
    with Client(demo_server.address, timeout=30) as connected:
        yield connected


def test_predict_composed_and_every_way_of_choosing_a_version(serving, demo_base, composed_inputs):
    result = serving.predict("composed", composed_inputs)
    assert (result.model, result.version, result.signature) == ("composed", 1, "serving_default")
    assert set(result) == {"prediction", "tower_a__embedding", "tower_b__embedding", "tower_c__embedding"}
    embeddings = np.concatenate([result[f"{p}__embedding"] for p in DEMO_TOWERS], axis=-1)
    np.testing.assert_allclose(result["prediction"], build_head(96)(embeddings).numpy(), atol=1e-6)
    for choice in ({"version": 1}, {"label": "stable"}):
        assert serving.predict("composed", composed_inputs, **choice).version == 1
    only = serving.predict("composed", composed_inputs, output_filter=["prediction"])
    assert list(only) == ["prediction"]


def test_one_part_as_its_own_model_and_through_the_composed_model(serving, composed_inputs):
    part_inputs = {"features": composed_inputs["tower_b__features"]}
    standalone = serving.predict("tower_b", part_inputs)
    inside = serving.predict("composed", part_inputs, signature="part_tower_b")
    assert inside.signature == "part_tower_b"
    np.testing.assert_array_equal(standalone["embedding"], inside["embedding"])
    np.testing.assert_array_equal(serving.predict("composed", composed_inputs)["tower_b__embedding"], inside["embedding"])


def test_metadata_status_lineage_and_parts(serving):
    metadata = serving.metadata("composed")
    assert metadata.version == 1
    assert sorted(metadata.signatures) == ["part_tower_a", "part_tower_b", "part_tower_c", "serving_default", "tfsk_lineage"]
    inputs = metadata.signatures["serving_default"].inputs
    assert inputs["tower_c__features"].dtype == np.float32 and inputs["tower_c__features"].shape == (None, 5)
    assert metadata.signatures["part_tower_a"].outputs["embedding"].describe() == "float32[?,32]"
    assert [(s.version, s.state, s.error_code) for s in serving.status("composed")] == [(1, "AVAILABLE", "OK")]
    assert serving.status("composed", version=1)[0].state == "AVAILABLE"
    lineage = serving.lineage("composed")
    assert [(p["name"], p["version"]) for p in lineage["parts"]] == [("tower_a", 1), ("tower_b", 1), ("tower_c", 1)]
    parts = serving.parts("composed")
    assert [(p.name, p.version, p.signature) for p in parts] == [
        ("tower_a", 1, "part_tower_a"), ("tower_b", 1, "part_tower_b"), ("tower_c", 1, "part_tower_c")]
    assert parts[2].inputs["features"].shape == (None, 5)
    assert serving.parts("tower_a") == []


def test_check_consistency_runs_composed_and_standalone_parts(serving, composed_inputs):
    report = serving.check_consistency("composed")
    assert report.consistent and report.version == 1
    assert [p.name for p in report.parts] == list(DEMO_TOWERS)
    for part in report.parts:
        assert set(part.max_abs_difference) == {"embedding (part signature)", "embedding (standalone %s@1)" % part.name}
        assert all(d <= 1e-5 for d in part.max_abs_difference.values())
    assert serving.check_consistency("composed", composed_inputs).consistent


def test_errors_map_to_exceptions_with_hints(serving, demo_server, composed_inputs):
    with pytest.raises(client.InvalidArgumentError) as caught:
        serving.predict("composed", {"features": np.ones((1, 10), np.float32)})
    assert "input size does not match signature" in caught.value.details
    assert caught.value.hint.startswith("signature 'serving_default' takes tower_a__features float32[?,10]")
    assert caught.value.hint.endswith("; sent features float32[1,10]")
    with pytest.raises(client.NotFoundError) as caught:
        serving.predict("composed", composed_inputs, version=9)
    assert caught.value.details == "Servable not found for request: Specific(composed, 9)"
    assert caught.value.hint == "model 'composed' has AVAILABLE versions [1]"
    with pytest.raises(client.FailedPreconditionError) as caught:
        serving.predict("composed", composed_inputs, signature="nope")
    assert "part_tower_a" in caught.value.hint
    with pytest.raises(client.NotFoundError, match="Could not find any versions of model nope"):
        serving.status("nope")
    with pytest.raises(client.InvalidArgumentError, match="Unrecognized servable version label: canary"):
        serving.predict("composed", composed_inputs, label="canary")
    slow = {k: np.repeat(v, 20_000, axis=0) for k, v in composed_inputs.items()}  # tens of ms of work
    with pytest.raises(client.DeadlineExceededError):
        serving.predict("composed", slow, timeout=0.002)
    with pytest.raises(client.ClientError, match="a version or a label, not both"):
        serving.predict("composed", composed_inputs, version=1, label="stable")
    with pytest.raises(client.InputError, match="takes float32.*sent string.*not strings or objects"):
        serving.predict("composed", {**composed_inputs, "tower_a__features": [object()]})
    with pytest.raises(client.InputError, match="cannot be sent as tensors"):
        serving.predict("composed", {"tower_a__features": [object()]}, check_inputs=False)


def test_unavailable_after_retries(tmp_path):
    with Client(f"127.0.0.1:{free_port()}", retries=2, timeout=10) as nobody:
        with pytest.raises(client.UnavailableError):
            nobody.status("m")


class _Aborting(grpc.GenericRpcHandler):
    """A real gRPC server that answers every call with the status code named in the model name."""

    def service(self, details):
        def abort(request, context):
            code = grpc.StatusCode[request.model_spec.name]
            context.abort(code, f"deliberate {code.name}")

        from tfsk._base.messages import MESSAGES

        return grpc.unary_unary_rpc_method_handler(
            abort, request_deserializer=MESSAGES["GetModelStatusRequest"].FromString,
            response_serializer=lambda response: b"")


@pytest.mark.parametrize("code", [c for c in grpc.StatusCode if c not in (grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE)])
def test_every_status_code_has_its_exception(code):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers([_Aborting()])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with Client(f"127.0.0.1:{port}", retries=0, timeout=10) as connected:
            with pytest.raises(client.ServingError) as caught:
                connected.status(code.name)
        assert caught.value.code == code
        assert type(caught.value).__name__.replace("Error", "").lower() == code.name.replace("_", "").lower()
        assert caught.value.details == f"deliberate {code.name}"
    finally:
        server.stop(0)


def test_reload_config_and_wait_until_available(demo_server, demo_base, tmp_path):
    with Client(demo_server.address) as serving:
        text = demo_server.config_path.read_text()
        extra = f'  config {{ name: "tower_a_copy" base_path: "{demo_base / "tower_a"}" model_platform: "tensorflow" }}\n'
        serving.reload_config(text.rstrip().rstrip("}") + extra + "}\n")
        assert serving.wait_until_available("tower_a_copy", timeout=30) == 1
        assert serving.predict("tower_a_copy", {"features": np.ones((1, 10), np.float32)}).version == 1
        serving.reload_config(text)  # back to the fixture's config: the copy unloads
        with pytest.raises(client.WaitTimeoutError, match="version 5 of composed was not AVAILABLE"):
            serving.wait_until_available("composed", version=5, timeout=0.5)


def test_messages_over_4_mib_both_ways(serving):
    rows = 60_000  # 6 MB of inputs in; 60 000 x 97 floats out
    inputs = {f"{p}__features": np.ones((rows, width), np.float32) for p, (width, _, _) in DEMO_TOWERS.items()}
    assert sum(v.nbytes for v in inputs.values()) > 4 * 2**20
    result = serving.predict("composed", inputs, timeout=120)
    assert result["tower_a__embedding"].shape == (rows, 32) and result["tower_a__embedding"].nbytes > 4 * 2**20


def test_round_robin_across_three_servers(tmp_path):
    import keras

    from tfsk import exporter

    servers = []
    try:
        for factor in (1.0, 2.0, 3.0):
            inputs = keras.Input((1,), name="x")
            model = keras.Model(inputs, keras.layers.Dense(1, use_bias=False, kernel_initializer=keras.initializers.Constant(factor))(inputs))
            exporter.export_part(model, tmp_path / str(int(factor)), "m")
            servers.append(ServerProcess("--model_name=m", f"--model_base_path={tmp_path / str(int(factor)) / 'm'}"))
        with Client([s.address for s in servers]) as spread:
            answers = {float(spread.predict("m", {"x": np.ones((1, 1), np.float32)})["embedding"][0, 0]) for _ in range(30)}
        assert answers == {1.0, 2.0, 3.0}
    finally:
        for server in servers:
            server.stop()


def _make_certificates(folder):
    import subprocess

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=tfsk test CA",
            "-keyout", "ca.key", "-out", "ca.pem")
    (folder / "san.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.csr")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
                "-extfile", "san.cnf", "-out", f"{name}.pem")
    return {p.stem + p.suffix: p.read_text() for p in folder.iterdir() if p.suffix in (".pem", ".key")}


def test_tls_with_a_client_certificate(demo_base, tmp_path):
    pem = _make_certificates(tmp_path)
    ssl_config = tmp_path / "ssl.config"
    ssl_config.write_text(f"server_key: {json.dumps(pem['server.key'])}\nserver_cert: {json.dumps(pem['server.pem'])}\n"
                          f"custom_ca: {json.dumps(pem['ca.pem'])}\nclient_verify: true\n")
    port = free_port()
    server = ServerProcess("--model_name=tower_c", f"--model_base_path={demo_base / 'tower_c'}",
                           f"--ssl_config_file={ssl_config}", port=port, wait=False)
    try:
        tls = client.TLS(root_certificates=tmp_path / "ca.pem", client_certificate=tmp_path / "client.pem",
                         client_key=tmp_path / "client.key")
        with Client(f"127.0.0.1:{port}", tls=tls, timeout=5) as secure:
            assert secure.wait_until_available("tower_c", timeout=60) == 1
            assert secure.predict("tower_c", {"features": np.ones((1, 5), np.float32)})["embedding"].shape == (1, 32)
        without_cert = client.TLS(root_certificates=pem["ca.pem"])
        with Client(f"127.0.0.1:{port}", tls=without_cert, retries=0, timeout=5) as refused:
            with pytest.raises(client.UnavailableError):
                refused.status("tower_c")
        with Client(f"127.0.0.1:{port}", retries=0, timeout=5) as plaintext:
            with pytest.raises(client.UnavailableError):
                plaintext.status("tower_c")
    finally:
        server.stop()


def test_concurrent_calls_share_one_client(serving, composed_inputs):
    errors = []

    def work():
        try:
            for _ in range(10):
                serving.predict("composed", composed_inputs)
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
