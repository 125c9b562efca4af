"""Contract guards: a new version keeps the serving contract of the newest one, or is not published."""

import json

import keras
import numpy as np
import pytest
from support import numeric_children, run_like_tf_serving, tfsk
from tiny_models import pooled_tower, tiny_head, tiny_tower

from tfsk import exporter


def _leftovers(model_dir):
    """Anything in the model folder but published versions and the lock file (e.g. a staging folder)."""
    return sorted(p.name for p in model_dir.iterdir() if not p.name.isdigit() and p.name != ".tfsk.lock")


def test_the_same_contract_publishes_and_records_the_comparison(tmp_path):
    exporter.export_part(tiny_tower(seed=1), tmp_path, "t")
    second = exporter.export_part(tiny_tower(seed=2), tmp_path, "t")
    assert second.version == 2
    assert second.lineage["contract"] == {"compared_with": 1, "changes": [], "allowed": False}
    assert json.loads((second.path / "assets.extra" / "tfsk_lineage.json").read_text())["contract"]["compared_with"] == 1


def test_a_renamed_input_is_refused_with_the_difference_and_nothing_is_published(tmp_path):
    exporter.export_part(tiny_tower(), tmp_path, "t")
    with pytest.raises(exporter.ContractChangeError) as caught:
        exporter.export_part(tiny_tower(input_name="x"), tmp_path, "t")
    message = str(caught.value)
    assert "breaks the serving contract of version 1" in message
    assert "signature 'serving_default' input 'features': removed (it was float32[?,3])" in message
    assert "signature 'serving_default' input 'x': added (float32[?,3])" in message
    assert "allow_contract_change=True" in message and "--allow-contract-change" in message
    assert caught.value.previous_version == 1 and len(caught.value.changes) == 2
    assert numeric_children(tmp_path / "t") == ["1"] and _leftovers(tmp_path / "t") == []


def test_allow_contract_change_publishes_and_records_what_changed(tmp_path):
    exporter.export_part(tiny_tower(), tmp_path, "t")
    result = exporter.export_part(tiny_tower(input_name="x"), tmp_path, "t", allow_contract_change=True)
    assert result.version == 2
    contract = result.lineage["contract"]
    assert contract["compared_with"] == 1 and contract["allowed"] is True
    assert any("input 'x': added" in change for change in contract["changes"])
    outputs = run_like_tf_serving(result.path, "serving_default", {"x": np.ones((1, 3), "float32")})
    assert outputs["embedding"].shape == (1, 2)


@pytest.mark.parametrize("changed, expected", [
    (lambda: tiny_tower(dtype="float64"), "input 'features': dtype float32 -> float64"),
    (lambda: tiny_tower(width=3), "output 'embedding': shape float32[?,2] -> float32[?,3]"),
    (lambda: tiny_tower(inputs=4), "input 'features': shape float32[?,3] -> float32[?,4]"),
])
def test_dtype_and_fixed_size_changes_are_refused(tmp_path, changed, expected):
    exporter.export_part(tiny_tower(), tmp_path, "t")
    with pytest.raises(exporter.ContractChangeError, match="breaks the serving contract") as caught:
        exporter.export_part(changed(), tmp_path, "t")
    assert expected in str(caught.value)
    assert numeric_children(tmp_path / "t") == ["1"]


def test_an_input_dimension_may_widen_to_any_size_but_not_narrow_back(tmp_path):
    exporter.export_part(pooled_tower(4), tmp_path, "p")
    widened = exporter.export_part(pooled_tower(None), tmp_path, "p")  # accepts every old request
    assert widened.version == 2 and widened.lineage["contract"]["changes"] == []
    with pytest.raises(exporter.ContractChangeError) as caught:
        exporter.export_part(pooled_tower(4), tmp_path, "p")
    assert "input 'features': shape float32[?,?,3] -> float32[?,4,3]" in str(caught.value)
    assert "may only widen from a fixed size to any size" in str(caught.value)
    assert "compared with" not in str(caught.value) and "of version 2" in str(caught.value)


def _two_outputs(names):
    features = keras.Input((3,), name="features")
    return keras.Model(features, {name: keras.layers.Dense(2, name=name)(features) for name in names})


def test_outputs_may_be_added_but_not_removed(tmp_path):
    exporter.export_part(_two_outputs(["a", "b"]), tmp_path, "m")
    added = exporter.export_part(_two_outputs(["a", "b", "c"]), tmp_path, "m")
    assert added.version == 2
    with pytest.raises(exporter.ContractChangeError) as caught:
        exporter.export_part(_two_outputs(["a", "c"]), tmp_path, "m")
    assert "signature 'serving_default' output 'b': removed (it was float32[?,2])" in str(caught.value)


