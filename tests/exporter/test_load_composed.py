"""A served composed version back in Keras (issue 19 §3): parts keep their Keras models, load_composed
wires them to the stored head, and one retrained tower goes through `tfsk rollout` to the server."""

import hashlib
import json
import shutil
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from doc_snippets import marked_blocks, shell_commands
from support import run_like_tf_serving, tfsk
from tiny_models import tiny_head, tiny_tower

from tfsk import exporter

sys.path.insert(0, str(Path(__file__).parent.parent / "deploy"))  # the rollout tests' helpers
from test_rollout_support import composed_inputs, rollout_dir, start_replica  # noqa: E402

INPUTS = {"a__features": np.linspace(-1, 1, 6, dtype="float32").reshape(2, 3),
          "b__features": np.linspace(1, -1, 8, dtype="float32").reshape(2, 4)}


def renamed_tower():
    """A part whose own names are not its contract: model 'tower', Input 'x' (exported with input_names)."""
    x = keras.Input((4,), name="x")
    dense = keras.layers.Dense(3, kernel_initializer=keras.initializers.GlorotUniform(seed=2))
    return keras.Model(x, dense(x), name="tower")


@pytest.fixture(scope="module")
def composed_once(tmp_path_factory):
    """Parts a (3 -> 2) and b (4 -> 3, named differently inside) and composed c@1 with a head on their 5 features."""
    base = tmp_path_factory.mktemp("load-composed")
    exporter.export_part(tiny_tower(3, 2, seed=1, name="a"), base, "a")
    exporter.export_part(renamed_tower(), base, "b", input_names=["features"])
    exporter.export_composed(base, "c", ["a", "b"], tiny_head(5, seed=9))
    return base


@pytest.fixture
def base(composed_once, tmp_path):
    copy = tmp_path / "models"
    shutil.copytree(composed_once, copy)
    return copy


def _edit_lineage(version_dir, change):
    path = version_dir / "assets.extra" / "tfsk_lineage.json"
    lineage = json.loads(path.read_text())
    change(lineage)
    path.write_text(json.dumps(lineage))


def test_every_part_version_keeps_its_keras_model_with_its_checksum_and_signature_names(composed_once):
    version = composed_once / "b" / "1"
    recorded = exporter.read_lineage(version)["keras_file"]
    kept = version / "assets.extra" / "tfsk_part.keras"
    assert recorded["file"] == "tfsk_part.keras" and recorded["format"] == "keras"
    assert recorded["sha256"] == hashlib.sha256(kept.read_bytes()).hexdigest()
    assert (recorded["input_names"], recorded["output_names"]) == (["features"], ["embedding"])  # the contract's
    features = INPUTS["b__features"]
    served = run_like_tf_serving(version, "serving_default", {"features": features})["embedding"]
    np.testing.assert_allclose(keras.models.load_model(kept)(features).numpy(), served, atol=1e-6)
    composed = exporter.read_lineage(composed_once / "c" / "1")
    assert [p["keras_sha256"] for p in composed["parts"]] == [
        exporter.read_lineage(composed_once / name / "1")["keras_file"]["sha256"] for name in ("a", "b")]


def test_the_loaded_model_computes_what_the_composed_version_serves_with_parts_named_after_them(composed_once,
                                                                                                 tmp_path):
    model = exporter.load_composed(composed_once, "c@1")
    served = run_like_tf_serving(composed_once / "c" / "1", "serving_default", INPUTS)
    got = model(INPUTS)
    assert list(got) == ["prediction"]
    np.testing.assert_allclose(got["prediction"].numpy(), served["prediction"], atol=1e-6)
    assert {layer.name for layer in model.layers} >= {"a", "b", "head", "a__features", "b__features"}
    assert all(layer.trainable for layer in model.layers) and model.trainable_weights
    # Part b was 'tower' taking 'x': its sub-model takes the contract's names, so saved as it is and
    # exported again, it keeps b's serving contract (no contract change refused).
    tower = model.get_layer("b")
    np.testing.assert_allclose(tower(INPUTS["b__features"]).numpy(), served["b__embedding"], atol=1e-6)
    tower.save(tmp_path / "b.keras")
    again = exporter.export_part(tmp_path / "b.keras", composed_once.parent / "b-again", "b")
    assert again.lineage["signatures"]["serving_default"] == \
        exporter.read_lineage(composed_once / "b" / "1")["signatures"]["serving_default"]
    assert exporter.load_composed(composed_once, exporter.HeadRef("c")).count_params() == model.count_params()


