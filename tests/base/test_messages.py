"""The TF-free message declarations (tfsk._base.messages) are TensorFlow's and TF Serving's, field for field."""

import numpy as np
import pytest
import tensorflow as tf  # noqa: F401 - registers TensorFlow's messages in protobuf's default pool
from google.protobuf import descriptor_pool, text_format
from tensorflow.core.example import example_pb2  # noqa: F401
from tensorflow.core.protobuf import meta_graph_pb2  # noqa: F401
from tensorflow_serving.apis import (  # noqa: F401
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    logging_pb2,
    model_management_pb2,
    predict_pb2,
    prediction_log_pb2,
    regression_pb2,
)
from tensorflow_serving.config import (  # noqa: F401
    file_system_storage_path_source_pb2,
    logging_config_pb2,
    model_server_config_pb2,
)

from tfsk._base.messages import MESSAGES, ModelServerConfig

CONFIG_FILE = ModelServerConfig.DESCRIPTOR.file.name

# TF Serving declares these in protos its pip wheel does not ship (monitoring_config, ssl_config,
# session_bundle_config), so there is no descriptor of theirs to compare with in this process.
NOT_IN_THE_WHEELS = {"MonitoringConfig", "PrometheusConfig", "BatchingParameters", "SSLConfig"}


def _describe(field):
    target = field.message_type or field.enum_type
    return field.number, field.type, field.is_repeated, target.full_name if target else None, field.containing_oneof and field.containing_oneof.name


@pytest.mark.parametrize("name", sorted(set(MESSAGES) - NOT_IN_THE_WHEELS))
def test_message_matches_tensorflows(name):
    ours = MESSAGES[name].DESCRIPTOR
    _assert_same(ours, descriptor_pool.Default().FindMessageTypeByName(ours.full_name))


def _assert_same(ours, theirs):
    for field in ours.fields:
        assert field.name in theirs.fields_by_name, f"{ours.full_name}.{field.name} is not TensorFlow's"
        assert _describe(field) == _describe(theirs.fields_by_name[field.name]), f"{ours.full_name}.{field.name}"
    if ours.file.name == CONFIG_FILE:  # config files are read whole: every field TF Serving has must parse
        assert set(theirs.fields_by_name) == set(ours.fields_by_name), ours.full_name
    for enum in ours.enum_types:
        assert {v.name: v.number for v in enum.values} == {v.name: v.number for v in theirs.enum_types_by_name[enum.name].values}
    for nested in ours.nested_types:
        if not nested.GetOptions().map_entry:
            _assert_same(nested, theirs.nested_types_by_name[nested.name])


def test_config_messages_are_all_there():
    """A models.config using every ModelConfig field parses into the TF-free classes and back, byte for byte."""
    theirs = model_server_config_pb2.ModelServerConfig()
    model = theirs.model_config_list.config.add(name="m", base_path="/models/m", model_platform="tensorflow")
    model.model_version_policy.specific.versions.extend([1, 2])
    model.version_labels["stable"] = 2
    model.logging_config.sampling_config.sampling_rate = 0.5
    model.logging_config.sampling_config.per_task_sampling_configs.add(dc="x", task_index=0, sampling_rate=1.0)
    model.logging_config.log_collector_config.filename_prefix = "/tmp/log"
    ours = ModelServerConfig.FromString(theirs.SerializeToString())
    assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(deterministic=True)
    assert text_format.MessageToString(ours) == text_format.MessageToString(theirs)
    assert ours.model_config_list.config[0].logging_config.sampling_config.per_task_sampling_configs[0].HasField("task_index")


def test_bytes_cross_between_the_two_worlds():
    request = MESSAGES["PredictRequest"]()
    request.model_spec.name = "m"
    request.model_spec.version.value = 3
    request.inputs["x"].ParseFromString(tf.make_tensor_proto(np.ones((2, 2), np.float32)).SerializeToString())
    theirs = predict_pb2.PredictRequest.FromString(request.SerializeToString())
    assert theirs.model_spec.version.value == 3
    np.testing.assert_array_equal(tf.make_ndarray(theirs.inputs["x"]), np.ones((2, 2), np.float32))

    config = model_server_config_pb2.ModelServerConfig()
    config.model_config_list.config.add(name="m", base_path="/models/m", model_platform="tensorflow")
    reload = MESSAGES["ReloadConfigRequest"](metric_names=["a"])
    reload.config.ParseFromString(config.SerializeToString())
    real = model_management_pb2.ReloadConfigRequest.FromString(reload.SerializeToString())
    assert real.config == config and list(real.metric_names) == ["a"]
