"""Assembling the concatenated model from exported parts: real part SavedModels in, one out."""

import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from support import numeric_children, run_like_tf_serving, run_with_tf2_loader

from tfsk import exporter
from tfsk.demo import DEMO_TOWERS, build_head, demo_examples


def _composed_inputs():
    return {f"{part}__features": batch["features"] for part, batch in demo_examples(batch=5, seed=11).items()}


def _independent_prediction(base, inputs):
    """head(concat(parts)) from the part SavedModels, in plain TF and numpy, not via the composed graph."""
    features = []
    for part in DEMO_TOWERS:
        loaded = tf.saved_model.load(str(base / part / "1"))
        features.append(loaded.signatures["serving_default"](features=tf.constant(inputs[f"{part}__features"]))["embedding"].numpy())
    return build_head(96)(np.concatenate(features, axis=-1)).numpy(), features


def test_composed_output_equals_head_of_concatenated_parts(demo_base):
    inputs = _composed_inputs()
    expected, features = _independent_prediction(demo_base, inputs)
    for run in (run_like_tf_serving, run_with_tf2_loader):
        outputs = run(demo_base / "composed" / "1", "serving_default", inputs)
        assert set(outputs) == {"prediction", "tower_a__embedding", "tower_b__embedding", "tower_c__embedding"}
        np.testing.assert_allclose(outputs["prediction"], expected, atol=1e-6)
        for part, part_features in zip(DEMO_TOWERS, features):
            np.testing.assert_allclose(outputs[f"{part}__embedding"], part_features, atol=1e-6)
    assert expected.shape == (5, 1) and 0 < expected.min() and expected.max() < 1


def test_per_part_signatures_equal_the_standalone_parts(demo_base):
    for part in DEMO_TOWERS:
        batch = demo_examples(batch=3, seed=5)[part]
        standalone = run_like_tf_serving(demo_base / part / "1", "serving_default", batch)
        through_composed = run_like_tf_serving(demo_base / "composed" / "1", f"part_{part}", batch)
        assert list(through_composed) == ["embedding"]
        np.testing.assert_array_equal(through_composed["embedding"], standalone["embedding"])


