"""Predict inputs fitted to the signature before sending, from metadata asked once and remembered,
and asked again when the model changes under the client. Real devservers, real exports."""

import grpc
import numpy as np
import pytest
from server_process import ServerProcess

from tfsk import client
from tfsk.client import Client


class Counting(grpc.UnaryUnaryClientInterceptor):
    """Records the name of every call the client makes (the client's interceptor seam)."""

    def __init__(self):
        self.calls = []

    def intercept_unary_unary(self, continuation, client_call_details, request):
        self.calls.append(client_call_details.method.rsplit("/", 1)[-1])
        return continuation(client_call_details, request)


def test_convertible_inputs_are_converted_and_metadata_is_asked_once(demo_server, composed_inputs):
    counting = Counting()
    with Client(demo_server.address, interceptors=[counting]) as serving:
        expected = serving.predict("composed", composed_inputs)["prediction"]
        as_float64 = {k: v.astype(np.float64) for k, v in composed_inputs.items()}
        as_lists = {k: v.tolist() for k, v in composed_inputs.items()}
        for inputs in (as_float64, as_lists):
            np.testing.assert_array_equal(serving.predict("composed", inputs)["prediction"], expected)
        ints = {k: np.arange(v.size).reshape(v.shape).tolist() for k, v in composed_inputs.items()}  # int64 -> float32
        assert serving.predict("composed", ints)["prediction"].dtype == np.float32
        for _ in range(5):
            serving.predict("composed", composed_inputs)
    assert counting.calls.count("GetModelMetadata") == 1
    assert counting.calls.count("Predict") == 9


def test_inputs_that_do_not_fit_are_refused_before_sending(demo_server, composed_inputs):
    counting = Counting()
    with Client(demo_server.address, interceptors=[counting]) as serving:
        serving.predict("composed", composed_inputs)
        wide = {**composed_inputs, "tower_c__features": np.ones((3, 10), np.float32)}
        with pytest.raises(client.InputError) as caught:
            serving.predict("composed", wide)
        assert str(caught.value) == ("input 'tower_c__features' of model 'composed' (signature 'serving_default') "
                                     "takes float32[?,5]; sent float32[3,10]: dimension 1 is 10, the signature "
                                     "fixes it at 5")
        assert (caught.value.input, caught.value.expected, caught.value.sent) == (
            "tower_c__features", "float32[?,5]", "float32[3,10]")
        complex_part = {**composed_inputs, "tower_a__features": composed_inputs["tower_a__features"] + 1j}
        with pytest.raises(client.InputError, match="numpy does not convert complex64 to float32 safely"):
            serving.predict("composed", complex_part)
        with pytest.raises(client.InputError, match="tower_b__features.*cannot be an array"):
            serving.predict("composed", {**composed_inputs, "tower_b__features": [[1.0] * 10, [1.0]]})
        with pytest.raises(ValueError):  # InputError keeps ValueError as a second base
            serving.predict("tower_c", {"features": ["a", "b"]})
        # a refusal first asks the signature again (it may be outdated); nothing was sent
        assert counting.calls.count("Predict") == 1
        # Opting out sends the inputs as they are, and the server answers as TF Serving does.
        with pytest.raises(client.InvalidArgumentError, match="Expects arg.* to be float but double is provided"):
            serving.predict("tower_c", {"features": np.ones((1, 5))}, check_inputs=False)
    with Client(demo_server.address, check_inputs=False) as unchecked:
        with pytest.raises(client.InvalidArgumentError) as caught:
            unchecked.predict("composed", wide)
        assert "hint: signature 'serving_default' takes" in str(caught.value)


def _linear(width: int, dtype: str):
    import keras

    inputs = keras.Input((width,), name="x", dtype=dtype)
    return keras.Model(inputs, keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")(inputs))


def test_a_new_version_with_another_signature_is_asked_again(tmp_path):
    from tfsk import exporter

    exporter.export_part(_linear(3, "float32"), tmp_path, "evolving", version=1)
    counting = Counting()
    with ServerProcess("--model_name=evolving", f"--model_base_path={tmp_path / 'evolving'}",
                       "--file_system_poll_wait_seconds=1") as server, \
            Client(server.address, interceptors=[counting]) as serving:
        first = serving.predict("evolving", {"x": np.ones((1, 3))})  # float64 converted for version 1
        assert (first.version, first["embedding"].dtype) == (1, np.float32)

        # Version 2 takes float64: the remembered signature still says float32, so the client
        # converts, the server refuses (nothing ran), and the client asks again and resends.
        exporter.export_part(_linear(3, "float64"), tmp_path, "evolving", version=2, allow_contract_change=True)
        assert serving.wait_until_available("evolving", version=2, timeout=60) == 2
        sent = len(counting.calls)
        second = serving.predict("evolving", {"x": np.full((1, 3), 2.0)})
        assert (second.version, float(second["embedding"][0, 0])) == (2, 6.0)
        assert counting.calls[sent:] == ["Predict", "GetModelMetadata", "Predict"]

        # Version 3 is wider: the remembered signature would refuse the inputs, so it is asked again first.
        exporter.export_part(_linear(4, "float64"), tmp_path, "evolving", version=3, allow_contract_change=True)
        assert serving.wait_until_available("evolving", version=3, timeout=60) == 3
        sent = len(counting.calls)
        third = serving.predict("evolving", {"x": np.ones((2, 4))})
        assert (third.version, third["embedding"].shape) == (3, (2, 1))
        assert counting.calls[sent:] == ["GetModelMetadata", "Predict"]


def test_the_cli_refuses_a_wrong_rank_in_one_line_before_sending(demo_server):
    from support import tfsk

    answer = tfsk("predict", "tower_c", "--input", "features=[1,2,3,4,5]", "--target", demo_server.address)
    assert answer.returncode != 0
    lines = answer.stderr.strip().splitlines()
    assert len(lines) == 1, answer.stderr
    assert ("input 'features' of model 'tower_c' (signature 'serving_default') takes float32[?,5]; sent "
            "float32[5]: rank 1, the signature's is 2") in lines[0]
    assert "node" not in answer.stderr  # no graph text from the server
    right = tfsk("predict", "tower_c", "--input", "features=[[1,2,3,4,5]]", "--target", demo_server.address)
    assert right.returncode == 0, right.stderr


def test_a_wait_that_times_out_says_its_duration_rounded(demo_server):
    with Client(demo_server.address) as serving, pytest.raises(client.WaitTimeoutError) as caught:
        serving.wait_until_available("tower_c", version=99, timeout=0.3141592653589793)
    assert "version 99 of tower_c was not AVAILABLE within 0.3s" in str(caught.value)
