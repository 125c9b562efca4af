"""``tfsk predict | metadata | status | parts | check`` as a user runs them, in fresh processes."""

import json

import numpy as np
from support import tfsk


def test_predict_with_json_literal_npy_and_json_files(demo_server, tmp_path):
    np.save(tmp_path / "b.npy", np.ones((2, 10), np.float32))
    (tmp_path / "c.json").write_text(json.dumps([[0.5] * 5, [1.5] * 5]))
    run = tfsk("predict", "composed", "--target", demo_server.address, "--json",
               "--input", f"tower_a__features={json.dumps([[1] * 10, [2] * 10])}",  # ints become float32: the signature decides
               "--input", f"tower_b__features=@{tmp_path / 'b.npy'}",
               "--input", f"tower_c__features=@{tmp_path / 'c.json'}")
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)
    assert (answer["model"], answer["version"], answer["signature"]) == ("composed", 1, "serving_default")
    assert answer["outputs"]["prediction"]["shape"] == [2, 1] and answer["outputs"]["prediction"]["dtype"] == "float32"
    assert 0 < answer["outputs"]["prediction"]["values"][0][0] < 1


def test_predict_a_part_by_signature_label_and_output(demo_server):
    run = tfsk("predict", "composed", "--target", demo_server.address, "--signature", "part_tower_c", "--label", "stable",
               "--output", "embedding", "--input", f"features={json.dumps([[1.0] * 5])}")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("composed version 1, signature part_tower_c")
    assert "embedding  float32[1, 32]" in run.stdout
    lineage = tfsk("predict", "tower_c", "--target", demo_server.address, "--signature", "tfsk_lineage", "--json")
    assert json.loads(json.loads(lineage.stdout)["outputs"]["lineage"]["values"])["model"] == "tower_c"


def test_metadata_status_parts_and_check(demo_server):
    metadata = tfsk("metadata", "composed", "--target", demo_server.address)
    assert metadata.returncode == 0, metadata.stderr
    assert "part_tower_b  (tensorflow/serving/predict)" in metadata.stdout
    assert "in  tower_c__features" in metadata.stdout and "float32[?,5]" in metadata.stdout
    assert json.loads(tfsk("metadata", "tower_a", "--target", demo_server.address, "--json").stdout)["version"] == 1

    status = tfsk("status", "composed", "--target", demo_server.address)
    assert status.returncode == 0 and "AVAILABLE" in status.stdout
    assert json.loads(tfsk("status", "composed", "--target", demo_server.address, "--json").stdout) == [
        {"version": 1, "state": "AVAILABLE", "error_code": "OK", "error_message": ""}]

    parts = tfsk("parts", "composed", "--target", demo_server.address, "--json")
    assert [(p["name"], p["version"]) for p in json.loads(parts.stdout)] == [("tower_a", 1), ("tower_b", 1), ("tower_c", 1)]
    assert "tower_c                1  part_tower_c" in tfsk("parts", "composed", "--target", demo_server.address).stdout

    check = tfsk("check", "composed", "--target", demo_server.address)
    assert check.returncode == 0, check.stderr
    assert "composed version 1: consistent" in check.stdout and "tower_b@1: ok" in check.stdout


def test_errors_exit_2_with_the_message(demo_server):
    run = tfsk("predict", "composed", "--target", demo_server.address, "--input", "tower_a__features=[[1.0]]")
    assert run.returncode == 2
    # refused by the client before sending: the signature (cached metadata) fixes dimension 1 at 10
    assert "tfsk predict: error: input 'tower_a__features' of model 'composed'" in run.stderr
    assert "takes float32[?,10]; sent float32[1,1]" in run.stderr
    missing = tfsk("status", "nope", "--target", demo_server.address)
    assert missing.returncode == 2 and "NOT_FOUND: Could not find any versions of model nope" in missing.stderr
    nobody = tfsk("status", "composed", "--target", "127.0.0.1:1", "--timeout", "5", "--json")
    answer = json.loads(nobody.stdout)
    assert nobody.returncode == 2 and answer["ok"] is False and "UNAVAILABLE" in answer["error"]


def test_input_errors_name_the_input_and_what_it_should_be(demo_server):
    def predict(*inputs):
        args = [arg for value in inputs for arg in ("--input", value)]
        run = tfsk("predict", "composed", "--target", demo_server.address, *args)
        assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
        return run.stderr

    unknown = predict("wrong=[1.0]")
    assert "--input wrong: the signature has no input 'wrong'; its inputs: tower_a__features" in unknown
    not_a_number = predict('tower_a__features=[["a"]]')
    assert "--input tower_a__features: cannot make a float32 tensor of [['a']]" in not_a_number
    ragged = predict("tower_a__features=[[1, 2], [3]]")
    assert "--input tower_a__features:" in ragged and "nested lists differ in length" in ragged
    unparsed = predict("tower_a__features=[1,")
    assert "--input tower_a__features='[1,' is not a JSON literal" in unparsed and "the input is float32" in unparsed
    assert "quote strings" not in unparsed
    no_file = predict("tower_a__features=@/nonexistent.npy")
    assert "--input tower_a__features=@/nonexistent.npy: no such file" in no_file
