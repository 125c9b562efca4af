"""ServerCore applies TF Serving's reload rules: nothing served changes on a refusal, and the stored
config is replaced before labels and platforms are checked (a quirk of ``server_core.cc`` kept on purpose)."""

import time

import grpc
import pytest
from google.protobuf import text_format

from tfsk._base.messages import ModelServerConfig
from tfsk.devserver._core import ServerCore
from tfsk.devserver._manager import VersionManager
from tfsk.devserver._status import StatusError


def config(*entries):
    return text_format.Parse("model_config_list { %s }" % " ".join(f"config {{ {e} }}" for e in entries),
                             ModelServerConfig())


@pytest.fixture
def core():
    def never_loads(name, version, path):
        raise StatusError.not_found("no model in this test")

    core = ServerCore(VersionManager(never_loads, max_load_retries=0, retry_interval_seconds=0),
                      allow_labels_for_unavailable=False, file_system_poll_seconds=-1)
    yield core
    core.stop()


def refusal(core, cfg, **kw):
    with pytest.raises(StatusError) as caught:
        core.reload_config(cfg, **kw)
    return caught.value.code, caught.value.message


def test_a_refused_platform_is_remembered_like_tf_serving(core, tmp_path):
    empty = config()
    empty.model_config_list.SetInParent()
    core.reload_config(empty)
    missing = tmp_path / "x"
    pytorch = config(f"name: 'x' base_path: '{missing}' model_platform: 'pytorch'")
    assert refusal(core, pytorch) == (grpc.StatusCode.INVALID_ARGUMENT, "Model x requests unsupported platform pytorch")
    assert core.config == empty and core.manager.models() == []  # nothing served changed
    tensorflow = config(f"name: 'x' base_path: '{missing}' model_platform: 'tensorflow'")
    # TF Serving stored the refused config, so it now compares platforms against it.
    assert refusal(core, tensorflow) == (grpc.StatusCode.INVALID_ARGUMENT, "Illegal to change a model's platform. For "
                                         "model x platform was pytorch and new platform requested is tensorflow")
    core.reload_config(empty)  # a config without x clears it
    code, message = refusal(core, tensorflow, deadline=time.monotonic() + 1)
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED and message.startswith("The config was applied, but model(s) x")
    assert core.waiting() == {"x": f"Could not find base path {missing} for servable x with error NOT_FOUND: "
                                    f"{missing} not found"}
    code, message = refusal(core, empty)
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "An earlier config reload (config file poll, " in message and "still waiting for model x" in message
