"""Pruning old versions: newest N kept, protected kept, newest never deleted."""

import keras
import pytest
from support import assert_every_version_loads, numeric_children

from tfsk import exporter


@pytest.fixture
def five_versions(tmp_path):
    inputs = keras.Input((2,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    for _ in range(5):
        exporter.export_part(model, tmp_path, "m")
    return tmp_path


def test_prune_keeps_the_newest_and_the_protected(five_versions):
    result = exporter.prune_versions(five_versions, "m", keep=2, protect=[1])
    assert result.kept == [1, 4, 5] and result.removed == [2, 3] and not result.dry_run
    assert numeric_children(five_versions / "m") == ["1", "4", "5"]
    assert [p.name for p in (five_versions / "m").iterdir() if p.name.startswith(".tfsk-trash")] == []
    assert_every_version_loads(five_versions / "m")


def test_dry_run_deletes_nothing(five_versions):
    result = exporter.prune_versions(five_versions, "m", keep=1, dry_run=True)
    assert result.removed == [1, 2, 3, 4] and result.dry_run
    assert numeric_children(five_versions / "m") == ["1", "2", "3", "4", "5"]


def test_the_newest_version_is_never_deleted(five_versions):
    with pytest.raises(exporter.ExportError, match="keep must be at least 1"):
        exporter.prune_versions(five_versions, "m", keep=0)
    assert exporter.prune_versions(five_versions, "m", keep=1).kept == [5]
    assert numeric_children(five_versions / "m") == ["5"]


def test_prune_refuses_unknown_models_and_versions(five_versions):
    with pytest.raises(exporter.ExportError, match=r"protected versions \[9\] are not on disk"):
        exporter.prune_versions(five_versions, "m", keep=1, protect=[9])
    with pytest.raises(exporter.ExportError, match="no model 'nope'"):
        exporter.prune_versions(five_versions, "nope", keep=1)
    with pytest.raises(exporter.InvalidNameError):
        exporter.prune_versions(five_versions, "../m", keep=1)
    assert numeric_children(five_versions / "m") == ["1", "2", "3", "4", "5"]
