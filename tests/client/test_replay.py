"""``tfsk replay`` (and ``tfsk predict --route``) against a real devserver: captured calls, warmup
records and examples files sent again, answers compared with the captured ones."""

import json

import numpy as np
import pytest

from tfsk._base import layout
from tfsk.cli import replay as replay_command
from tfsk.cli.query import predict as predict_command
from tfsk.client import Capture, Client, read_capture
from tfsk.client._traffic import key_point


def _run(command, capsys, *args):
    code = command(list(args))
    out = capsys.readouterr().out
    return code, out


@pytest.fixture(scope="module")
def captured(demo_server, tmp_path_factory):
    folder = tmp_path_factory.mktemp("captured")
    rng = np.random.default_rng(5)
    with Client(demo_server.address, capture=Capture(folder)) as serving:
        for _ in range(6):
            serving.predict("tower_a", {"features": rng.standard_normal((2, 10)).astype(np.float32)})
        composed = {f"{p}__features": rng.standard_normal((1, w)).astype(np.float32)
                    for p, w in (("tower_a", 10), ("tower_b", 10), ("tower_c", 5))}
        serving.predict("composed", composed, label="stable")
        serving.predict("composed", {"features": composed["tower_c__features"]}, signature="part_tower_c")
        for rows in (1, 2, 3):
            serving.predict("tower_c", {"features": rng.standard_normal((rows, 5)).astype(np.float32)})
        serving._traffic.capture.close()
    return folder


def test_replaying_a_capture_reproduces_its_answers(demo_server, captured, capsys):
    code, out = _run(replay_command.main, capsys, str(captured), "--model", "tower_a", "--target", demo_server.address,
                     "--json", "--concurrency", "2")
    report = json.loads(out)
    assert code == 0, out
    assert (report["sent"], report["matched"], report["differed"], report["errors"]) == (6, 6, 0, {})
    assert 0 < report["latency_seconds"]["p50"] <= report["latency_seconds"]["p99"]
    code, out = _run(replay_command.main, capsys, str(captured), "--model", "composed", "--label", "stable",
                     "--target", demo_server.address, "--rate", "50")
    assert code == 0 and "replayed 2 calls" in out and "2 match" in out, out  # the part signature's call too


def test_answers_that_moved_fail_the_replay_and_say_by_how_much(demo_server, captured, capsys):
    code, out = _run(replay_command.main, capsys, str(captured), "--model", "tower_b", "--json")
    assert code == 2 and "it holds calls to composed, tower_a, tower_c: give --from-model" in json.loads(out)["error"]
    code, out = _run(replay_command.main, capsys, str(captured), "--model", "tower_b", "--from-model", "tower_a",
                     "--target", demo_server.address)
    assert code == 1, out
    assert "replayed 6 calls" in out and "6 differ" in out and "embedding: max abs difference" in out


def test_warmup_records_and_examples_files_replay_too(demo_server, demo_base, tmp_path, capsys):
    version = demo_base / "composed" / "1"
    warmup = version / layout.ASSETS_EXTRA / layout.WARMUP_FILE
    for source in (version, warmup):
        code, out = _run(replay_command.main, capsys, str(source), "--model", "composed", "--version", "1",
                         "--target", demo_server.address, "--json")
        report = json.loads(out)
        assert code == 0 and report["sent"] >= 1 and report["not_compared"] == report["sent"] and not report["errors"]
    examples = tmp_path / "examples.npz"
    np.savez(examples, features=np.ones((3, 5), np.float32))
    code, out = _run(replay_command.main, capsys, str(examples), "--model", "tower_c", "--target", demo_server.address,
                     "--json")
    assert code == 0 and json.loads(out)["sent"] == 1
    code, out = _run(replay_command.main, capsys, str(tmp_path / "nothing"), "--model", "tower_c", "--json")
    assert code == 2 and "no such file or folder" in json.loads(out)["error"]


def test_predict_on_the_command_line_takes_a_route_and_a_key(demo_server, capsys):
    args = ("tower_c", "--input", "features=[[1, 2, 3, 4, 5]]", "--target", demo_server.address, "--json")
    code, out = _run(predict_command, capsys, *args, "--route", "stable=95,1=5", "--key", "user-7")
    assert code == 0, out
    assert json.loads(out)["side"] == ("stable" if key_point("user-7") < 0.95 else "1")
    code, out = _run(predict_command, capsys, *args, "--key", "user-7")
    assert code == 2 and "--route" in out
    code, out = _run(predict_command, capsys, *args, "--route", "stable")
    assert code == 2 and "label=share" in out


def test_export_takes_its_warmup_records_from_captured_traffic(captured, tmp_path, capsys):
    from tfsk.cli import export as export_command

    code, out = _run(export_command.main, capsys, "part", "support:tower_c_factory", "--base", str(tmp_path),
                     "--name", "tower_c", "--warmup-from", str(captured), "--json")
    assert code == 0, out
    version = tmp_path / "tower_c" / "1"
    warmup = list(read_capture(version))
    sent = [c for c in read_capture(captured) if c.model == "tower_c"]
    assert [c.inputs["features"].shape[0] for c in warmup] == [1, 2, 3]
    for mine, theirs in zip(warmup, sent, strict=True):
        np.testing.assert_array_equal(mine.inputs["features"], theirs.inputs["features"])
    code, out = _run(export_command.main, capsys, "part", "support:tower_c_factory", "--base", str(tmp_path),
                     "--name", "tower_x", "--warmup-from", str(captured), "--json")
    assert code == 2 and "no successful serving_default calls to tower_x" in json.loads(out)["error"]
