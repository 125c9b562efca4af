"""Reloads: the label plan's phases (each validates), and what a diff says a reload does."""

import shutil

import pytest

from tfsk import serving_config as sc


@pytest.fixture
def models(demo_base, tmp_path):
    """Model 'a' with real SavedModel versions 1, 2, 3 (copies of the exported demo tower), mounted at /models."""
    for version in (1, 2, 3):
        shutil.copytree(demo_base / "tower_a" / "1", tmp_path / "a" / str(version))
    return sc.PathMapping.of(tmp_path, "/models")


def _config(policy="model_version_policy { specific { versions: 1 } }", labels=None, name="a"):
    label_text = " ".join(f"version_labels {{ key: '{k}' value: {v} }}" for k, v in (labels or {}).items())
    return sc.parse_model_server_config(
        f"model_config_list {{ config {{ name: '{name}' base_path: '/models/a' model_platform: 'tensorflow' "
        f"{policy} {label_text} }} }}")


def _policy(config, name="a"):
    return sc.VersionPolicy.from_model_config(sc.find_model(config, name))


def _labels(config, name="a"):
    return dict(sc.find_model(config, name).version_labels)


def test_moving_a_label_takes_load_then_label_then_drop(models):
    current = _config(labels={"stable": 1})
    plan = sc.plan_label_move(current, "a", "stable", 2, mapping=models, drop_old=True)
    assert plan.previous_version == 1 and [p.number for p in plan.phases] == [1, 2, 3]
    one, two, three = (p.config for p in plan.phases)
    assert _policy(one) == sc.VersionPolicy.specific([1, 2]) and _labels(one) == {"stable": 1}
    assert plan.phases[0].wait_for == 2
    assert _policy(two) == sc.VersionPolicy.specific([1, 2]) and _labels(two) == {"stable": 2}
    assert _policy(three) == sc.VersionPolicy.specific([2]) and _labels(three) == {"stable": 2}
    assert plan.ok and all(p.report.ok for p in plan.phases)
    # Each phase, validated on its own as the config following the previous one, passes too.
    before = current
    for phase in plan.phases:
        live = sc.ServerState(available=sc.aspired_versions(before, models), labels={"a": _labels(before)})
        assert sc.validate_model_server_config(phase.config, mapping=models, server=live).findings == ()
        before = phase.config
    # What each phase changes, and why the label cannot come first.
    assert [c.kind for c in plan.phases[0].changes] == ["policy", "versions"]
    assert [c.kind for c in plan.phases[1].changes] == ["label-moved"]
    assert [c.kind for c in plan.phases[2].changes] == ["policy", "versions"]
    assert plan.phases[2].changes[1].old == [1, 2] and plan.phases[2].changes[1].new == [2]
    shortcut = sc.diff_configs(current, two, mapping=models)
    assert [c.kind for c in shortcut.refused] == ["label-moved"]
    # The configs of the phases parse back from their text.
    assert sc.parse_model_server_config(plan.phases[1].text) == two


def test_a_label_moved_back_pins_a_latest_policy(models):
    current = _config("model_version_policy { latest { num_versions: 1 } }", {"stable": 3})
    plan = sc.plan_label_move(current, "a", "stable", 1, mapping=models, drop_old=True)
    assert _policy(plan.phases[0].config) == sc.VersionPolicy.specific([1, 3])
    assert any("pins specific [1, 3]" in note for note in plan.notes)
    assert _labels(plan.phases[1].config) == {"stable": 1}
    assert _policy(plan.phases[2].config) == sc.VersionPolicy.specific([1])
    assert plan.ok


def test_a_version_already_loaded_needs_no_policy_change(models):
    current = _config("model_version_policy { all {} }")
    plan = sc.plan_label_move(current, "a", "canary", 3, mapping=models, drop_old=True)
    assert plan.phases[0].config == current and plan.phases[0].changes == ()
    assert "no config change" in plan.phases[0].instructions
    assert [c.kind for c in plan.phases[1].changes] == ["label-added"]
    assert len(plan.phases) == 2 and any("label 'canary' is new" in n for n in plan.notes)
    assert plan.ok


def test_labelling_under_latest_pins_the_served_versions(models):
    current = sc.model_server_config([sc.model_config("a", "/models/a")])
    sc.find_model(current, "a").ClearField("model_version_policy")  # TF Serving's default: latest 1
    plan = sc.plan_label_move(current, "a", "canary", 3, mapping=models)
    # Version 3 is served already; pinning it keeps the label valid when version 4 is exported.
    assert _policy(plan.phases[0].config) == sc.VersionPolicy.specific([3])
    assert [c.kind for c in plan.phases[0].changes] == ["policy"]
    assert plan.ok and "pins specific [3]" in plan.notes[0]
    assert "label-on-latest" not in plan.phases[1].report.codes()


def test_a_specific_policy_already_loading_the_version_is_left_alone(models):
    current = _config("model_version_policy { specific { versions: 1 versions: 2 } }", {"stable": 1})
    plan = sc.plan_label_move(current, "a", "canary", 2, mapping=models)
    assert plan.phases[0].config == current and plan.phases[0].changes == ()
    assert "no config change" in plan.phases[0].instructions
    assert plan.ok and plan.notes == ()


