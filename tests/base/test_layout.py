"""The on-disk contract: which folder names TF Serving reads as versions, which names are safe."""

import pytest

from tfsk._base import layout


@pytest.mark.parametrize(
    "name, version",
    [("1", 1), ("123", 123), ("00000123", 123), ("+7", 7), ("-1", -1), (" 5 ", 5), ("\t9\n", 9),
     (str(2**63 - 1), 2**63 - 1)],
)
def test_names_tf_serving_parses_as_versions(name, version):
    assert layout.parse_version(name) == version


@pytest.mark.parametrize(
    "name", ["1.0", "1e3", "0x10", "v1", ".tmp123", "123_tmp", "", " ", "+", str(2**63), ".tfsk-tmp-host-1-ab", "1 2"]
)
def test_names_tf_serving_ignores(name):
    assert layout.parse_version(name) is None


def test_list_versions_counts_files_and_duplicates_like_tf_serving(tmp_path):
    (tmp_path / "5").mkdir()
    (tmp_path / "005").mkdir()
    (tmp_path / "7").write_text("a file still parses")
    (tmp_path / ".tfsk-tmp-x-1-2").mkdir()
    (tmp_path / "v3").mkdir()
    found = layout.list_versions(tmp_path)
    assert [(v.version, v.path.name) for v in found] == [(5, "005"), (5, "5"), (7, "7")]
    assert not any(v.complete for v in found)
    assert layout.list_versions(tmp_path / "missing") == []


@pytest.mark.parametrize("name", ["tower_a", "Tower-1", "a.b", "x"])
def test_good_model_names(name):
    assert layout.check_model_name(name) == name


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a\\b", "a b", "ü", "../x", "a:b"])
def test_bad_model_names(name):
    with pytest.raises(layout.InvalidNameError, match="invalid model name"):
        layout.check_model_name(name)


# Names where str.isdigit() (once used by the rollout, the prune and the export precheck) and TF
# Serving's integer rule disagree: TF Serving serves "+5" and " 5" as version 5 and never a "٣".
ISDIGIT_DISAGREES = {"+5": 5, " 5": 5, "٣": None, "٣٤": None, "²": None}


@pytest.mark.parametrize("name, version", ISDIGIT_DISAGREES.items())
def test_the_one_version_rule_where_isdigit_differs(name, version):
    assert name.isdigit() != (version is not None)
    assert layout.parse_version(name) == version


def test_every_reader_of_version_folders_takes_the_one_rule(tmp_path):
    from tfsk.deploy.rollout import _prune

    for name in ["1", "05", *ISDIGIT_DISAGREES, "v2"]:
        (tmp_path / name).mkdir()
    expected = [(1, "1"), (5, " 5"), (5, "+5"), (5, "05")]
    assert [(v.version, v.path.name) for v in layout.list_versions(tmp_path)] == expected
    assert [(v.version, v.path.name) for v in _prune._versions(tmp_path)] == expected


@pytest.mark.parametrize("text, version", [("5", 5), ("05", 5), ("+5", 5), ("٣", None), (" 5", None), ("0", None),
                                           ("-1", None), ("5x", None)])
def test_a_version_a_user_names(text, version):
    assert layout.parse_version_reference(text) == version
