"""Every validation rule: a config that breaks it, and one that passes it. Real files, real protos."""

import pytest

from tfsk import serving_config as sc


def _version(root, model, name, complete=True):
    folder = root / model / name
    folder.mkdir(parents=True)
    if complete:
        (folder / "saved_model.pb").write_bytes(b"")
    return folder


def _one(name="m", base_path="/models/m", extra="", platform="model_platform: 'tensorflow'"):
    return sc.parse_model_server_config(
        f"model_config_list {{ config {{ name: '{name}' base_path: '{base_path}' {platform} {extra} }} }}")


def _codes(config, **kwargs):
    kwargs.setdefault("check_disk", False)
    return sc.validate_model_server_config(config, **kwargs).codes()


@pytest.fixture
def root(tmp_path):
    """A model root with m/1 and m/2 complete, served under /models in a container."""
    _version(tmp_path, "m", "1")
    _version(tmp_path, "m", "2")
    return tmp_path


@pytest.fixture
def mapping(root):
    return sc.PathMapping.of(root, "/models")


def test_parse_errors_give_line_and_column():
    with pytest.raises(sc.ConfigParseError) as caught:
        sc.parse_model_server_config("model_config_list {\n  config {\n    nam: 'x'\n  }\n}\n", source="models.config")
    error = caught.value
    assert (error.line, error.column) == (3, 5)
    assert "models.config:3:5" in str(error) and "did you mean 'name'" in str(error)
    with pytest.raises(sc.ConfigParseError) as caught:
        sc.parse_model_server_config("model_config_list { config { name: 'a' name: 'b' } }")
    assert caught.value.line == 1 and "multiple" in caught.value.reason
    report = sc.validate_text("model_config_list { config { name: 'a' ")
    assert report.codes() == {"parse-error"} and not report.ok
    assert "line 1, column" in report.findings[0].message


def test_duplicate_names(root, mapping):
    twice = sc.parse_model_server_config(
        "model_config_list { config { name: 'm' base_path: '/models/m' model_platform: 'tensorflow' } "
        "config { name: 'm' base_path: '/models/m' model_platform: 'tensorflow' } }")
    report = sc.validate_model_server_config(twice, mapping=mapping)
    assert [f.code for f in report.errors] == ["duplicate-name"]
    assert report.errors[0].server_message == "Illegal to list model m multiple times in config list"
    assert sc.validate_model_server_config(_one(), mapping=mapping).ok


@pytest.mark.parametrize("base_path", ["models/m", "", "./m", "~/m"])
def test_relative_base_path_is_an_error(base_path):
    report = sc.validate_model_server_config(_one(base_path=base_path))
    assert "relative-base-path" in {f.code for f in report.errors}
    assert f"got base_path()={base_path}" in report.errors[0].server_message


@pytest.mark.parametrize("base_path", ["/models/m", "s3://bucket/m", "s3://bucket", "gs://b/m", "file:///models/m"])
def test_absolute_paths_and_uris_pass(base_path):
    assert "relative-base-path" not in _codes(_one(base_path=base_path))
    assert not sc.is_relative_base_path(base_path)


def test_remote_uri_is_not_checked_but_says_so():
    report = sc.validate_model_server_config(_one(base_path="gs://bucket/m"))
    assert report.ok and report.codes() == {"not-checked"}
    # TF Serving has no S3 file system any more: the URI passes the config check, then every poll fails.
    report = sc.validate_model_server_config(_one(base_path="s3://bucket/m"))
    assert report.codes() == {"unsupported-file-system"}
    assert report.errors[0].server_message == (
        "Could not find base path s3://bucket/m for servable m with error UNIMPLEMENTED: File system scheme 's3' "
        "not implemented (file: 's3://bucket/m')")


