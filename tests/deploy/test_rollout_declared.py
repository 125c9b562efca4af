"""tfsk.toml as a rollout records it: the versions to keep and the labels, with the user's file otherwise intact."""

import pytest

from support import REPO
from tfsk import serving_config as sc


def test_record_versions_keeps_comments_and_layout_and_refuses_what_the_tools_refuse(tmp_path):
    path = tmp_path / "tfsk.toml"
    original = (REPO / "tfsk.toml").read_text()
    path.write_text(original)
    declaration = sc.record_versions(sc.load_declaration(path), "composed", [3, 1], {"stable": 1, "canary": 3})
    text = path.read_text()
    model = declaration.model("composed")
    assert model.policy == sc.VersionPolicy.specific([1, 3]) and model.label_map == {"stable": 1, "canary": 3}
    assert sc.load_declaration(path) == declaration
    # every line of the user's file but the composed model's policy is still there, comments included
    kept = [line for line in original.splitlines() if line not in ('policy = "latest"', "num_versions = 2")]
    assert [line for line in text.splitlines() if line in kept] == kept
    assert 'versions = [1, 3]' in text and 'labels = {canary = 3, stable = 1}' in text
    assert text.count("num_versions = 1") == 3  # the parts' tables are untouched
    # a second record that changes nothing leaves the file alone
    before = path.stat().st_mtime_ns
    assert sc.record_versions(declaration, "composed", [1, 3], {"canary": 3, "stable": 1}) is declaration
    assert path.stat().st_mtime_ns == before
    # a label on a version the policy does not keep is refused before anything is written
    with pytest.raises(sc.DeclarationError, match="never loads"):
        sc.record_versions(declaration, "composed", [1], {"stable": 3})
    assert path.read_text() == text
    with pytest.raises(sc.DeclarationError, match="not declared"):
        sc.record_versions(declaration, "nope", [1], {})
