"""``check_consistency`` and ``tfsk check`` tell a part that differs from one that could not be
asked and from a model that is not composed (exit 1, 2, 2), against a real devserver whose config
serves the composed model without its parts, then with a wrong standalone part."""

import json

import pytest
from server_process import ServerProcess
from support import tfsk

from tfsk.client import Client


def _config(demo_base, models):
    entries = "".join(f'  config {{ name: "{name}" base_path: "{demo_base / folder}" model_platform: "tensorflow" }}\n'
                      for name, folder in models.items())
    return "model_config_list {\n" + entries + "}\n"


@pytest.fixture(scope="module")
def parts_server(demo_base, tmp_path_factory):
    """A devserver that starts with the composed model only (its parts are not served)."""
    config = tmp_path_factory.mktemp("verdicts") / "models.config"
    config.write_text(_config(demo_base, {"composed": "composed"}))
    with ServerProcess(f"--model_config_file={config}") as server:
        yield server


def test_parts_that_cannot_be_asked_are_not_reported_as_differences(parts_server):
    with Client(parts_server.address) as serving:
        report = serving.check_consistency("composed", version=1)
    assert report.verdict == "could_not_compare" and not report.consistent
    assert [p.verdict for p in report.parts] == ["could_not_compare"] * 3
    tower_a = report.parts[0]
    assert list(tower_a.max_abs_difference) == ["embedding (part signature)"]  # the inside still agrees with itself
    assert tower_a.max_abs_difference["embedding (part signature)"] <= 1e-5
    assert tower_a.problem.startswith("the standalone tower_a@1 could not be asked: NOT_FOUND")
    run = tfsk("check", "composed", "--version", "1", "--target", parts_server.address)
    assert run.returncode == 2, run.stderr
    assert "composed version 1: COULD NOT COMPARE" in run.stdout and "tower_b@1: COULD NOT COMPARE" in run.stdout
    assert "DIFFERS" not in run.stdout and "INCONSISTENT" not in run.stdout


def test_a_part_that_differs_outweighs_one_that_could_not_be_asked(parts_server, demo_base):
    with Client(parts_server.address) as serving:
        # tower_b's weights served under tower_a's name (same shapes): tower_a differs; tower_c is not served
        serving.reload_config(_config(demo_base, {"composed": "composed", "tower_a": "tower_b", "tower_b": "tower_b"}))
        for name in ("tower_a", "tower_b"):
            serving.wait_until_available(name, timeout=60)
        report = serving.check_consistency("composed")
    assert report.verdict == "differs"
    assert {p.name: p.verdict for p in report.parts} == {"tower_a": "differs", "tower_b": "consistent",
                                                           "tower_c": "could_not_compare"}
    assert report.parts[0].max_abs_difference["embedding (standalone tower_a@1)"] > 1e-3
    run = tfsk("check", "composed", "--target", parts_server.address, "--json")
    assert run.returncode == 1, run.stderr
    answer = json.loads(run.stdout)
    assert answer["verdict"] == "differs" and answer["consistent"] is False
    assert [p["verdict"] for p in answer["parts"]] == ["differs", "consistent", "could_not_compare"]
    text = tfsk("check", "composed", "--target", parts_server.address)
    assert text.returncode == 1 and "tower_a@1: DIFFERS" in text.stdout and "tower_b@1: ok" in text.stdout


def test_a_model_that_is_not_composed_and_a_server_that_is_not_there(demo_server):
    with Client(demo_server.address) as serving:
        report = serving.check_consistency("tower_a")
    assert (report.verdict, report.parts, report.consistent) == ("not_composed", [], False)
    run = tfsk("check", "tower_a", "--target", demo_server.address)
    assert run.returncode == 2, run.stderr
    assert "tower_a version 1: NOT A COMPOSED MODEL" in run.stdout and "consistent" not in run.stdout
    assert json.loads(tfsk("check", "tower_a", "--target", demo_server.address, "--json").stdout)["verdict"] == "not_composed"
    consistent = tfsk("check", "composed", "--target", demo_server.address, "--json")
    assert consistent.returncode == 0 and json.loads(consistent.stdout)["verdict"] == "consistent"
    nobody = tfsk("check", "composed", "--target", "127.0.0.1:1", "--timeout", "5")
    assert nobody.returncode == 2 and "UNAVAILABLE" in nobody.stderr and "Traceback" not in nobody.stderr


def test_check_by_label_checks_the_version_the_label_names(demo_base, tmp_path):
    # what a rollout serves to users is a label: `tfsk check composed --label stable` (issue 21's invariant)
    entries = "".join(f'  config {{ name: "{name}" base_path: "{demo_base / name}" model_platform: "tensorflow" }}\n'
                      for name in ("tower_a", "tower_b", "tower_c"))
    labelled = (f'  config {{ name: "composed" base_path: "{demo_base / "composed"}" model_platform: "tensorflow" '
                f'model_version_policy {{ specific {{ versions: 1 }} }} version_labels {{ key: "stable" value: 1 }} }}\n')
    config = tmp_path / "models.config"
    config.write_text("model_config_list {\n" + entries + labelled + "}\n")
    with ServerProcess(f"--model_config_file={config}", "--allow_version_labels_for_unavailable_models=true") as server:
        with Client(server.address) as serving:
            for name in ("tower_a", "tower_b", "tower_c", "composed"):
                serving.wait_until_available(name, timeout=60)
            assert serving.check_consistency("composed", label="stable").version == 1
        run = tfsk("check", "composed", "--label", "stable", "--target", server.address)
        assert run.returncode == 0 and "composed version 1: consistent" in run.stdout, run.stdout + run.stderr
        unknown = tfsk("check", "composed", "--label", "canary", "--target", server.address)
        assert unknown.returncode == 2 and "canary" in unknown.stderr and "Traceback" not in unknown.stderr
    both = tfsk("check", "composed", "--label", "stable", "--version", "1", "--target", "127.0.0.1:1")
    assert both.returncode == 2 and "not allowed with" in both.stderr
