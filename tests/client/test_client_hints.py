"""Hints on the errors users hit most, one exception tree, the default target and the channel seam,
for the blocking and the asyncio client against a real devserver."""

import asyncio

import grpc
import numpy as np
import pytest
from server_process import free_port
from support import tfsk

from tfsk import client
from tfsk._base.messages import TensorProto
from tfsk.client import AsyncClient, Client


def test_unknown_model_names_the_models_of_the_config(demo_server, composed_inputs):
    config = demo_server.config_path
    with Client(demo_server.address, models_config=config) as serving:
        with pytest.raises(client.NotFoundError) as caught:
            serving.predict("composd", composed_inputs)
        assert caught.value.details == "Servable not found for request: Latest(composd)"
        assert caught.value.hint == (f"the server has no model 'composd'; did you mean 'composed'? "
                                     f"({config} names composed, tower_a, tower_b, tower_c)")
        with pytest.raises(client.NotFoundError, match="the server has no model 'nope'"):
            serving.status("nope")
        with pytest.raises(client.NotFoundError, match="the server has no model 'towr_b'; did you mean 'tower_b'"):
            serving.metadata("towr_b")


def test_unknown_model_without_a_config_says_how_to_list_them(demo_server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with Client(demo_server.address) as serving:
        with pytest.raises(client.NotFoundError) as caught:
            serving.status("nope")
    assert "TF Serving cannot list its models" in caught.value.hint and "--model_config_file" in caught.value.hint
    # a tfsk.toml in the working folder is where the names come from by default
    (tmp_path / "tfsk.toml").write_text('[models.composed]\nlabels = { stable = 1 }\n[models.tower_a]\n')
    with Client(demo_server.address) as serving:
        with pytest.raises(client.NotFoundError) as caught:
            serving.metadata("composedd")
    assert caught.value.hint == "the server has no model 'composedd'; did you mean 'composed'? (tfsk.toml names composed, tower_a)"


def test_unknown_version_and_label_name_available_versions_and_labels(demo_server, composed_inputs):
    with Client(demo_server.address, models_config=demo_server.config_path) as serving:
        with pytest.raises(client.NotFoundError) as caught:
            serving.metadata("composed", version=9)
        assert caught.value.hint == "model 'composed' has AVAILABLE versions [1]"
        with pytest.raises(client.InvalidArgumentError) as caught:
            serving.predict("composed", composed_inputs, label="canary")
        assert caught.value.details == "Unrecognized servable version label: canary"
        assert caught.value.hint == (f"model 'composed' has AVAILABLE versions [1]; {demo_server.config_path} "
                                     f"gives it the labels stable -> 1")
        with pytest.raises(client.NotFoundError, match="has AVAILABLE versions"):
            serving.status("composed", version=4)
        with pytest.raises(client.InvalidArgumentError, match="the server has no model 'nope'"):
            serving.predict("nope", {"x": [1.0]}, label="stable")  # TF Serving answers a label for an unknown model so


def test_unreachable_server_hint_and_tfsk_target(demo_server, monkeypatch):
    address = f"127.0.0.1:{free_port()}"
    with Client(address, retries=0, timeout=5) as nobody:
        with pytest.raises(client.UnavailableError) as caught:
            nobody.status("composed")
    assert caught.value.hint == (f"is a server running at {address}? give its address (target=...; tfsk: --target) "
                                 f"or set TFSK_TARGET")
    monkeypatch.setenv("TFSK_TARGET", demo_server.address)
    assert client.default_target() == demo_server.address
    with Client() as serving:
        assert serving.target == demo_server.address and serving.status("composed")[0].state == "AVAILABLE"
    monkeypatch.setenv("TFSK_TARGET", f"{demo_server.address},{demo_server.address}")
    assert client.default_target() == [demo_server.address] * 2
    monkeypatch.delenv("TFSK_TARGET")
    assert client.default_target() == "localhost:8500" == client.DEFAULT_TARGET


def test_cli_honours_tfsk_target_and_says_what_to_do_when_nobody_answers(demo_server):
    run = tfsk("status", "composed", env={"TFSK_TARGET": demo_server.address})
    assert run.returncode == 0, run.stderr
    assert "AVAILABLE" in run.stdout
    nobody = tfsk("status", "composed", "--timeout", "5", env={"TFSK_TARGET": "127.0.0.1:1"})
    assert nobody.returncode != 0
    assert "hint: is a server running at 127.0.0.1:1? give its address" in nobody.stderr
    assert "Traceback" not in nobody.stderr


def test_every_client_error_is_a_client_error(demo_server):
    with pytest.raises(client.TargetError, match="'localhost' is not host:port") as caught:
        Client("localhost")
    assert isinstance(caught.value, ValueError)
    with pytest.raises(client.TargetError, match=r"IPv6 address in brackets, e.g. \[::1\]:8500"):
        Client("::1")
    with pytest.raises(client.TargetError, match="port 70000"):
        Client(["127.0.0.1:1", "127.0.0.1:70000"])
    with pytest.raises(client.TensorDecodeError, match="no dtype") as caught:
        client.decode_tensor(TensorProto())
    assert isinstance(caught.value, client.ClientError) and isinstance(caught.value, ValueError)
    with pytest.raises(client.InputError, match="cannot be encoded as a tensor"):
        client.encode_tensor([object()], TensorProto())
    with Client(demo_server.address) as serving:
        with pytest.raises(client.WaitTimeoutError) as caught:
            serving.wait_until_available("composed", version=7, timeout=0.3)
    assert isinstance(caught.value, TimeoutError) and isinstance(caught.value, client.ClientError)


def test_an_injected_channel_is_used_and_left_open(demo_server):
    channel = grpc.insecure_channel(demo_server.address)
    try:
        with Client(channel=channel, timeout=30) as serving:
            assert serving.predict("tower_c", {"features": np.ones((1, 5), np.float32)}).version == 1
        with Client(channel=channel) as again:  # closing the client left the caller's channel open
            assert again.status("tower_c")[0].state == "AVAILABLE"
    finally:
        channel.close()
    with pytest.raises(client.ClientError, match="set them on the channel you pass"):
        Client(channel=grpc.insecure_channel(demo_server.address), tls=client.TLS())
    with pytest.raises(client.ClientError, match="AsyncClient needs a grpc.aio.Channel"):
        AsyncClient(channel=grpc.insecure_channel(demo_server.address))


class _CountingAio(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self):
        self.calls = []

    async def intercept_unary_unary(self, continuation, client_call_details, request):
        method = client_call_details.method
        self.calls.append((method.decode() if isinstance(method, bytes) else method).rsplit("/", 1)[-1])
        return await continuation(client_call_details, request)


def test_async_client_fits_inputs_gives_hints_and_checks_composed_models(demo_server, composed_inputs):
    counting = _CountingAio()

    async def scenario():
        async with AsyncClient(demo_server.address, models_config=demo_server.config_path,
                               interceptors=[counting]) as serving:
            as_float64 = {k: v.astype(np.float64) for k, v in composed_inputs.items()}
            results = await asyncio.gather(*(serving.predict("composed", as_float64) for _ in range(3)))
            with pytest.raises(client.NotFoundError) as unknown:
                await serving.predict("composd", composed_inputs)
            with pytest.raises(client.InputError, match="dimension 1 is 3, the signature fixes it at 5"):
                await serving.predict("tower_c", {"features": np.ones((1, 3), np.float32)})
            parts = await serving.parts("composed")
            report = await serving.check_consistency("composed")
            not_composed = await serving.check_consistency("tower_c")
            return results, unknown.value, parts, report, not_composed

    results, unknown, parts, report, not_composed = asyncio.run(scenario())
    with Client(demo_server.address) as blocking:
        expected = blocking.predict("composed", composed_inputs)["prediction"]
    for result in results:
        np.testing.assert_array_equal(result["prediction"], expected)
    assert "did you mean 'composed'?" in unknown.hint
    assert [(p.name, p.version) for p in parts] == [("tower_a", 1), ("tower_b", 1), ("tower_c", 1)]
    assert report.verdict == "consistent" and [p.verdict for p in report.parts] == ["consistent"] * 3
    assert not_composed.verdict == "not_composed" and not_composed.parts == []
    assert "GetModelMetadata" in counting.calls


def test_async_unreachable_server_carries_the_same_hint():
    address = f"127.0.0.1:{free_port()}"

    async def scenario():
        async with AsyncClient(address, retries=0, timeout=5) as nobody:
            await nobody.predict("m", {"x": np.ones(1, np.float32)})

    with pytest.raises(client.UnavailableError) as caught:
        asyncio.run(scenario())
    assert caught.value.hint.startswith(f"is a server running at {address}?")