@pytest.mark.parametrize("platform, code, severity", [
    ("", "missing-platform", "error"),
    ("model_type: TENSORFLOW", "deprecated-model-type", "warning"),
    ("model_type: TENSORFLOW model_platform: 'tensorflow'", "platform-and-model-type", "error"),
    ("model_type: OTHER", "unsupported-platform", "error"),
    ("model_platform: 'pytorch'", "unsupported-platform", "error"),
])
def test_platform_rules(platform, code, severity):
    report = sc.validate_model_server_config(_one(platform=platform), check_disk=False)
    assert [(f.code, f.severity.value) for f in report.findings] == [(code, severity)]


def test_tensorflow_platform_passes():
    assert _codes(_one()) == set()


def test_empty_name_is_an_error_and_odd_names_warn():
    assert "empty-name" in {f.code for f in sc.validate_model_server_config(_one(name=""), check_disk=False).errors}
    odd = sc.validate_model_server_config(_one(name="a/b"), check_disk=False)
    assert odd.ok and odd.codes() == {"model-name"} and "REST" in odd.findings[0].message


@pytest.mark.parametrize("label, severity", [("canary-1", "warning"), ("a/b", "error"), ("x:y", "error")])
def test_label_names_outside_the_documented_pattern(label, severity, root, mapping):
    config = _one(extra=f"model_version_policy {{ specific {{ versions: 1 }} }} "
                        f"version_labels {{ key: '{label}' value: 1 }}")
    server = sc.ServerState(available={"m": frozenset({1})})
    findings = [f for f in sc.validate_model_server_config(config, mapping=mapping, server=server).findings]
    assert [(f.code, f.severity.value) for f in findings] == [("label-name", severity)]


def test_label_on_an_available_version_passes(root, mapping):
    config = _one(extra="model_version_policy { specific { versions: 1 versions: 2 } } "
                        "version_labels { key: 'stable' value: 1 } version_labels { key: 'canary' value: 2 }")
    server = sc.ServerState(available={"m": frozenset({1, 2})})
    report = sc.validate_model_server_config(config, mapping=mapping, server=server)
    assert report.findings == ()


def test_label_for_a_version_not_on_disk(root, mapping):
    config = _one(extra="model_version_policy { all {} } version_labels { key: 'stable' value: 7 }")
    report = sc.validate_model_server_config(config, mapping=mapping)
    assert [f.code for f in report.errors] == ["label-version-missing"]
    assert "--allow_version_labels_for_unavailable_models" in report.errors[0].message
    flagged = sc.validate_model_server_config(config, mapping=mapping,
                                              allow_version_labels_for_unavailable_models=True)
    assert flagged.ok and flagged.codes() == {"label-version-missing"}


def test_label_for_a_version_the_policy_does_not_load(root, mapping):
    specific = _one(extra="model_version_policy { specific { versions: 2 } } version_labels { key: 'old' value: 1 }")
    report = sc.validate_model_server_config(specific, mapping=mapping)
    assert [f.code for f in report.errors] == ["label-not-loaded-by-policy"]
    assert "plan-label" in report.errors[0].action
    latest = _one(extra="model_version_policy { latest { num_versions: 1 } } version_labels { key: 'old' value: 1 }")
    report = sc.validate_model_server_config(latest, mapping=mapping)
    assert "label-not-loaded-by-policy" in {f.code for f in report.errors}


def test_labels_at_start_up_need_the_flag(root, mapping):
    config = _one(extra="model_version_policy { specific { versions: 1 } } version_labels { key: 'stable' value: 1 }")
    unknown = sc.validate_model_server_config(config, mapping=mapping)
    assert unknown.ok and unknown.codes() == {"label-needs-available"}
    startup = sc.validate_model_server_config(config, mapping=mapping, server=sc.ServerState.startup())
    assert [f.code for f in startup.errors] == ["label-unavailable"]
    assert startup.errors[0].server_message == (
        "Request to assign label to version 1 of model m, which is not currently available for inference")
    allowed = sc.validate_model_server_config(config, mapping=mapping, server=sc.ServerState.startup(),
                                              allow_version_labels_for_unavailable_models=True)
    assert allowed.findings == ()


