"""The devserver and the config validator agree on TF Serving's rules, verdict for verdict.

Each case is a models.config and a folder layout on a real temporary file system. The devserver
side is the real ServerCore with the real version manager and SavedModel loader (TensorFlow);
the validator side is ``serving_config.validate_model_server_config``. Both must say the same:
the same refusal (code and message), the same wait (and why), the same load failure, or the
same folders loaded.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")

from tfsk import serving_config as sc  # noqa: E402
from tfsk._base import rules  # noqa: E402
from tfsk.devserver._core import ServerCore  # noqa: E402
from tfsk.devserver._manager import VersionManager  # noqa: E402
from tfsk.devserver._servable import load_servable  # noqa: E402
from tfsk.devserver._status import StatusError  # noqa: E402

PLATFORM = 'model_platform: "tensorflow"'


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> Path:
    """A tiny real SavedModel (y = 2x + 1, variables included), built with TF's v1 builder."""
    import tensorflow as tf

    v1 = tf.compat.v1
    path = tmp_path_factory.mktemp("model") / "1"
    with tf.Graph().as_default(), v1.Session() as session:
        x = v1.placeholder(tf.float32, [None], name="x")
        y = tf.add(tf.multiply(v1.Variable(2.0, name="a"), x), 1.0, name="y")
        session.run(v1.global_variables_initializer())
        builder = v1.saved_model.Builder(str(path))
        builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map={
            "serving_default": v1.saved_model.signature_def_utils.predict_signature_def({"x": x}, {"y": y})})
        builder.save()
    return path