def test_a_label_is_read_from_models_config_and_without_config_the_error_says_to_pass_it(base, tmp_path):
    config = tmp_path / "models.config"
    config.write_text(
        'model_config_list {\n  config {\n    name: "c"\n    base_path: "%s"\n    model_platform: "tensorflow"\n'
        '    version_labels { key: "stable" value: 1 }\n  }\n}\n' % (base / "c"))
    assert exporter.load_composed(base, "c@stable", config=config).name == "c"
    with pytest.raises(exporter.LoadComposedError, match=r"composed reference 'c@stable': 'stable' is a label.*"
                                                      r"pass config='models.config' \(or tfsk.toml\)"):
        exporter.load_composed(base, "c@stable")
    with pytest.raises(exporter.LoadComposedError, match=r"model 'c' has no label 'canary' \(its labels: \{'stable': 1\}"):
        exporter.load_composed(base, "c@canary", config=config)


def test_a_head_of_another_name_is_the_sub_model_head_and_still_answers_prediction(base):
    concatenated = keras.Input((5,), name="concatenated")
    scorer = keras.Model(concatenated, keras.layers.Dense(1, activation="sigmoid")(concatenated), name="scorer")
    result = exporter.export_composed(base, "c", ["a", "b"], scorer, allow_contract_change=True)
    model = exporter.load_composed(base, "c@2")
    assert model.get_layer("head").get_layer("scorer") is not None
    served = run_like_tf_serving(result.path, "serving_default", INPUTS)["prediction"]
    np.testing.assert_allclose(model(INPUTS)["prediction"].numpy(), served, atol=1e-6)


def test_a_part_exported_before_parts_kept_keras_models_is_named_with_the_commands_to_fix_it(base):
    _edit_lineage(base / "a" / "1", lambda lineage: lineage.pop("keras_file"))
    with pytest.raises(exporter.KerasModelNotStoredError) as caught:
        exporter.load_composed(base, "c@latest")
    assert str(caught.value).startswith("a@1 (used by c@1) was exported before tfsk kept part Keras models")
    assert "re-export it with 'tfsk export part', then 'tfsk export composed'" in str(caught.value)


def test_a_part_keras_cannot_save_is_exported_and_the_load_says_why_it_cannot(base):
    features = keras.Input((3,), name="features")
    doubled = keras.layers.Lambda(lambda x: x * 2.0)(features)  # a .keras file reloads it only unsafely
    result = exporter.export_part(keras.Model(features, keras.layers.Dense(2)(doubled)), base, "a")
    assert result.lineage["keras_file"]["file"] is None
    assert "part 'a' does not round-trip through a .keras file" in result.lineage["keras_file"]["not_stored"]
    assert not (result.path / "assets.extra" / "tfsk_part.keras").exists()
    exporter.export_composed(base, "c", ["a@2", "b@1"], "c@1")
    with pytest.raises(exporter.KerasModelNotStoredError, match=r"a@2 \(used by c@2\) keeps no Keras model: part 'a' "
                                                                r"does not round-trip.*then re-export it"):
        exporter.load_composed(base, "c@2")


def test_a_pruned_part_version_a_changed_file_and_another_part_version_are_refused(base, tmp_path):
    with pytest.raises(exporter.LoadComposedError, match=r"c@1 was built from a@1, but that part version is gone "
                                                         r"\(looked in .*elsewhere/a/1; pruned\?\).*parts_base="):
        exporter.load_composed(base, "c@1", parts_base=tmp_path / "elsewhere")
    kept = base / "a" / "1" / "assets.extra" / "tfsk_part.keras"
    original = kept.read_bytes()
    kept.write_bytes(b"tampered")
    with pytest.raises(exporter.KerasModelNotStoredError, match=r"a@1: .*tfsk_part.keras was changed after export"):
        exporter.load_composed(base, "c@1")
    kept.write_bytes(original)
    # a part folder holding another export under the same version number: not what c@1 serves
    _edit_lineage(base / "a" / "1", lambda lineage: lineage["keras_file"].update(sha256="0" * 64))
    with pytest.raises(exporter.KerasModelNotStoredError, match=r"a@1 in .* is not the part version c@1 was built "
                                                                r"from"):
        exporter.load_composed(base, "c@1")


