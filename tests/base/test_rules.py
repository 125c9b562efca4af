"""TF Serving's rules as written in tfsk._base.rules, checked against its sources (no TensorFlow here)."""

import pytest

from tfsk._base import rules
from tfsk._base.messages import ModelConfig, ModelServerConfig


@pytest.mark.parametrize(("base_path", "relative"), [
    ("/models/m", False), ("s3://bucket/m", False), ("s3://bucket", False), ("s3:///m", False), ("gs://b/m", False),
    ("file:///models/m", False), ("models/m", True), ("", True), ("~/m", True),
    ("s://bucket/m", True),  # ParseURI wants a scheme of two or more characters ([a-zA-Z][0-9a-zA-Z.]+)
    ("C:\\models", True), ("3s://x", True),
])
def test_base_paths_follow_parse_uri(base_path, relative):
    assert rules.is_relative(base_path) is relative


def test_file_systems():
    assert rules.unreadable_scheme("gs://b/m") is None  # tensorflow_model_server reads GCS
    assert rules.unreadable_scheme("s3://b/m") == ("UNIMPLEMENTED: File system scheme 's3' not implemented "
                                                   "(file: 's3://b/m')")
    assert rules.unreadable_scheme("gs://b/m", rules.DEVSERVER_SCHEMES) is not None
    assert rules.local_path("file:///models/m") == "/models/m" and rules.local_path("gs://b/m") is None


def _model(policy: str = "") -> ModelConfig:
    model = ModelConfig(name="m", base_path="/b")
    if policy == "all":
        model.model_version_policy.all.SetInParent()
    elif policy.startswith("specific"):
        model.model_version_policy.specific.versions.extend(int(v) for v in policy.split()[1:])
    elif policy.startswith("latest"):
        model.model_version_policy.latest.num_versions = int(policy.split()[1])
    return model


@pytest.mark.parametrize(("policy", "children", "loaded"), [
    ("", ["1", "2", "v3", ".tmp-4"], {2: "2"}),
    ("latest 0", ["1", "2"], {2: "2"}),  # 0 counts as 1
    ("latest 2", ["005", "5", "3"], {5: "5", 3: "3"}),  # of two folders of a version the last name wins
    ("all", ["005", "5", "3"], {5: "005", 3: "3"}),  # all emits both; the manager keeps the first
    ("all", ["+7", "7", " 7"], {7: " 7"}),
    ("specific 5", ["005", "5"], {5: "5"}),  # the fast path finds <base>/5
    ("specific 5", ["005"], {5: "005"}),  # the listing finds it
    ("specific 5 9", ["5"], {5: "5"}),
    ("specific", ["1"], {}),
    ("all", ["-1", "9223372036854775808", "0x10"], {-1: "-1"}),  # int64 only; signs parse, hex does not
])
def test_which_folders_load(policy, children, loaded):
    assert rules.select_versions(_model(policy), children).versions == loaded


def test_what_a_poll_logs():
    notes = [n.message for n in rules.select_versions(_model("all"), ["005", "5"]).notes]
    assert notes == ["Duplicate version directories detected. Version 5 will be loaded from 5, 005 will be ignored.",
                     "Internal error: Unable to transfer servable {name: m version: 5} to 'basic_manager_': This "
                     "servable is already being managed: {name: m version: 5}"]
    assert [n.message for n in rules.select_versions(_model("specific"), ["1"]).notes] == [
        "No specific versions requested for servable m."]


def test_reload_refusals_come_in_tf_serving_order():
    def config(*entries: str) -> ModelServerConfig:
        from google.protobuf import text_format
        return text_format.Parse("model_config_list { %s }" % " ".join(f"config {{ {e} }}" for e in entries),
                                 ModelServerConfig())

    ok = "name: 'a' base_path: '/a' model_platform: 'tensorflow'"
    labelled = ok + " version_labels { key: 'l' value: 1 }"
    pytorch = "name: 'a' base_path: 'rel' model_platform: 'pytorch'"

    def refusal(stored, new, **kw):
        verdict = rules.reload_refusal(stored, new, available=lambda m: kw.get("available", set()),
                                       labels=kw.get("labels", {}), allow_unavailable=kw.get("allow", False))
        return verdict and (verdict.code, verdict.message)

    assert refusal(ModelServerConfig(), config(ok)) is None
    assert refusal(config(ok), config(pytorch))[1].startswith("Expected model a to have an absolute path")
    assert refusal(config(ok), config(ok.replace("tensorflow", "pytorch")))[1] == (
        "Illegal to change a model's platform. For model a platform was tensorflow and new platform requested is "
        "pytorch")
    assert refusal(ModelServerConfig(), config(labelled))[0] == "FAILED_PRECONDITION"
    assert refusal(ModelServerConfig(), config(labelled), available={1}) is None
    assert refusal(ModelServerConfig(), config(labelled), allow=True) is None  # a new label
    moved = refusal(config(labelled), config(labelled), labels={"a": {"l": 2}}, allow=True)
    assert moved == ("FAILED_PRECONDITION", "Request to assign label to version 1 of model a, which is not currently "
                                            "available for inference")  # the flag never moves a label


@pytest.mark.parametrize(("data", "code"), [
    (b"", None), (b"\x08\x01", None), (b"\x12\x05ab", "OUT_OF_RANGE"), (b"\x08", "OUT_OF_RANGE"),
    (b"\x12\x02ab\x12", "OUT_OF_RANGE"), (b"definitely not a SavedModel", "DATA_LOSS"), (b"\x0f", "DATA_LOSS"),
])
def test_saved_model_bytes(data, code):
    problem = rules.saved_model_bytes_problem("m", "/b/1/saved_model.pb", data)
    assert (problem.code if problem else None) == code