def test_keras_generated_input_names_are_refused_unless_named(tmp_path):
    unnamed = keras.Input((3,))
    model = keras.Model(unnamed, keras.layers.Dense(2)(unnamed))
    with pytest.raises(exporter.InputNamingError) as caught:
        exporter.export_part(model, tmp_path, "t")
    message = str(caught.value)
    assert "named ['keras_tensor" in message and "by Keras, not by you" in message
    assert 'keras.Input(shape=(10,), name="features")' in message and "input_names=" in message
    # Saved and reloaded, Keras renames the same input after its layer: input_layer[_N].
    model.save(tmp_path / "unnamed.keras")
    with pytest.raises(exporter.InputNamingError, match=r"named \['input_layer(_\d+)?'\]"):
        exporter.export_part(tmp_path / "unnamed.keras", tmp_path, "t")
    assert not (tmp_path / "t").exists() or numeric_children(tmp_path / "t") == []
    result = exporter.export_part(tmp_path / "unnamed.keras", tmp_path, "t", input_names=["features"])
    assert list(result.signatures["serving_default"].inputs) == ["features"]


def _composed_base(tmp_path):
    exporter.export_part(tiny_tower(3, 2, seed=1), tmp_path, "a")
    exporter.export_part(tiny_tower(4, 3, seed=2), tmp_path, "b")
    exporter.export_composed(tmp_path, "c", ["a", "b"], tiny_head(5))
    return tmp_path


def test_a_reordered_composition_with_a_fresh_head_is_refused_with_both_layouts(tmp_path):
    base = _composed_base(tmp_path)
    with pytest.raises(exporter.ContractChangeError) as caught:
        exporter.export_composed(base, "c", ["b", "a"], tiny_head(5))
    message = str(caught.value)
    assert ("part layout [a.embedding 2, b.embedding 3] = 5 features -> "
            "[b.embedding 3, a.embedding 2] = 5 features (first difference at position 1)") in message
    assert "--allow-contract-change" in message
    assert numeric_children(base / "c") == ["1"] and _leftovers(base / "c") == []
    allowed = exporter.export_composed(base, "c", ["b", "a"], tiny_head(5), allow_contract_change=True)
    assert allowed.version == 2 and allowed.lineage["contract"]["allowed"] is True


def test_a_wider_part_in_a_composition_is_refused_as_a_contract_change(tmp_path):
    base = _composed_base(tmp_path)
    exporter.export_part(tiny_tower(3, 4, seed=3), base, "a", allow_contract_change=True)
    with pytest.raises(exporter.ContractChangeError) as caught:
        exporter.export_composed(base, "c", ["a", "b"], tiny_head(7))
    message = str(caught.value)
    assert "output 'a__embedding': shape float32[?,2] -> float32[?,4]" in message
    assert "[a.embedding 2, b.embedding 3] = 5 features -> [a.embedding 4, b.embedding 3] = 7 features" in message
    assert numeric_children(base / "c") == ["1"]


def test_the_command_line_refuses_then_allows_a_contract_change(tmp_path):
    tiny_tower().save(tmp_path / "v1.keras")
    tiny_tower(input_name="x").save(tmp_path / "v2.keras")
    models = tmp_path / "models"
    assert tfsk("export", "part", str(tmp_path / "v1.keras"), "--base", str(models), "--name", "t").returncode == 0
    refused = tfsk("export", "part", str(tmp_path / "v2.keras"), "--base", str(models), "--name", "t")
    assert refused.returncode == 1
    assert "input 'features': removed" in refused.stderr and "--allow-contract-change" in refused.stderr
    assert "Traceback" not in refused.stderr
    allowed = tfsk("export", "part", str(tmp_path / "v2.keras"), "--base", str(models), "--name", "t",
                   "--allow-contract-change")
    assert allowed.returncode == 0, allowed.stderr
    assert numeric_children(models / "t") == ["1", "2"]


def _spec(side, shape, dtype="float32"):
    tensor = {"t": exporter.TensorSpecInfo(dtype, shape)}
    return {"serving_default": exporter.SignatureSpec(**{side: tensor})}


@pytest.mark.parametrize("side, before, after, compatible", [
    ("inputs", (None, 3), (None, 3), True),
    ("inputs", (None, 3), (None, None), True),       # accepts more: old requests still fit
    ("inputs", (None, None), (None, 3), False),      # accepts less
    ("inputs", (None, 3), (None, 4), False),
    ("inputs", (None, 3), (None, 3, 1), False),      # rank
    ("inputs", (None, 3), None, True),               # unknown rank accepts everything
    ("inputs", None, (None, 3), False),
    ("outputs", (None, None), (None, 3), True),      # promises more: old readers still cope
    ("outputs", (None, 3), (None, None), False),     # a reader relying on width 3 breaks
    ("outputs", (None, 3), (None, 4), False),
    ("outputs", None, (None, 3), True),
    ("outputs", (None, 3), None, False),
])
def test_the_shape_rules_inputs_may_widen_outputs_may_narrow(side, before, after, compatible):
    changes = exporter.compare_signatures(_spec(side, before), _spec(side, after))
    assert (changes == []) is compatible, changes
    assert exporter.compare_signatures(_spec(side, before), _spec(side, before, dtype="int64")) != []
