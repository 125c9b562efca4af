"""Reusing the head of a composed version: a new tower version keeps the trained head."""

import hashlib
import shutil

import keras
import numpy as np
import pytest
from support import numeric_children, run_like_tf_serving, tfsk
from tiny_models import tiny_head, tiny_tower

from tfsk import exporter

INPUTS = {"a__features": np.linspace(-1, 1, 6, dtype="float32").reshape(2, 3),
          "b__features": np.linspace(1, -1, 8, dtype="float32").reshape(2, 4)}


@pytest.fixture(scope="module")
def composed_once(tmp_path_factory):
    """Parts a (3 -> 2) and b (4 -> 3) and composed c@1 with a head on their 5 features."""
    base = tmp_path_factory.mktemp("head-reuse")
    exporter.export_part(tiny_tower(3, 2, seed=1), base, "a")
    exporter.export_part(tiny_tower(4, 3, seed=2), base, "b")
    exporter.export_composed(base, "c", ["a", "b"], tiny_head(5, seed=9))
    return base


@pytest.fixture
def base(composed_once, tmp_path):
    copy = tmp_path / "models"
    shutil.copytree(composed_once, copy)
    return copy


def _embedding(version_dir, features):
    return run_like_tf_serving(version_dir, "serving_default", {"features": features})["embedding"]


def test_every_composed_version_stores_its_head_recorded_in_the_lineage(composed_once):
    version = composed_once / "c" / "1"
    lineage = exporter.read_lineage(version)
    head_file = version / "assets.extra" / "tfsk_head.keras"
    assert lineage["head"]["file"] == "tfsk_head.keras"
    assert lineage["head"]["sha256"] == hashlib.sha256(head_file.read_bytes()).hexdigest()
    assert lineage["head"]["input_width"] == 5
    assert [(c["part"], c["width"]) for c in lineage["concatenation"]] == [("a", 2), ("b", 3)]
    # The stored head computes what the composed model's head computes.
    head = keras.models.load_model(head_file, compile=False)
    features = np.concatenate([_embedding(composed_once / "a" / "1", INPUTS["a__features"]),
                               _embedding(composed_once / "b" / "1", INPUTS["b__features"])], axis=-1)
    served = run_like_tf_serving(version, "serving_default", INPUTS)["prediction"]
    np.testing.assert_allclose(served, head(features).numpy(), atol=1e-6)


def test_a_new_tower_version_reuses_the_trained_head(base):
    exporter.export_part(tiny_tower(3, 2, seed=5), base, "a")  # a@2: new weights, same contract
    result = exporter.export_composed(base, "c", ["a@2", "b@1"], "c@1")
    assert result.version == 2
    assert result.lineage["head"]["source"]["type"] == "composed_version"
    assert (result.lineage["head"]["source"]["model"], result.lineage["head"]["source"]["version"]) == ("c", 1)
    old_head = keras.models.load_model(base / "c" / "1" / "assets.extra" / "tfsk_head.keras", compile=False)
    features = np.concatenate([_embedding(base / "a" / "2", INPUTS["a__features"]),
                               _embedding(base / "b" / "1", INPUTS["b__features"])], axis=-1)
    served = run_like_tf_serving(result.path, "serving_default", INPUTS)
    np.testing.assert_allclose(served["prediction"], old_head(features).numpy(), atol=1e-6)
    before = run_like_tf_serving(base / "c" / "1", "serving_default", INPUTS)
    assert not np.allclose(served["a__embedding"], before["a__embedding"])  # the tower really changed
    # The new version stores the head again: self-contained, reusable in turn (@latest).
    assert (result.path / "assets.extra" / "tfsk_head.keras").is_file()
    third = exporter.export_composed(base, "c", ["a@2", "b@1"], exporter.HeadRef("c"))
    assert third.lineage["head"]["source"]["version"] == 2