def test_the_flag_never_lets_a_label_move_to_an_unloaded_version(root, mapping):
    config = _one(extra="model_version_policy { specific { versions: 1 versions: 2 } } "
                        "version_labels { key: 'stable' value: 2 }")
    server = sc.ServerState(available={"m": frozenset({1})}, labels={"m": {"stable": 1}})
    report = sc.validate_model_server_config(config, mapping=mapping, server=server,
                                             allow_version_labels_for_unavailable_models=True)
    assert [f.code for f in report.errors] == ["label-unavailable"]
    assert "never lets a label move" in report.errors[0].message


def test_labels_with_a_latest_policy_warn(root, mapping):
    config = _one(extra="model_version_policy { latest { num_versions: 2 } } version_labels { key: 'stable' value: 1 }")
    report = sc.validate_model_server_config(config, mapping=mapping, server=sc.ServerState(available={"m": {1, 2}}))
    assert report.ok and report.codes() == {"label-on-latest"}


def test_missing_base_path(tmp_path):
    report = sc.validate_model_server_config(_one(base_path=str(tmp_path / "nowhere")))
    assert [f.code for f in report.errors] == ["base-path-missing"]
    assert "waits forever" in report.errors[0].message
    assert f"--base {tmp_path} --name nowhere" in report.errors[0].action


def test_base_path_that_is_a_file(tmp_path):
    (tmp_path / "m").write_text("not a folder")
    assert [f.code for f in sc.validate_model_server_config(_one(base_path=str(tmp_path / "m"))).errors] == [
        "base-path-not-folder"]


def test_base_path_without_numeric_version_folders(tmp_path):
    (tmp_path / "m" / "v1").mkdir(parents=True)
    (tmp_path / "m" / ".tfsk-tmp-x").mkdir()
    report = sc.validate_model_server_config(_one(base_path=str(tmp_path / "m")))
    assert [f.code for f in report.errors] == ["no-versions"]
    assert "'v1'" in report.errors[0].message and "named by integers" in report.errors[0].action
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "saved_model.pb").write_bytes(b"")
    report = sc.validate_model_server_config(_one(base_path=str(bare)))
    assert "numeric version folder, e.g. <base_path>/1/" in report.errors[0].action


def test_version_folders_that_would_not_load(tmp_path):
    _version(tmp_path, "m", "1")
    _version(tmp_path, "m", "2", complete=False)
    report = sc.validate_model_server_config(_one(base_path=str(tmp_path / "m")))
    assert [f.code for f in report.errors] == ["version-incomplete"]
    assert "saved_model.pb" in report.errors[0].message
    (tmp_path / "m" / "2" / "saved_model.pb").write_bytes(b"")
    (tmp_path / "m" / "3").write_text("a file named like a version")
    report = sc.validate_model_server_config(_one(base_path=str(tmp_path / "m")))
    assert [f.code for f in report.errors] == ["version-not-folder"]
    # An incomplete version the policy does not select is not an error.
    (tmp_path / "m" / "3").unlink()
    _version(tmp_path, "m", "0", complete=False)
    assert sc.validate_model_server_config(_one(base_path=str(tmp_path / "m"))).ok


def test_real_exported_models_pass(demo_base):
    config = sc.model_server_config(
        sc.model_config(name, str(demo_base / name)) for name in ("tower_a", "tower_b", "tower_c", "composed"))
    report = sc.validate_model_server_config(config, server=sc.ServerState.startup())
    assert report.findings == ()


def test_container_paths_are_checked_in_the_mounted_host_folder(root, mapping):
    assert sc.validate_model_server_config(_one(base_path="/models/m/"), mapping=mapping).findings == ()
    missing = sc.validate_model_server_config(_one(base_path="/models/gone"), mapping=mapping)
    assert [f.code for f in missing.errors] == ["base-path-missing"]
    assert str(root / "gone") in missing.errors[0].message
    outside = sc.validate_model_server_config(_one(base_path="/elsewhere/m"), mapping=mapping)
    assert outside.ok and outside.codes() == {"not-checked"}
    assert "not under the container root '/models'" in outside.findings[0].message
    # A host config checked with the same mapping: its paths are under the host root, read as they are.
    assert sc.validate_model_server_config(_one(base_path=str(root / "m")), mapping=mapping).findings == ()


