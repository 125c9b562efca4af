"""tfsk.toml: one declaration, every config; the repository's demo declaration against a real export."""

import os
from pathlib import Path

import pytest
from support import REPO

from tfsk import serving_config as sc

DEMO_MODELS = ("tower_a", "tower_b", "tower_c", "composed")

DECLARATION = """
[paths]
host_root = "exported"
container_root = "/models"

[outputs]
models_config = "serving/models.config"

[models.ranker]
policy = "specific"
versions = [3, 1]
labels = { stable = 1, canary = 3 }

[models.tower]
folder = "parts/tower"
policy = "all"

[models.head]

[monitoring]
path = "/metrics"

[batching]
max_batch_size = 16
allowed_batch_sizes = [4, 16]
pad_variable_length_inputs = true
"""


def test_one_declaration_gives_container_and_host_configs(tmp_path):
    declaration = sc.parse_declaration(DECLARATION, tmp_path)
    container = declaration.model_server_config("container")
    host = declaration.model_server_config("host")
    assert [m.base_path for m in sc.model_entries(container)] == [
        "/models/ranker", "/models/parts/tower", "/models/head"]
    assert [m.base_path for m in sc.model_entries(host)] == [
        str(tmp_path / "exported" / "ranker"), str(tmp_path / "exported" / "parts" / "tower"),
        str(tmp_path / "exported" / "head")]
    # Apart from the base paths, the two configs are the same message.
    for model in sc.model_entries(host):
        model.base_path = declaration.mapping.to_container(model.base_path)
    assert host == container
    ranker = sc.find_model(container, "ranker")
    assert sc.VersionPolicy.from_model_config(ranker) == sc.VersionPolicy.specific([1, 3])
    assert dict(ranker.version_labels) == {"canary": 3, "stable": 1}
    assert sc.VersionPolicy.from_model_config(sc.find_model(container, "head")) == sc.VersionPolicy.latest(1)
    assert all(m.model_platform == "tensorflow" for m in sc.model_entries(container))
    assert declaration.monitoring == sc.MonitoringSettings(True, "/metrics")
    assert declaration.batching == sc.BatchingSettings(max_batch_size=16, allowed_batch_sizes=(4, 16),
                                                       pad_variable_length_inputs=True)


def test_write_configs_writes_every_file_and_they_parse(tmp_path):
    declaration = sc.parse_declaration(DECLARATION, tmp_path)
    written = {(r.kind, r.target): r for r in sc.write_configs(declaration)}
    assert set(written) == {("models", "container"), ("models", "host"), ("monitoring", None), ("batching", None)}
    container = written["models", "container"]
    assert container.path == tmp_path / "serving" / "models.config" and container.container_path is None
    assert written["models", "host"].path == tmp_path / "exported" / "models.host.config"
    assert written["monitoring", None].container_path == "/models/monitoring.config"
    assert sc.read_model_server_config(container.path) == declaration.model_server_config("container")
    assert sc.read_model_server_config(written["models", "host"].path) == declaration.model_server_config("host")
    assert sc.read_monitoring_config(written["monitoring", None].path) == declaration.monitoring
    assert sc.read_batching_parameters(written["batching", None].path) == declaration.batching
    assert "Do not edit" in container.path.read_text()
    again = sc.write_configs(declaration)
    assert not any(r.changed for r in again)
    dry = sc.write_configs(sc.parse_declaration(DECLARATION.replace("/metrics", "/m2"), tmp_path), dry_run=True)
    assert [r.kind for r in dry if r.changed] == ["monitoring"]
    assert sc.read_monitoring_config(written["monitoring", None].path).prometheus_path == "/metrics"  # untouched


@pytest.mark.parametrize("old, new, message", [
    ('container_root = "/models"', 'container_root = "models"', "[paths] container_root"),
    ('folder = "parts/tower"', 'folder = "../outside"', "[models.tower] folder"),
    ('versions = [3, 1]', 'versions = []', "[models.ranker] versions"),
    ('versions = [3, 1]', 'versions = [3, 3]', "lists a version twice"),
    ('labels = { stable = 1, canary = 3 }', 'labels = { stable = 2 }', "never loads"),
    ('path = "/metrics"', 'path = "/metrics"\nprometheus_path = "/x"', "[monitoring]: unknown key(s) prometheus_path"),
    ('max_batch_size = 16', 'max_batch_size = "16"', "[batching].max_batch_size: must be int"),
    ('[models.head]', '[models.head]\nversion = 3', "unknown key(s) version"),
    ('models_config = "serving/models.config"', 'models_config = "exported/models.host.config"', "different files"),
])
def test_declaration_mistakes_name_the_key(tmp_path, old, new, message):
    assert old in DECLARATION
    with pytest.raises(sc.DeclarationError) as caught:
        sc.parse_declaration(DECLARATION.replace(old, new), tmp_path)
    assert message in str(caught.value)


_GATE = "[paths]\nhost_root='x'\ncontainer_root='/m'\n[models.a]\n[rollout.gate]\n"


