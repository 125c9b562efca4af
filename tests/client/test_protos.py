"""The client's own message declarations are TensorFlow's messages, field for field."""

import numpy as np
import pytest
import tensorflow as tf  # noqa: F401 - registers TensorFlow's messages in protobuf's default pool
from google.protobuf import descriptor_pool
from tensorflow.core.example import example_pb2  # noqa: F401
from tensorflow.core.protobuf import meta_graph_pb2  # noqa: F401
from tensorflow_serving.apis import (  # noqa: F401
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    predict_pb2,
    regression_pb2,
)

from client._protos import MESSAGES

# The one deliberate difference: a bytes field carries a serialized ModelServerConfig (same wire form).
DELIBERATE = {("tensorflow.serving.ReloadConfigRequest", "config")}


def _describe(field):
    target = field.message_type or field.enum_type
    return field.number, field.type, field.is_repeated, target.full_name if target else None, field.containing_oneof and field.containing_oneof.name


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_message_matches_tensorflows(name):
    ours = MESSAGES[name].DESCRIPTOR
    theirs = descriptor_pool.Default().FindMessageTypeByName(ours.full_name)
    for field in ours.fields:
        if (ours.full_name, field.name) in DELIBERATE:
            continue
        assert field.name in theirs.fields_by_name, f"{ours.full_name}.{field.name} is not TensorFlow's"
        assert _describe(field) == _describe(theirs.fields_by_name[field.name]), f"{ours.full_name}.{field.name}"
    for enum in ours.enum_types:
        assert {v.name: v.number for v in enum.values} == {v.name: v.number for v in theirs.enum_types_by_name[enum.name].values}


def test_bytes_cross_between_the_two_worlds():
    request = MESSAGES["PredictRequest"]()
    request.model_spec.name = "m"
    request.model_spec.version.value = 3
    request.inputs["x"].ParseFromString(tf.make_tensor_proto(np.ones((2, 2), np.float32)).SerializeToString())
    theirs = predict_pb2.PredictRequest.FromString(request.SerializeToString())
    assert theirs.model_spec.version.value == 3
    np.testing.assert_array_equal(tf.make_ndarray(theirs.inputs["x"]), np.ones((2, 2), np.float32))
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    config.model_config_list.config.add(name="m", base_path="/models/m", model_platform="tensorflow")
    reload = MESSAGES["ReloadConfigRequest"](config=config.SerializeToString(), metric_names=["a"])
    real = model_management_pb2.ReloadConfigRequest.FromString(reload.SerializeToString())
    assert real.config == config and list(real.metric_names) == ["a"]