def test_reordered_parts_are_refused_for_a_reused_head_with_both_layouts(base):
    with pytest.raises(exporter.HeadReuseError) as caught:
        exporter.export_composed(base, "c", ["b", "a"], "c@1", allow_contract_change=True)
    message = str(caught.value)
    assert "the head of c@1 was built for [a.embedding 2, b.embedding 3] = 5 features" in message
    assert "the new parts lay out [b.embedding 3, a.embedding 2] = 5 features" in message
    assert numeric_children(base / "c") == ["1"]


def test_a_part_of_another_width_is_refused_for_a_reused_head(base):
    exporter.export_part(tiny_tower(3, 4, seed=3), base, "a", allow_contract_change=True)
    with pytest.raises(exporter.HeadReuseError, match=r"\[a.embedding 4, b.embedding 3\] = 7 features"):
        exporter.export_composed(base, "c", ["a", "b"], "c@latest")
    assert numeric_children(base / "c") == ["1"]


def test_head_references_that_cannot_be_used_say_why(base):
    assert exporter.HeadRef.parse("c@stable", {"stable": 1}) == exporter.HeadRef("c", 1)
    assert exporter.HeadRef.parse("c@latest") == exporter.HeadRef("c")
    with pytest.raises(exporter.HeadReuseError, match="labels live in models.config"):
        exporter.HeadRef.parse("c@stable")
    with pytest.raises(exporter.HeadReuseError, match=r"no label 'canary' \(its labels: \{'stable': 1\}\)"):
        exporter.HeadRef.parse("c@canary", {"stable": 1})
    with pytest.raises(exporter.PartNotFoundError, match=r"composed model 'c' has no version 7.*available versions: \[1\]"):
        exporter.export_composed(base, "c", ["a", "b"], "c@7")
    with pytest.raises(exporter.HeadReuseError, match="a@1 .* is not a composed version"):
        exporter.export_composed(base, "c", ["a", "b"], "a@1")
    (base / "c" / "1" / "assets.extra" / "tfsk_head.keras").write_bytes(b"tampered")
    with pytest.raises(exporter.HeadReuseError, match="changed after export"):
        exporter.export_composed(base, "c", ["a", "b"], "c@1")
    assert numeric_children(base / "c") == ["1"]


def test_the_command_line_resolves_a_label_from_models_config(base, tmp_path):
    config = tmp_path / "models.config"
    config.write_text(
        "model_config_list {\n  config {\n    name: \"c\"\n    base_path: \"%s\"\n    model_platform: \"tensorflow\"\n"
        "    model_version_policy { specific { versions: 1 } }\n    version_labels { key: \"stable\" value: 1 }\n"
        "  }\n}\n" % (base / "c")
    )
    done = tfsk("export", "composed", "--base", str(base), "--name", "c", "--part", "a", "--part", "b",
                "--head", "c@stable", "--config", str(config), "--json")
    assert done.returncode == 0, done.stderr
    assert numeric_children(base / "c") == ["1", "2"]
    assert exporter.read_lineage(base / "c" / "2")["head"]["source"]["version"] == 1
    unknown = tfsk("export", "composed", "--base", str(base), "--name", "c", "--part", "a", "--part", "b",
                   "--head", "c@canary", "--config", str(config))
    assert unknown.returncode == 1 and "no label 'canary'" in unknown.stderr and "Traceback" not in unknown.stderr


def test_a_head_that_cannot_round_trip_is_served_but_not_stored_for_reuse(base):
    concatenated = keras.Input((5,), name="concatenated")
    scaled = keras.layers.Lambda(lambda x: x * 2.0)(concatenated)  # a .keras file reloads it only unsafely
    head = keras.Model(concatenated, keras.layers.Dense(1)(scaled))
    result = exporter.export_composed(base, "c", ["a", "b"], head)
    assert result.lineage["head"]["file"] is None and "round-trip" in result.lineage["head"]["not_stored"]
    assert not (result.path / "assets.extra" / "tfsk_head.keras").exists()
    assert run_like_tf_serving(result.path, "serving_default", INPUTS)["prediction"].shape == (2, 1)
    with pytest.raises(exporter.HeadReuseError, match=r"c@2 stores no head \(the head does not round-trip"):
        exporter.export_composed(base, "c", ["a", "b"], "c@2")