def test_a_version_without_lineage_a_part_and_a_head_not_stored_are_refused(base):
    with pytest.raises(exporter.LoadComposedError, match=r"a@1 is a part version, not a composed one"):
        exporter.load_composed(base, "a@1")
    concatenated = keras.Input((5,), name="concatenated")
    head = keras.Model(concatenated, keras.layers.Dense(1)(keras.layers.Lambda(lambda x: x * 2.0)(concatenated)))
    exporter.export_composed(base, "c", ["a", "b"], head)
    with pytest.raises(exporter.KerasModelNotStoredError, match=r"c@2 stores no head \(the head does not round-trip"):
        exporter.load_composed(base, "c@2")
    (base / "c" / "1" / "assets.extra" / "tfsk_lineage.json").unlink()
    with pytest.raises(exporter.LoadComposedError, match=r"c@1 at .* has no tfsk lineage"):
        exporter.load_composed(base, "c@1")
    with pytest.raises(exporter.PartNotFoundError, match=r"composed model 'c' has no version 7"):
        exporter.load_composed(base, "c@7")


def tfsk_in(folder, *args):
    done = tfsk(*args, cwd=folder, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _weights(model):
    return {layer.name: [w.copy() for w in layer.get_weights()] for layer in model.layers if layer.weights}


def test_retrain_one_tower_against_the_served_head_and_roll_it_out(tmp_path, demo_base, monkeypatch):
    """The README's workflow on a running devserver: load stable, retrain tower_a, roll it out, serve it."""
    from tfsk.client import Client

    folder = rollout_dir(tmp_path, demo_base)  # tfsk.toml labels composed version 1 stable
    monkeypatch.chdir(folder)
    with start_replica(folder) as server, Client(server.address) as client:
        x = composed_inputs(server.address)
        served = client.predict("composed", x, label="stable")

        rng = np.random.default_rng(3)
        train_x = {k: rng.standard_normal((64, *v.shape[1:])).astype(v.dtype) for k, v in x.items()}
        train_y = rng.integers(0, 2, (64, 1)).astype("float32")
        as_served = exporter.load_composed("demo-models", "composed@stable", config="tfsk.toml")
        np.testing.assert_allclose(as_served(x)["prediction"].numpy(), served["prediction"], atol=1e-6)
        before = _weights(as_served)
        (language, code), (shell, commands) = marked_blocks("README.md", "retrain-one-tower")
        assert (language, shell) == ("python", "sh")
        namespace = {"train_x": train_x, "train_y": train_y}
        exec(compile(code, "README.md#retrain-one-tower", "exec"), namespace)  # the snippet, as written
        model = namespace["model"]
        after = _weights(model)
        changed = {name for name in before if not all(np.array_equal(b, a) for b, a in zip(before[name], after[name]))}
        assert changed == {"tower_a"}
        tuned = model(x)["prediction"].numpy()
        assert not np.allclose(tuned, served["prediction"], atol=1e-6)

        start, analyze, promote, finish = shell_commands(commands)  # as written, the target from $TFSK_TARGET
        assert start[0] == analyze[0] == promote[0] == finish[0] == "tfsk"
        monkeypatch.setenv("TFSK_TARGET", server.address)
        started = tfsk_in(folder, *start[1:])
        assert "canary -> composed version 2 (tower_a version 2)" in started
        canary = client.predict("composed", x, label="canary")
        assert canary.version == 2
        np.testing.assert_allclose(canary["prediction"], tuned, atol=1e-5)
        # the gate judges the retrain: it reports what moved, through tower_a alone; promote follows the verdict
        from tfsk import deploy

        judged = tfsk(*analyze[1:], cwd=folder, timeout=600)
        report = json.loads(deploy.gate_report_file(folder, "composed").read_text())
        assert judged.returncode == (0 if report["verdict"] == "pass" else 1), judged.stdout + judged.stderr
        assert report["moved_parts"] == ["tower_a"], report["moved"]
        promoted = tfsk(*promote[1:], cwd=folder, timeout=600)
        if report["verdict"] != "pass":  # as the README says: refused, then --force (recorded)
            assert promoted.returncode == 1 and "--force" in promoted.stderr, promoted.stdout + promoted.stderr
            tfsk_in(folder, *promote[1:], "--force")
        else:
            assert promoted.returncode == 0, promoted.stdout + promoted.stderr
        tfsk_in(folder, *finish[1:])
        stable = client.predict("composed", x, label="stable")
        assert stable.version == 2
        np.testing.assert_allclose(stable["prediction"], tuned, atol=1e-5)
        # and the new stable loads back as the tuned model (its tower_a is the retrained one)
        again = exporter.load_composed("demo-models", "composed@stable", config="tfsk.toml")
        np.testing.assert_allclose(again(x)["prediction"].numpy(), tuned, atol=1e-6)