@pytest.mark.parametrize("text, message", [
    ("[paths\n", "not valid TOML"),
    ("[models.a]\n", "[paths]"),
    ("[paths]\nhost_root='x'\ncontainer_root='/m'\n", "declares no model"),
    ("[paths]\nhost_root='x'\ncontainer_root='/m'\n[models.'a/b']\n", "invalid model name"),
    ("[paths]\nhost_root='x'\ncontainer_root='/m'\n[models.a]\npolicy='newest'\n", "not a policy"),
    ("[paths]\nhost_root='x'\ncontainer_root='/m'\n[models.a]\nnum_versions=2\npolicy='all'\n", "only applies"),
    ("[paths]\nhost_root='x'\ncontainer_root='/m'\n[models.a]\nlabels={'can-ary'=1}\n", "invalid version label"),
    ("[paths]\nhost_root='x'\ncontainer_root='/m'\n[models.a]\nnum_versions=0\n", "must be >= 1"),
    ("[paths]\nhost_root='x'\ncontainer_root='/m'\n[models.a]\nlabels={a=true}\n", "must be int"),
    (_GATE + "max_flips = 0.1\n", "[rollout.gate]: unknown key(s) max_flips; known: decision_threshold"),
    (_GATE + "max_flip_rate = 2\n", "max_flip_rate must be between 0 and 1, got 2.0"),
    (_GATE + "max_psi = 'small'\n", "[rollout.gate] max_psi: must be a number, got 'small'"),
    (_GATE + "requests = 0\n", "requests must be 1 or more"),
    (_GATE + "requests = 2.5\n", "[rollout.gate] requests: must be int"),
    (_GATE + "outputs = 'heads'\n", 'outputs must be "head" or "all"'),
    (_GATE + "min_rank_agreement = true\n", "must be a number, got True"),
    ("[paths]\nhost_root='x'\ncontainer_root='/m'\n[models.a]\n[rollout]\ngates = 1\n", "[rollout]: unknown key(s) gates"),
])
def test_more_declaration_mistakes(tmp_path, text, message):
    with pytest.raises(sc.DeclarationError) as caught:
        sc.parse_declaration(text, tmp_path)
    assert message in str(caught.value)


def test_gate_thresholds_have_defaults_and_take_what_is_declared(tmp_path):
    assert sc.parse_declaration(DECLARATION, tmp_path).gate == sc.GateSettings()
    declared = sc.parse_declaration(_GATE + "latency_p99_ratio = 2\nmax_psi = 0.1\noutputs = 'all'\n", tmp_path)
    assert declared.gate.latency_p99_ratio == 2.0 and isinstance(declared.gate.latency_p99_ratio, float)
    assert (declared.gate.max_psi, declared.gate.outputs) == (0.1, "all")
    assert declared.gate.max_flip_rate == sc.GateSettings().max_flip_rate  # the rest keep their defaults


def test_missing_declaration_file_says_what_to_do(tmp_path):
    with pytest.raises(sc.DeclarationError, match="--declaration"):
        sc.load_declaration(tmp_path / "tfsk.toml")


def test_the_repository_ships_the_demo_declaration():
    declaration = sc.load_declaration(REPO / "tfsk.toml")
    assert [m.name for m in declaration.models] == list(DEMO_MODELS)
    assert declaration.mapping.host_root == REPO / "demo-models"
    assert str(declaration.mapping.container_root) == "/models"
    # Pitfall 9: labels in a start-up config stop TF Serving from starting.
    assert not any(m.labels for m in declaration.models)
    assert declaration.monitoring is not None and sc.validate_monitoring_settings(declaration.monitoring).ok
    assert declaration.batching is not None and sc.validate_batching_settings(declaration.batching).ok
    assert declaration.gate == sc.GateSettings()  # tfsk.toml shows the defaults, commented


def test_the_demo_declaration_points_at_the_exported_demo(demo_base, tmp_path):
    """Copy tfsk.toml beside a demo-models folder holding the real export, write, and check every path."""
    (tmp_path / "tfsk.toml").write_text((REPO / "tfsk.toml").read_text())
    (tmp_path / "demo-models").mkdir()
    for name in DEMO_MODELS:  # links, so the shared export stays untouched
        os.symlink(demo_base / name, tmp_path / "demo-models" / name)
    declaration = sc.load_declaration(tmp_path / "tfsk.toml")
    written = {(r.kind, r.target): r for r in sc.write_configs(declaration)}

    host = sc.read_model_server_config(written["models", "host"].path)
    for model in sc.model_entries(host):
        assert Path(model.base_path).is_absolute()
        folder = sc.inspect_model_folder(model.base_path)
        assert folder.is_dir and [v.version for v in folder.versions] == [1] and folder.versions[0].complete
    container = sc.read_model_server_config(written["models", "container"].path)
    for model in sc.model_entries(container):
        assert model.base_path == f"/models/{model.name}"
        assert declaration.mapping.to_host(model.base_path).resolve() == (demo_base / model.name).resolve()
    assert written["models", "container"].container_path == "/models/models.config"

    startup = sc.ServerState.startup()
    assert sc.validate_file(written["models", "host"].path, server=startup).findings == ()
    assert sc.validate_file(written["models", "container"].path, mapping=declaration.mapping,
                            server=startup).findings == ()
    assert sc.validate_file(written["monitoring", None].path).findings == ()
    assert sc.validate_file(written["batching", None].path).findings == ()
    assert sc.aspired_versions(container, declaration.mapping) == {name: frozenset({1}) for name in DEMO_MODELS}
