"""The client never loads TensorFlow, and TensorFlow still works in the same process afterwards."""

from support import python

SCRIPT = """
import sys, resource, time
start = time.perf_counter()
import numpy as np
from tfsk.client import Client
with Client(sys.argv[1]) as serving:
    result = serving.predict("tower_c", {"features": np.ones((2, 5), np.float32)})
    serving.metadata("composed"); serving.status("composed"); serving.parts("composed")
assert "tensorflow" not in sys.modules, sorted(m for m in sys.modules if m.startswith("tensorflow"))[:5]
print("first-answer-seconds", time.perf_counter() - start)
print("shape", result["embedding"].shape)

import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import predict_pb2
assert float(tf.reduce_sum(tf.constant([1.0, 2.0]))) == 3.0
proto = tf.make_tensor_proto(np.ones(3, np.float32))
assert tf.make_ndarray(tensor_pb2.TensorProto.FromString(proto.SerializeToString())).sum() == 3.0
request = predict_pb2.PredictRequest()
request.model_spec.name = "after"
print("tensorflow-ok", tf.__version__, request.model_spec.name)
"""


def test_client_calls_load_no_tensorflow_and_tensorflow_still_imports(demo_server):
    run = python(SCRIPT, demo_server.address, env={"TF_CPP_MIN_LOG_LEVEL": "3"})
    assert run.returncode == 0, run.stderr
    assert "shape (2, 32)" in run.stdout
    assert "tensorflow-ok" in run.stdout


def test_importing_the_client_and_its_cli_loads_no_tensorflow():
    run = python("import sys, tfsk.client, tfsk.cli.query, tfsk.cli; print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["False", "False"]