def test_specific_policy_rules(root, mapping):
    empty = _one(extra="model_version_policy { specific { } }")
    assert "specific-empty" in {f.code for f in sc.validate_model_server_config(empty, mapping=mapping).errors}
    some_missing = _one(extra="model_version_policy { specific { versions: 1 versions: 9 } }")
    report = sc.validate_model_server_config(some_missing, mapping=mapping)
    assert report.ok and report.codes() == {"specific-version-missing"}
    none_present = _one(extra="model_version_policy { specific { versions: 8 versions: 9 } }")
    report = sc.validate_model_server_config(none_present, mapping=mapping)
    assert [f.code for f in report.errors] == ["nothing-to-load"] and "[1, 2]" in report.errors[0].message
    repeated = _one(extra="model_version_policy { specific { versions: 1 versions: 1 } }")
    assert sc.validate_model_server_config(repeated, mapping=mapping).codes() == {"specific-repeated"}


def test_latest_zero_counts_as_one(root, mapping):
    zero = _one(extra="model_version_policy { latest { num_versions: 0 } }")
    report = sc.validate_model_server_config(zero, mapping=mapping)
    assert report.ok and report.codes() == {"latest-zero"}
    assert [v.version for v in sc.VersionPolicy.latest(0).aspired(
        sc.inspect_model_folder("/models/m", mapping).versions)] == [2]


def test_duplicate_version_folders_warn(tmp_path):
    _version(tmp_path, "m", "5")
    _version(tmp_path, "m", "005")
    report = sc.validate_model_server_config(_one(base_path=str(tmp_path / "m")))
    assert report.ok and report.codes() == {"duplicate-version"}
    assert "keeps '5'" in report.findings[0].message


def test_custom_and_empty_configs():
    custom = sc.parse_model_server_config("custom_model_config { type_url: 'x' }")
    report = sc.validate_model_server_config(custom)
    assert [f.code for f in report.errors] == ["custom-model-config"]
    empty = sc.validate_text("# nothing here\n")
    assert empty.ok and empty.codes() == {"no-models"}
    empty_list = sc.validate_model_server_config(sc.model_server_config([]))
    assert empty_list.ok and empty_list.codes() == {"no-models"}


def test_documented_style_text_parses_and_validates(tmp_path):
    for name, version in (("my_model", "42"), ("my_model", "43"), ("other", "1")):
        _version(tmp_path, name, version)
    text = f"""
    # as in TF Serving's serving_config.md: single quotes, one-line policy, labels
    model_config_list {{
      config {{
        name: 'my_model'
        base_path: '{tmp_path}/my_model/'
        model_platform: 'tensorflow'
        model_version_policy {{ specific {{ versions: 42 versions: 43 }} }}
        version_labels {{ key: 'stable' value: 42 }}
        version_labels {{ key: 'canary' value: 43 }}
      }}
      config {{
        name: 'other'
        base_path: '{tmp_path}/other'
        model_platform: 'tensorflow'
      }}
    }}
    """
    config = sc.parse_model_server_config(text)
    assert dict(sc.find_model(config, "my_model").version_labels) == {"stable": 42, "canary": 43}
    live = sc.ServerState(available={"my_model": frozenset({42, 43})})
    assert sc.validate_text(text, server=live).findings == ()
    # The same text as a start-up config: TF Serving refuses its labels.
    assert {f.code for f in sc.validate_text(text, server=sc.ServerState.startup()).errors} == {"label-unavailable"}


def test_raise_for_errors():
    report = sc.validate_model_server_config(_one(base_path="relative"), check_disk=False)
    with pytest.raises(sc.ConfigInvalidError) as caught:
        report.raise_for_errors()
    assert caught.value.report is report and "relative-base-path" in str(caught.value)
    sc.validate_model_server_config(_one(), check_disk=False).raise_for_errors()