def test_no_phase_three_while_another_label_names_the_old_version(models):
    current = _config("model_version_policy { specific { versions: 1 versions: 2 } }", {"stable": 1, "pinned": 1})
    plan = sc.plan_label_move(current, "a", "stable", 2, mapping=models, drop_old=True)
    assert len(plan.phases) == 2 and any("still named by label(s) ['pinned']" in n for n in plan.notes)


def test_nothing_to_do_when_the_label_already_names_the_version(models):
    plan = sc.plan_label_move(_config(labels={"stable": 1}), "a", "stable", 1, mapping=models)
    assert plan.phases == () and "nothing to do" in plan.notes[0]


@pytest.mark.parametrize("model, label, version, message", [
    ("b", "stable", 2, "model 'b' is not in the config (models: a)"),
    ("a", "stable", 9, "version 9 is not in '/models/a'"),
    ("a", "can-ary", 2, "invalid version label"),
])
def test_impossible_plans_say_why(models, model, label, version, message):
    with pytest.raises(sc.LabelPlanError) as caught:
        sc.plan_label_move(_config(), model, label, version, mapping=models)
    assert message in str(caught.value)


def test_an_incomplete_version_cannot_be_labelled(models):
    (models.host_root / "a" / "4").mkdir()
    with pytest.raises(sc.LabelPlanError, match=r"no saved_model\.pb"):
        sc.plan_label_move(_config(), "a", "stable", 4, mapping=models)


def test_latest_needs_the_folder_to_plan(models):
    with pytest.raises(sc.LabelPlanError, match="container path, give --host-root/--container-root"):
        sc.plan_label_move(_config("model_version_policy { latest {} }"), "a", "stable", 2)
    with pytest.raises(sc.LabelPlanError, match="cannot tell which versions policy latest 1 serves"):
        sc.plan_label_move(sc.model_server_config([sc.model_config("a", "s3://bucket/a")]), "a", "stable", 2)
    with pytest.raises(sc.LabelPlanError, match="read the model folder"):
        sc.plan_label_move(_config("model_version_policy { latest {} }"), "a", "stable", 2, check_disk=False)
    # A specific policy can be planned without the disk; the plan says it did not look.
    plan = sc.plan_label_move(_config(), "a", "stable", 2, check_disk=False)
    assert plan.ok and _policy(plan.phases[0].config) == sc.VersionPolicy.specific([1, 2])


def test_diff_models_added_and_removed(models):
    old = _config("model_version_policy { latest { num_versions: 2 } }")
    new = sc.model_server_config([sc.model_config("b", "/models/a", sc.VersionPolicy.specific([1]))])
    changes = sc.diff_configs(old, new, mapping=models).changes
    assert [(c.model, c.kind) for c in changes] == [("b", "model-added"), ("a", "model-removed")]
    assert "loads versions [1]" in changes[0].effect
    assert "unloads versions [2, 3]" in changes[1].effect and "NOT_FOUND" in changes[1].effect
    assert not any(c.refused for c in changes)


def test_diff_policy_base_path_and_labels(models):
    old = _config("model_version_policy { specific { versions: 1 versions: 2 } }", {"stable": 1, "old": 2})
    new = _config("model_version_policy { latest { num_versions: 1 } }", {"stable": 2, "canary": 1})
    sc.find_model(new, "a").base_path = "/models/a/"
    changes = {c.kind: c for c in sc.diff_configs(old, new, mapping=models).changes}
    assert set(changes) == {"base_path", "policy", "versions", "label-moved", "label-added", "label-removed"}
    assert (changes["policy"].old, changes["policy"].new) == ("specific [1, 2]", "latest 1")
    assert changes["versions"].effect == "loads versions [3]; unloads versions [1, 2] once the new ones are AVAILABLE"
    assert not changes["label-moved"].refused and not changes["label-added"].refused
    assert "Unrecognized servable version label: old" in changes["label-removed"].effect
    moved_to_unloaded = _config("model_version_policy { specific { versions: 1 versions: 3 } }", {"stable": 3})
    refused = sc.diff_configs(old, moved_to_unloaded, mapping=models).refused
    assert [(c.kind, c.new) for c in refused] == [("label-moved", "stable=3")]


def test_diff_new_labels_and_the_flag(models):
    old = _config("model_version_policy { specific { versions: 1 } }")
    new = _config("model_version_policy { specific { versions: 1 versions: 2 } }", {"canary": 2})
    assert [c.kind for c in sc.diff_configs(old, new, mapping=models).refused] == ["label-added"]
    assert not sc.diff_configs(old, new, mapping=models, allow_version_labels_for_unavailable_models=True).refused
    brand_new = sc.model_server_config([])
    assert [c.kind for c in sc.diff_configs(brand_new, new, mapping=models).refused] == ["label-added"]


def test_diff_refuses_platform_changes_and_config_kinds(models):
    old = _config()
    other = _config()
    sc.find_model(other, "a").model_platform = "tflite"
    platform = sc.diff_configs(old, other, check_disk=False)
    assert [c.kind for c in platform.refused] == ["platform"]
    assert "Illegal to change a model's platform" in platform.refused[0].effect
    to_empty = sc.diff_configs(old, sc.parse_model_server_config(""))
    assert [c.kind for c in to_empty.refused] == ["config-kind"]
    from_empty = sc.diff_configs(sc.parse_model_server_config(""), old, mapping=models)
    assert [c.kind for c in from_empty.changes] == ["model-added"] and not from_empty.refused
    assert sc.diff_configs(old, _config()).empty
