"""models.config written with the real ModelServerConfig proto: round trips, the policy model, the path mapping."""

from pathlib import Path, PurePosixPath

import pytest
from google.protobuf import text_format
from support import python
from tensorflow_serving.config import model_server_config_pb2

from tfsk import serving_config as sc
from tfsk._base.layout import list_versions


def test_write_then_parse_with_the_proto_is_equal(tmp_path):
    config = sc.model_server_config([
        sc.model_config("a", "/models/a", sc.VersionPolicy.latest(3)),
        sc.model_config("b", "/models/b", sc.VersionPolicy.all()),
        sc.model_config("c", "/models/c", sc.VersionPolicy.specific([4, 7]), {"stable": 4, "canary": 7}),
    ])
    path = tmp_path / "models.config"
    assert sc.write_model_server_config(config, path, header="made by a test\nsecond line") is True
    assert sc.write_model_server_config(config, path, header="made by a test\nsecond line") is False  # unchanged
    text = path.read_text()
    assert text.startswith("# made by a test\n# second line\nmodel_config_list {")
    # Parse with the official generated class and protobuf's own parser, not ours.
    official = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    assert type(config).FromString(official.SerializeToString()) == config  # another pool: compare through the bytes
    assert sc.read_model_server_config(path) == config
    for entry in official.model_config_list.config:
        assert entry.model_platform == "tensorflow"
    c = official.model_config_list.config[2]
    assert list(c.model_version_policy.specific.versions) == [4, 7]
    assert dict(c.version_labels) == {"stable": 4, "canary": 7}


def test_an_empty_list_is_still_a_list():
    text = sc.format_model_server_config(sc.model_server_config([]))
    assert sc.parse_model_server_config(text).WhichOneof("config") == "model_config_list"


def test_write_refuses_custom_configs(tmp_path):
    with pytest.raises(sc.ConfigError, match="custom_model_config"):
        sc.write_model_server_config(sc.parse_model_server_config("custom_model_config {}"), tmp_path / "x")


def test_writes_are_atomic_renames(tmp_path):
    path = tmp_path / "models.config"
    path.write_text("old")
    before = path.stat().st_ino
    sc.write_model_server_config(sc.model_server_config([sc.model_config("a", "/a")]), path)
    assert path.stat().st_ino != before  # a new file renamed over the old one, never rewritten in place
    assert [p.name for p in tmp_path.iterdir()] == ["models.config"]


@pytest.mark.parametrize("policy_text, policy", [
    ("", sc.VersionPolicy.latest(1)),
    ("model_version_policy {}", sc.VersionPolicy.latest(1)),
    ("model_version_policy { latest { num_versions: 3 } }", sc.VersionPolicy.latest(3)),
    ("model_version_policy { all {} }", sc.VersionPolicy.all()),
    ("model_version_policy { specific { versions: 2 versions: 5 } }", sc.VersionPolicy.specific([2, 5])),
])
def test_policy_from_the_proto_and_back(policy_text, policy):
    config = sc.parse_model_server_config(f"model_config_list {{ config {{ name: 'a' {policy_text} }} }}")
    read = sc.VersionPolicy.from_model_config(sc.find_model(config, "a"))
    assert read == policy
    rebuilt = sc.model_config("a", "/a", read)
    assert sc.VersionPolicy.from_model_config(rebuilt) == policy


def test_policies_select_what_the_file_system_source_selects(tmp_path):
    for name in ("1", "2", "3", "005", "5", "v9", ".tmp-7"):
        (tmp_path / name).mkdir()
    versions = list_versions(tmp_path)
    names = lambda chosen: [v.path.name for v in chosen]  # noqa: E731
    assert names(sc.VersionPolicy.latest(1).aspired(versions)) == ["5"]  # '5' > '005': the last name wins
    assert names(sc.VersionPolicy.latest(2).aspired(versions)) == ["3", "5"]
    # all: the source emits both 005 and 5; the manager keeps the first ('005') and refuses the second.
    assert names(sc.VersionPolicy.all().aspired(versions)) == ["1", "2", "3", "005"]
    assert names(sc.VersionPolicy.specific([2, 5, 8]).aspired(versions)) == ["2", "5"]
    assert sc.VersionPolicy.specific([]).aspired(versions) == []


def test_path_mapping_both_ways(tmp_path):
    mapping = sc.PathMapping.of(tmp_path, "/models/")
    assert mapping.container_root == PurePosixPath("/models")
    assert mapping.container_path("tower_a") == "/models/tower_a"
    assert mapping.to_host("/models/tower_a/") == tmp_path / "tower_a"
    assert mapping.to_host("/models") == tmp_path
    assert mapping.to_host("/models2/tower_a") is None and mapping.to_host("/other") is None
    assert mapping.to_container(tmp_path / "tower_a" / "1") == "/models/tower_a/1"
    assert mapping.to_container(tmp_path.parent) is None
    with pytest.raises(sc.ConfigError, match="not absolute"):
        sc.PathMapping.of(tmp_path, "models")


def test_the_package_never_imports_tensorflow():
    code = ("import sys\nfrom tfsk import serving_config\nimport tfsk.cli.config\n"
            "serving_config.validate_text(\"model_config_list { config { name: 'a' base_path: '/a' } }\")\n"
            "serving_config.format_batching_parameters(serving_config.BatchingSettings(max_batch_size=8))\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'numpy'))\n"
            "print(heavy)\n")
    result = python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_public_api_is_small_and_sorted():
    names = sc.__all__
    constants = [n for n in names if n.isupper()]
    classes = [n for n in names if n[0].isupper() and not n.isupper()]
    functions = [n for n in names if n[0].islower()]
    assert names == sorted(constants) + sorted(classes) + sorted(functions)
    assert all(hasattr(sc, n) for n in names)
    assert not [m for m in Path(sc.__file__).parent.glob("_*.py")
                if m.name != "__init__.py" and len(m.read_text().splitlines()) > 400]