def test_composed_version_serves_after_the_part_folders_are_deleted(demo_base, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(demo_base, copy)
    inputs = _composed_inputs()
    expected, _ = _independent_prediction(copy, inputs)
    for part in DEMO_TOWERS:
        shutil.rmtree(copy / part)
    assert sorted(p.name for p in copy.iterdir()) == ["composed"]
    outputs = run_like_tf_serving(copy / "composed" / "1", "serving_default", inputs)
    np.testing.assert_allclose(outputs["prediction"], expected, atol=1e-6)
    assert "part_tower_c" in tf.saved_model.load(str(copy / "composed" / "1")).signatures


def test_composed_lineage_names_the_part_versions_and_the_head(demo_base):
    lineage = exporter.read_lineage(demo_base / "composed" / "1")
    assert lineage["kind"] == "composed"
    assert [(p["name"], p["version"], p["signature"]) for p in lineage["parts"]] == [
        ("tower_a", 1, "part_tower_a"), ("tower_b", 1, "part_tower_b"), ("tower_c", 1, "part_tower_c")]
    assert all(p["exported"] and p["source"]["type"] == "python" for p in lineage["parts"])
    assert lineage["head"]["source"] == {"type": "factory", "factory": "tfsk.demo:build_head", "arguments": [96]}
    assert lineage["head"]["input_width"] == 96
    assert [(c["part"], c["width"]) for c in lineage["concatenation"]] == [("tower_a", 32), ("tower_b", 32), ("tower_c", 32)]
    assert sorted(lineage["signatures"]) == ["part_tower_a", "part_tower_b", "part_tower_c", "serving_default", "tfsk_lineage"]
    assert lineage["warmup_records"] == 4 and lineage["verification"]["warmup_records_replayed"] == 4


def _rank_three_part(base):
    inputs = keras.Input((6,), name="tokens")
    grid = keras.layers.Reshape((2, 3))(keras.layers.Dense(6)(inputs))
    return exporter.export_part(keras.Model(inputs, grid), base, "grid")


def _rank_one_part(base):
    inputs = keras.Input((4,), name="x")
    score = keras.layers.Reshape(())(keras.layers.Dense(1)(inputs))
    return exporter.export_part(keras.Model(inputs, score), base, "score")


def test_parts_of_other_ranks_are_flattened_before_concatenation(tmp_path):
    grid, score = _rank_three_part(tmp_path), _rank_one_part(tmp_path)
    assert grid.signatures["serving_default"].outputs["embedding"].shape == (None, 2, 3)
    assert score.signatures["serving_default"].outputs["embedding"].shape == (None,)
    head_in = keras.Input((7,), name="joined")
    head = keras.Model(head_in, keras.layers.Dense(1, kernel_initializer="ones")(head_in))
    result = exporter.export_composed(tmp_path, "joined", ["grid", "score@1"], head)
    inputs = {"grid__tokens": np.arange(12, dtype="float32").reshape(2, 6), "score__x": np.ones((2, 4), "float32")}
    outputs = run_like_tf_serving(result.path, "serving_default", inputs)
    grid_out = run_like_tf_serving(grid.path, "serving_default", {"tokens": inputs["grid__tokens"]})["embedding"]
    score_out = run_like_tf_serving(score.path, "serving_default", {"x": inputs["score__x"]})["embedding"]
    expected = head(np.concatenate([grid_out.reshape(2, 6), score_out.reshape(2, 1)], axis=-1)).numpy()
    np.testing.assert_allclose(outputs["prediction"], expected, atol=1e-5)
    assert outputs["grid__embedding"].shape == (2, 2, 3)


def test_latest_resolves_to_the_newest_complete_version(demo_base, tmp_path):
    base = tmp_path / "models"
    shutil.copytree(demo_base, base)
    (base / "tower_a" / "9").mkdir()  # incomplete: no saved_model.pb, must not be picked
    result = exporter.export_composed(base, "composed", ["tower_a@latest", "tower_b", "tower_c@1"], build_head(96))
    assert result.version == 2
    assert [p["version"] for p in result.lineage["parts"]] == [1, 1, 1]
    assert result.lineage["head"]["source"]["type"] == "python"


def test_a_missing_part_version_lists_the_available_ones(demo_base, tmp_path):
    with pytest.raises(exporter.PartNotFoundError, match=r"part 'tower_a' has no version 4 .*available versions: \[1\]"):
        exporter.export_composed(tmp_path, "c", ["tower_a@4"], build_head(32), parts_base=demo_base)
    with pytest.raises(exporter.PartNotFoundError, match=r"no exported part 'tower_z' .*models there: \['composed', 'tower_a'"):
        exporter.export_composed(tmp_path, "c", ["tower_z"], build_head(32), parts_base=demo_base)
    with pytest.raises(exporter.ExportError, match="version must be a positive integer or 'latest'"):
        exporter.export_composed(tmp_path, "c", ["tower_a@newest"], build_head(32), parts_base=demo_base)
    assert not (tmp_path / "c").exists()


def test_a_head_of_the_wrong_width_names_both_widths(demo_base, tmp_path):
    with pytest.raises(exporter.WidthMismatchError,
                       match=r"head takes input width 95 but the parts concatenate to width 96 \(tower_a.embedding 32 \+ "):
        exporter.export_composed(tmp_path, "c", ["tower_a", "tower_b", "tower_c"], build_head(95), parts_base=demo_base)
    assert not (tmp_path / "c").exists() or numeric_children(tmp_path / "c") == []


def test_a_part_named_twice_is_refused(demo_base, tmp_path):
    with pytest.raises(exporter.InputNamingError, match="two parts .* named 'tower_a'"):
        exporter.export_composed(tmp_path, "c", ["tower_a@1", "tower_a@latest"], build_head(64), parts_base=demo_base)


def test_a_head_from_a_keras_file(demo_base, tmp_path):
    path = tmp_path / "head.keras"
    build_head(96).save(path)
    result = exporter.export_composed(tmp_path / "out", "c", list(DEMO_TOWERS), str(path), parts_base=demo_base)
    assert result.lineage["head"]["source"]["type"] == "keras_file"
    inputs = _composed_inputs()
    expected, _ = _independent_prediction(demo_base, inputs)
    np.testing.assert_allclose(run_like_tf_serving(result.path, "serving_default", inputs)["prediction"], expected, atol=1e-6)


def test_the_lineage_signature_answers_over_the_serving_path(demo_base):
    """Clients read which part versions a composed version holds through a signature with no inputs."""
    import json

    outputs = run_like_tf_serving(demo_base / "composed" / "1", "tfsk_lineage", {})
    from_graph = json.loads(outputs["lineage"])
    from_file = exporter.read_lineage(demo_base / "composed" / "1")
    assert from_graph["parts"] == from_file["parts"] and from_graph["created"] == from_file["created"]
    assert from_graph["head"] == from_file["head"] and from_graph["kind"] == "composed"
    assert "verification" not in from_graph  # known only after the graph was written