def make(root: Path, layout: dict[str, str], model: Path) -> None:
    """Children of ``root``: "model" (a SavedModel), "empty" (a folder), "file", "truncated", "junk"."""
    root.mkdir(parents=True, exist_ok=True)
    for name, kind in layout.items():
        child = root / name
        if kind == "file":
            child.write_text("not a folder")
            continue
        if kind == "empty":
            child.mkdir()
            continue
        shutil.copytree(model, child)
        pb = child / "saved_model.pb"
        if kind == "truncated":
            pb.write_bytes(pb.read_bytes()[: pb.stat().st_size // 2])
        elif kind == "junk":
            pb.write_bytes(b"definitely not a SavedModel")


# (id, model entry (``{base}`` is the model folder), layout of the model folder or None for no folder)
CASES = [
    ("latest", "{platform}", {"1": "model", "2": "model"}),
    ("all-duplicate", "{platform} model_version_policy { all {} }", {"005": "model", "5": "model"}),
    ("latest-duplicate", "{platform}", {"005": "model", "5": "model"}),
    ("specific-duplicate", "{platform} model_version_policy { specific { versions: 5 } }",
     {"005": "model", "5": "model"}),
    ("specific-leading-zeros", "{platform} model_version_policy { specific { versions: 5 } }", {"005": "model"}),
    ("all-signed", "{platform} model_version_policy { all {} }", {"+7": "model", "7": "model"}),
    ("missing-base-path", "{platform}", None),
    ("base-path-is-a-file", "{platform}", "file"),
    ("no-version-folder", "{platform}", {"v1": "model"}),
    ("specific-missing", "{platform} model_version_policy { specific { versions: 3 } }", {"1": "model"}),
    ("specific-empty", "{platform} model_version_policy { specific { } }", {"1": "model"}),
    ("s3", "{platform}", "s3://bucket/m"),
    ("s3-empty-host", "{platform}", "s3:///m"),
    ("gs", "{platform}", "gs://bucket/m"),
    ("relative", "{platform}", "models/m"),
    ("one-letter-scheme", "{platform}", "s://bucket/m"),
    ("duplicate-name", "{platform} } config { name: 'm' base_path: '{base}' {platform}", {"1": "model"}),
    ("no-platform", "", {"1": "model"}),
    ("model-type-other", "model_type: OTHER", {"1": "model"}),
    ("platform-and-model-type", "{platform} model_type: TENSORFLOW", {"1": "model"}),
    ("model-type-tensorflow", "model_type: TENSORFLOW", {"1": "model"}),
    ("pytorch", 'model_platform: "pytorch"', {"1": "model"}),
    ("label-at-start-up", "{platform} version_labels { key: 'stable' value: 1 }", {"1": "model"}),
    ("no-saved-model", "{platform}", {"1": "model", "2": "empty"}),
    ("version-is-a-file", "{platform}", {"1": "model", "2": "file"}),
    ("truncated", "{platform}", {"1": "model", "2": "truncated"}),
    ("corrupt", "{platform}", {"1": "model", "2": "junk"}),
]


def devserver_verdict(config: sc.ModelServerConfig) -> tuple:
    """Start-up through the real ServerCore; waits are cut after 2.5 s (TF Serving would wait forever)."""
    manager = VersionManager(lambda name, version, path: load_servable(name, version, path, ["serve"]),
                             max_load_retries=0, retry_interval_seconds=0)
    core = ServerCore(manager, allow_labels_for_unavailable=False, file_system_poll_seconds=1)
    try:
        core.reload_config(config, initial=True, deadline=time.monotonic() + 2.5)
        loaded = {}
        for model in manager.models():
            for version in sorted(manager.available_versions(model)):
                with manager.acquire(model, version) as servable:
                    loaded[version] = servable.path.name
        return ("loaded", loaded)
    except StatusError as error:
        if error.code.name == "DEADLINE_EXCEEDED":
            return ("waits", core.waiting())
        return ("refused", error.code.name, error.message)
    finally:
        core.stop()


@pytest.mark.parametrize(("case", "entry", "layout"), CASES, ids=[c[0] for c in CASES])
def test_devserver_and_validator_agree(case, entry, layout, saved_model, tmp_path):
    base = str(tmp_path / "m")
    if isinstance(layout, dict):
        make(tmp_path / "m", layout, saved_model)
    elif layout == "file":
        (tmp_path / "m").write_text("a file, not a folder")
    elif layout is not None:
        base = layout
    text = "model_config_list { config { name: 'm' base_path: '%s' %s } }" % (
        base, entry.replace("{platform}", PLATFORM).replace("{base}", base))
    config = sc.parse_model_server_config(text)
    report = sc.validate_model_server_config(config, server=sc.ServerState.startup())
    said = {(f.server_code, f.server_message) for f in report.findings}
    verdict = devserver_verdict(config)

    if verdict[0] == "refused" and verdict[1] == "UNKNOWN":
        # A version failed to load: the start-up message wraps the loader's status, which the validator predicts.
        # In every such layout version 2 is the broken one (and the newest, so latest loads it).
        failing = [f for f in report.errors if f.server_code]
        assert len(failing) == 1, report.findings
        status = f"{failing[0].server_code}: {failing[0].server_message}"
        assert verdict[2] == rules.describe_unavailable([("m", 2, status)], at_startup=True)
    elif verdict[0] == "refused":
        assert (verdict[1], verdict[2]) in said, (verdict, report.findings)
        assert not report.ok
    elif verdict[0] == "waits":
        assert list(verdict[1]) == ["m"], verdict
        assert verdict[1]["m"] in {message for _code, message in said}, (verdict, report.findings)
        if case != "gs":  # TF Serving reads gs:// (the validator cannot check it); only the devserver waits
            assert not report.ok
    else:
        loaded = verdict[1]
        assert loaded and report.ok, (verdict, report.findings)
        assert sc.aspired_versions(config) == {"m": frozenset(loaded)}
        for finding in report.findings:
            if finding.code == "duplicate-version":  # the folder the validator says TF Serving keeps is the one loaded
                assert [f"keeps {folder!r}" in finding.message for folder in loaded.values()] == [True]


RELOADS = [  # (id, model entry of the second config; the first serves version 1 of m)
    ("label-on-loaded", "{platform} model_version_policy { specific { versions: 1 } } "
                        "version_labels { key: 'stable' value: 1 }"),
    ("label-on-unloaded", "{platform} model_version_policy { specific { versions: 1 versions: 2 } } "
                          "version_labels { key: 'stable' value: 2 }"),
    ("platform-change", 'model_platform: "pytorch"'),
]


@pytest.mark.parametrize(("case", "entry"), RELOADS, ids=[c[0] for c in RELOADS])
def test_reloads_agree(case, entry, saved_model, tmp_path):
    """A reload on a running server: the validator, told what is loaded, and the diff agree with the server."""
    make(tmp_path / "m", {"1": "model", "2": "model"}, saved_model)
    first = sc.parse_model_server_config(
        f"model_config_list {{ config {{ name: 'm' base_path: '{tmp_path / 'm'}' {PLATFORM} "
        "model_version_policy { specific { versions: 1 } } } }")
    second = sc.parse_model_server_config(
        f"model_config_list {{ config {{ name: 'm' base_path: '{tmp_path / 'm'}' "
        f"{entry.replace('{platform}', PLATFORM)} }} }}")
    manager = VersionManager(lambda name, version, path: load_servable(name, version, path, ["serve"]),
                             max_load_retries=0, retry_interval_seconds=0)
    core = ServerCore(manager, allow_labels_for_unavailable=False, file_system_poll_seconds=-1)
    try:
        core.reload_config(first, initial=True)
        try:
            core.reload_config(second)
            verdict = None
        except StatusError as error:
            verdict = (error.code.name, error.message)
        if verdict is None:  # accepted: the label answers
            with core.resolve(_spec("m", "stable")) as servable:
                assert servable.version == 1
    finally:
        core.stop()
    state = sc.ServerState(available={"m": {1}}, labels={})
    report = sc.validate_model_server_config(second, server=state)
    refusals = {(f.server_code, f.server_message) for f in report.errors if f.server_code}
    diff = sc.diff_configs(first, second)
    if verdict is None:
        assert report.ok and not diff.refused, (report.findings, diff)
    elif case == "platform-change":  # the validator sees one config: the diff sees the change
        assert [c.effect for c in diff.refused] == [f'TF Serving refuses it: "{verdict[1]}"']
    else:
        assert verdict in refusals, (verdict, report.findings)
        assert diff.refused, diff


def _spec(name, label):
    from tensorflow_serving.apis import model_pb2

    spec = model_pb2.ModelSpec(name=name)
    spec.version_label = label
    return spec
