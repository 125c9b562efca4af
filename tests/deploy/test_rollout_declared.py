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


def test_a_config_naming_a_missing_model_folder_is_refused_before_it_is_written_or_sent(tmp_path, demo_base):
    import shutil

    from tfsk import deploy

    shutil.copy(REPO / "tfsk.toml", tmp_path / "tfsk.toml")
    shutil.copytree(demo_base, tmp_path / "demo-models")
    declaration = sc.load_declaration(tmp_path / "tfsk.toml")
    sc.write_configs(declaration)
    written = (tmp_path / "demo-models" / "models.host.config").read_text()
    with open(tmp_path / "tfsk.toml", "a") as out:
        out.write('\n[models.ghost]\npolicy = "latest"\n')
    ghost = sc.load_declaration(tmp_path / "tfsk.toml")
    # TF Serving's reload would wait forever for the new model: nothing is sent (port 9 would not answer)
    with pytest.raises(deploy.ApplyError, match="ghost"):
        deploy.apply_declaration(ghost, deploy.Targets(("127.0.0.1:9",), "host", timeout=5), expect={})
    assert (tmp_path / "demo-models" / "models.host.config").read_text() == written
