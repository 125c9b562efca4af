"""Exporting one Keras model: real SavedModels read back through TF Serving's loader and TF2's."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from support import numeric_children, run_like_tf_serving, run_with_tf2_loader
from tensorflow_serving.apis import prediction_log_pb2

from tfsk import exporter
from tfsk._base import layout
from tfsk.demo import build_tower, demo_examples


def _small_model(width=4, units=3, seed=0, name="small"):
    inputs = keras.Input((width,), name="x")
    outputs = keras.layers.Dense(units, kernel_initializer=keras.initializers.GlorotUniform(seed=seed))(inputs)
    return keras.Model(inputs, outputs, name=name)


def test_part_round_trips_through_both_loaders(tmp_path):
    model = build_tower("tower_a")
    batch = demo_examples()["tower_a"]
    result = exporter.export_part(model, tmp_path, "tower_a", examples=batch)

    assert result.version == 1 and result.path == tmp_path / "tower_a" / "1"
    expected = model(batch["features"]).numpy()
    for run in (run_like_tf_serving, run_with_tf2_loader):
        outputs = run(result.path, "serving_default", batch)
        assert set(outputs) == {"embedding"}
        np.testing.assert_allclose(outputs["embedding"], expected, atol=1e-6)


def test_part_signature_is_named_and_complete(tmp_path):
    result = exporter.export_part(build_tower("tower_c"), tmp_path, "tower_c")
    with tf.compat.v1.Session(graph=tf.Graph()) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(result.path))
    signatures = {k: v for k, v in meta_graph.signature_def.items() if not k.startswith("__")}
    assert sorted(signatures) == ["serving_default", "tfsk_lineage"]
    assert list(signatures["tfsk_lineage"].inputs) == [] and list(signatures["tfsk_lineage"].outputs) == ["lineage"]
    signature = signatures["serving_default"]
    assert signature.method_name == "tensorflow/serving/predict"
    assert list(signature.inputs) == ["features"] and list(signature.outputs) == ["embedding"]
    assert [d.size for d in signature.inputs["features"].tensor_shape.dim] == [-1, 5]
    assert signature.inputs["features"].dtype == tf.float32.as_datatype_enum
    assert "args_0" not in str(meta_graph.signature_def) and "output_0" not in str(meta_graph.signature_def)


def test_versions_count_up_and_explicit_versions_are_honoured(tmp_path):
    model = _small_model()
    assert exporter.export_part(model, tmp_path, "m").version == 1
    assert exporter.export_part(model, tmp_path, "m").version == 2
    assert exporter.export_part(model, tmp_path, "m", version=10).version == 10
    assert exporter.export_part(model, tmp_path, "m").version == 11
    assert numeric_children(tmp_path / "m") == ["1", "10", "11", "2"]
    assert not [p for p in (tmp_path / "m").iterdir() if p.name.startswith(".tfsk-tmp")]


@pytest.mark.parametrize("existing", ["3", "003"])
def test_an_existing_version_is_never_overwritten(tmp_path, existing):
    model = _small_model()
    first = exporter.export_part(model, tmp_path, "m", version=3)
    if existing == "003":
        first.path.rename(first.path.with_name("003"))
    before = {p: p.read_bytes() for p in (tmp_path / "m" / existing).rglob("*") if p.is_file()}
    with pytest.raises(exporter.VersionExistsError, match=r"version 3 of 'm' already exists .*never overwritten"):
        exporter.export_part(_small_model(seed=9), tmp_path, "m", version=3)
    after = {p: p.read_bytes() for p in (tmp_path / "m" / existing).rglob("*") if p.is_file()}
    assert before == after
    assert numeric_children(tmp_path / "m") == [existing]


def test_lineage_records_export_facts(tmp_path):
    result = exporter.export_part(build_tower("tower_b"), tmp_path, "tower_b", examples=demo_examples()["tower_b"])
    lineage = json.loads((result.path / "assets.extra" / "tfsk_lineage.json").read_text())
    assert lineage == exporter.read_lineage(result.path) == result.lineage
    assert lineage["kind"] == "part" and lineage["model"] == "tower_b"
    assert lineage["exported_by"]["tensorflow"] == tf.__version__
    assert lineage["exported_by"]["keras"] == keras.__version__
    assert lineage["source"] == {"type": "python", "class": "Functional", "name": "tower_b"}
    assert lineage["signatures"]["serving_default"]["inputs"]["features"] == {"dtype": "float32", "shape": [None, 10]}
    assert lineage["verification"]["warmup_records_replayed"] == 1
    assert lineage["created"].endswith("+00:00")


def test_warmup_file_holds_predict_logs_tf_serving_can_replay(tmp_path):
    batches = [{"x": np.full((2, 4), i, "float32")} for i in range(3)]
    result = exporter.export_part(_small_model(), tmp_path, "m", examples=batches)
    path = result.path / "assets.extra" / "tf_serving_warmup_requests"
    records = []
    for raw in tf.data.TFRecordDataset(str(path)):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(raw.numpy())
        records.append(log)
    assert len(records) == 3
    for i, log in enumerate(records):
        assert log.WhichOneof("log_type") == "predict_log"
        request = log.predict_log.request
        assert request.model_spec.name == "m" and request.model_spec.signature_name == "serving_default"
        np.testing.assert_array_equal(tf.make_ndarray(request.inputs["x"]), batches[i]["x"])
        run_like_tf_serving(result.path, "serving_default", {"x": tf.make_ndarray(request.inputs["x"])})


def test_no_examples_means_no_warmup_file_but_still_a_verified_export(tmp_path):
    result = exporter.export_part(_small_model(), tmp_path, "m")
    assert not (result.path / "assets.extra" / "tf_serving_warmup_requests").exists()
    assert result.lineage["verification"]["max_abs_difference"]["serving_default/embedding"] <= 1e-6


def test_multi_input_multi_output_model_keeps_its_names(tmp_path):
    left, right = keras.Input((3,), name="left"), keras.Input((2,), name="right", dtype="int32")
    merged = keras.layers.Concatenate()([left, keras.layers.Identity()(keras.ops.cast(right, "float32"))])
    model = keras.Model([left, right], [keras.layers.Dense(2, name="score")(merged), keras.layers.Dense(1, name="bias")(left)])
    result = exporter.export_part(model, tmp_path, "multi")
    spec = result.signatures["serving_default"]
    assert spec.inputs == {"left": exporter.TensorSpecInfo("float32", (None, 3)), "right": exporter.TensorSpecInfo("int32", (None, 2))}
    assert set(spec.outputs) == {"score", "bias"}
    inputs = {"left": np.ones((2, 3), "float32"), "right": np.ones((2, 2), "int32")}
    outputs = run_like_tf_serving(result.path, "serving_default", inputs)
    expected = model([inputs["left"], inputs["right"]])
    np.testing.assert_allclose(outputs["score"], expected[0], atol=1e-6)
    np.testing.assert_allclose(outputs["bias"], expected[1], atol=1e-6)


def test_dict_input_and_output_model_and_renamed_inputs(tmp_path):
    a = keras.Input((3,), name="query")
    model = keras.Model({"query": a}, {"logits": keras.layers.Dense(2)(a)})
    result = exporter.export_part(model, tmp_path, "dicts")
    assert list(result.signatures["serving_default"].inputs) == ["query"]
    assert list(result.signatures["serving_default"].outputs) == ["logits"]
    renamed = exporter.export_part(_small_model(), tmp_path, "renamed", input_names=["dense_in"], output_names=["score"])
    outputs = run_like_tf_serving(renamed.path, "serving_default", {"dense_in": np.ones((1, 4), "float32")})
    assert list(outputs) == ["score"]


class SubclassedTower(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(2, kernel_initializer="ones")

    def call(self, x):
        return self.dense(x)


def test_subclassed_model_needs_input_specs_and_then_exports(tmp_path):
    model = SubclassedTower()
    model(np.zeros((1, 3), "float32"))
    with pytest.raises(exporter.InputNamingError, match="cannot name the inputs.*pass input_specs"):
        exporter.export_part(model, tmp_path, "sub")
    assert not (tmp_path / "sub").exists() or numeric_children(tmp_path / "sub") == []
    result = exporter.export_part(model, tmp_path, "sub", input_specs={"features": ((None, 3), "float32")})
    outputs = run_like_tf_serving(result.path, "serving_default", {"features": np.ones((2, 3), "float32")})
    np.testing.assert_allclose(outputs["embedding"], np.full((2, 2), 3.0), atol=1e-6)


def test_unnamed_outputs_are_refused_rather_than_numbered(tmp_path):
    inputs = keras.Input((3,), name="x")
    model = keras.Model(inputs, [keras.layers.Dense(1)(inputs), keras.layers.Dense(1)(inputs)])
    model.output_names = []  # as a model whose output layers cannot be named
    with pytest.raises(exporter.InputNamingError, match="2 unnamed outputs; pass output_names"):
        exporter.export_part(model, tmp_path, "twins")
    result = exporter.export_part(model, tmp_path, "twins", output_names=["first", "second"])
    assert set(result.signatures["serving_default"].outputs) == {"first", "second"}


@pytest.mark.parametrize("name", ["../escape", "a/b", "", "..", "bad name"])
def test_bad_part_names_are_refused_before_anything_is_written(tmp_path, name):
    with pytest.raises(exporter.InvalidNameError, match="invalid part name"):
        exporter.export_part(_small_model(), tmp_path / "base", name)
    assert not (tmp_path / "base").exists()


def test_bad_input_names_are_refused(tmp_path):
    with pytest.raises(exporter.InputNamingError, match="input name 'has space' cannot be a signature name"):
        exporter.export_part(_small_model(), tmp_path, "m", input_names=["has space"])
    with pytest.raises(exporter.InputNamingError, match="1 input names were given for a model with 2 inputs"):
        left, right = keras.Input((1,), name="l"), keras.Input((1,), name="r")
        exporter.export_part(keras.Model([left, right], keras.layers.Add()([left, right])), tmp_path, "m", input_names=["x"])


def test_examples_that_do_not_fit_the_signature_are_refused(tmp_path):
    with pytest.raises(exporter.ExportError, match=r"has inputs \['y'\], expected \['x'\]"):
        exporter.export_part(_small_model(), tmp_path, "m", examples={"y": np.ones((1, 4))})
    with pytest.raises(exporter.ExportError, match=r"has shape \(1, 5\), the signature takes float32\[\?,4\]"):
        exporter.export_part(_small_model(), tmp_path, "m", examples={"x": np.ones((1, 5))})
    assert numeric_children(tmp_path / "m") == []


def test_keras_file_and_factory_sources(tmp_path):
    model = build_tower("tower_c")
    path = tmp_path / "tower_c.keras"
    model.save(path)
    from_file = exporter.export_part(str(path), tmp_path / "models", "from_file")
    assert from_file.lineage["source"]["type"] == "keras_file"
    assert len(from_file.lineage["source"]["sha256"]) == 64
    from_factory = exporter.export_part("support:tower_c_factory", tmp_path / "models", "from_factory")
    assert from_factory.lineage["source"] == {"type": "factory", "factory": "support:tower_c_factory", "arguments": []}
    x = {"features": np.ones((2, 5), "float32")}
    for result in (from_file, from_factory):
        outputs = run_like_tf_serving(result.path, "serving_default", x)
        np.testing.assert_allclose(outputs["embedding"], model(x["features"]), atol=1e-6)


def test_a_broken_keras_file_is_a_clear_error_and_writes_nothing(tmp_path):
    path = tmp_path / "broken.keras"
    path.write_bytes(b"this is not a zip archive")
    with pytest.raises(exporter.ModelSourceError, match=r"could not load .*broken.keras as a Keras model"):
        exporter.export_part(str(path), tmp_path / "models", "broken")
    with pytest.raises(exporter.ModelSourceError, match="no file at"):
        exporter.export_part(str(tmp_path / "missing.keras"), tmp_path / "models", "broken")
    with pytest.raises(exporter.ModelSourceError, match="cannot import module 'no_such_module'"):
        exporter.export_part("no_such_module:build", tmp_path / "models", "broken")
    assert not (tmp_path / "models").exists()


def test_a_model_that_computes_something_else_when_saved_is_not_published(tmp_path):
    inputs = keras.Input((4,), name="x")
    # Fresh noise on every call: the written graph can never reproduce the reference outputs.
    noisy = keras.layers.Lambda(lambda t: t + keras.random.normal(keras.ops.shape(t)))(inputs)
    model = keras.Model(inputs, noisy)
    exporter.export_part(_small_model(), tmp_path, "m")
    with pytest.raises(exporter.VerificationError, match="'serving_default' output 'embedding' differs from the source model"):
        exporter.export_part(model, tmp_path, "m", examples={"x": np.ones((3, 4), "float32")})
    assert numeric_children(tmp_path / "m") == ["1"]
    assert [p.name for p in (tmp_path / "m").iterdir() if p.name.startswith(".tfsk-tmp")] == []


def test_listing_shows_versions_signatures_and_problems(tmp_path):
    exporter.export_part(_small_model(), tmp_path, "m")
    exporter.export_part(_small_model(), tmp_path, "m")
    (tmp_path / "m" / "7").mkdir()  # a folder TF Serving would try (and fail) to load
    (models,) = exporter.list_models(tmp_path)
    assert models.name == "m"
    assert [v.version for v in models.versions] == [7, 2, 1]
    assert "no saved_model.pb" in models.versions[0].problem
    assert models.versions[1].signatures["serving_default"].inputs["x"].shape == (None, 4)
    assert models.versions[1].lineage["kind"] == "part"
    assert layout.list_versions(tmp_path / "m")[0].complete
