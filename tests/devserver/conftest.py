"""Fixture models for the conformance suite: half_plus_two and half_plus_three, built here the way
TF Serving's testdata script builds them (TF1 graph, tf.Example parsing, predict, classify and
regress signatures), in a version folder named 00000123."""

import pytest


def build_half_plus(path, a, b, c):
    """y = a*x + b; y2 = a*x + c; y3 = a*x2 + c, with the signatures of TF Serving's testdata."""
    import tensorflow as tf

    v1 = tf.compat.v1
    sig = v1.saved_model.signature_def_utils
    info = v1.saved_model.utils.build_tensor_info
    with tf.Graph().as_default(), v1.Session() as session:
        va, vb, vc = (v1.Variable(value, name=name) for value, name in ((a, "a"), (b, "b"), (c, "c")))
        serialized = v1.placeholder(tf.string, [None], name="tf_example")
        parsed = v1.io.parse_example(serialized, {"x": v1.io.FixedLenFeature([1], tf.float32),
                                                  "x2": v1.io.FixedLenFeature([1], tf.float32, default_value=[0.0])})
        x, x2 = tf.identity(parsed["x"], name="x"), tf.identity(parsed["x2"], name="x2")
        y = tf.add(tf.multiply(va, x), vb, name="y")
        y2 = tf.add(tf.multiply(va, x), vc, name="y2")
        y3 = tf.add(tf.multiply(va, x2), vc, name="y3")
        session.run(v1.global_variables_initializer())
        builder = v1.saved_model.Builder(str(path))
        builder.add_meta_graph_and_variables(
            session, ["serve"],
            signature_def_map={
                "serving_default": sig.predict_signature_def({"x": x}, {"y": y}),
                "classify_x_to_y": sig.classification_signature_def(serialized, None, y),
                "regress_x_to_y": sig.regression_signature_def(serialized, y),
                "regress_x_to_y2": sig.regression_signature_def(serialized, y2),
                # A float input named "inputs" (the helper insists on strings, TF Serving's testdata does not).
                "regress_x2_to_y3": sig.build_signature_def({"inputs": info(x2)}, {"outputs": info(y3)},
                                                            "tensorflow/serving/regress"),
            },
        )
        builder.save()


@pytest.fixture(scope="session")
def half_plus(tmp_path_factory):
    """Base folder holding half_plus_two/00000123 and half_plus_three/00000123."""
    base = tmp_path_factory.mktemp("half_plus")
    build_half_plus(base / "half_plus_two" / "00000123", 0.5, 2.0, 3.0)
    build_half_plus(base / "half_plus_three" / "00000123", 0.5, 3.0, 4.0)
    return base
