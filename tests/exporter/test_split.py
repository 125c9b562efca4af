"""Splitting a jointly trained model into parts and its trained head (the seed article's three examples).

Each form is split into one model base, served by one real devserver, and asked over gRPC: the
composed model must answer what the joint Keras model answers, and each part (standalone, and as
the composed model's ``part_<name>`` signature) what the joint model computes at its input of the
concatenation.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from server_process import ServerProcess
from support import tfsk

from tfsk import exporter
from tfsk.client import Client

RNG = np.random.default_rng(3)


def _dense(units, seed, activation="relu", name=None):
    return keras.layers.Dense(units, activation=activation, name=name,
                              kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
                              bias_initializer=keras.initializers.RandomUniform(-0.2, 0.2, seed=seed + 50))


def seed_example_1():
    """Two Sequential towers; the joint model is built from their inputs and outputs (layers inlined)."""
    model1 = keras.Sequential([keras.Input((10,), name="user"), _dense(64, 1), _dense(32, 2)], name="model1")
    model2 = keras.Sequential([keras.Input((10,), name="item"), _dense(64, 3), _dense(32, 4)], name="model2")
    joined = keras.layers.concatenate([model1.outputs[0], model2.outputs[0]])
    output = _dense(1, 6, "sigmoid")(_dense(16, 5)(joined))
    return keras.Model([model1.inputs[0], model2.inputs[0]], output)


def seed_example_2():
    """Towers of different output shapes, reshaped before the concatenation."""
    model1 = keras.Sequential([keras.Input((10,), name="user"), _dense(32, 1), keras.layers.Reshape((4, 8))])
    model2 = keras.Sequential([keras.Input((10,), name="item"), _dense(32, 2)])
    model3 = keras.Sequential([keras.Input((5,), name="context"), _dense(32, 3)])
    joined = keras.layers.concatenate([keras.layers.Reshape((32,))(model1.outputs[0]),
                                       keras.layers.Reshape((32,))(model2.outputs[0]), model3.outputs[0]])
    output = _dense(1, 6, "sigmoid")(_dense(16, 5)(joined))
    return keras.Model([model1.inputs[0], model2.inputs[0], model3.inputs[0]], output)


def seed_example_3():
    """One functional model with the towers written inline, inputs left unnamed (as the article has it)."""
    input1, input2 = keras.Input(shape=(10,)), keras.Input(shape=(10,))
    x1 = _dense(32, 2)(_dense(64, 1)(input1))
    x2 = _dense(32, 4)(_dense(64, 3)(input2))
    concatenated = keras.layers.concatenate([x1, x2])
    output = _dense(1, 6, "sigmoid")(_dense(16, 5)(concatenated))
    return keras.Model(inputs=[input1, input2], outputs=output)


def nested_towers():
    """Towers as nested models called on the joint model's inputs (dict inputs), one flattened."""
    query, doc = keras.Input((6,), name="query"), keras.Input((4,), name="doc")
    query_tower = keras.Sequential([keras.Input((6,)), _dense(8, 1)], name="query_tower")
    doc_input = keras.Input((4,))
    doc_tower = keras.Model(doc_input, keras.layers.Reshape((2, 3))(_dense(6, 2)(doc_input)), name="doc_tower")
    joined = keras.layers.Concatenate(name="join")([query_tower(query), keras.layers.Flatten()(doc_tower(doc))])
    return keras.Model({"query": query, "doc": doc}, _dense(1, 3, None, name="score")(joined))


FORMS = {"seed1": seed_example_1, "seed2": seed_example_2, "seed3": seed_example_3, "nested": nested_towers}


def _inputs_for(model, names):
    return {name: RNG.standard_normal((3, *tensor.shape[1:])).astype("float32")
            for name, tensor in zip(names, model.inputs)}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Every form split into its own base folder under one root; one devserver serving them all."""
    root = tmp_path_factory.mktemp("split")
    forms = {}
    for form, build in FORMS.items():
        joint = build()
        own = [t._keras_history.operation.name for t in joint.inputs]
        renames = {own[0]: "user", own[1]: "item"} if form == "seed3" else None
        names = [(renames or {}).get(n, n) for n in own]
        results = exporter.export_split(joint, root / form, "ranker", input_names=renames)
        forms[form] = (joint, names, results)
    entries = "".join(
        f'config {{ name: "{form}__{model}" base_path: "{root / form / model}" model_platform: "tensorflow" }}\n'
        for form, (_, _, results) in forms.items() for model in results)
    config = root / "models.config"
    config.write_text(f"model_config_list {{\n{entries}}}\n")
    with ServerProcess(f"--model_config_file={config}") as server, Client(server.address, timeout=60) as client:
        yield forms, client


def _joint_args(joint, names, inputs):
    if isinstance(joint.input, dict):
        return {name: inputs[name] for name in names}
    return [inputs[name] for name in names]


@pytest.mark.parametrize("form", FORMS)
def test_the_composed_model_answers_what_the_joint_model_answers(served, form):
    forms, client = served
    joint, names, results = forms[form]
    parts = list(results)[:-1]
    inputs = _inputs_for(joint, names)
    composed_inputs = {}
    for part in parts:
        for name in results[part].signatures["serving_default"].inputs:
            composed_inputs[f"{part}__{name}"] = inputs[name]
    answer = client.predict(f"{form}__ranker", composed_inputs)
    np.testing.assert_allclose(answer["prediction"], joint(_joint_args(joint, names, inputs)).numpy(), atol=1e-5)

    joined = next(layer for layer in joint.layers if type(layer).__name__ == "Concatenate")
    at_concatenation = keras.Model(joint.input, joined.input)(_joint_args(joint, names, inputs))
    for part, expected in zip(parts, at_concatenation):
        own = {name: inputs[name] for name in results[part].signatures["serving_default"].inputs}
        standalone = client.predict(f"{form}__{part}", own)
        np.testing.assert_allclose(standalone["embedding"], np.asarray(expected), atol=1e-5)
        as_signature = client.predict(f"{form}__ranker", own, signature=f"part_{part}")
        np.testing.assert_allclose(as_signature["embedding"], np.asarray(expected), atol=1e-5)
        np.testing.assert_allclose(answer[f"{part}__embedding"], np.asarray(expected), atol=1e-5)


def test_towers_are_named_after_their_nested_model_else_their_inputs(served):
    forms, _ = served
    assert list(forms["nested"][2]) == ["query_tower", "doc_tower", "ranker"]
    assert list(forms["seed1"][2]) == ["user", "item", "ranker"]
    assert list(forms["seed2"][2]) == ["user", "item", "context", "ranker"]
    assert list(forms["seed3"][2]) == ["user", "item", "ranker"]  # the renamed inputs


def test_the_trained_head_is_kept_and_the_lineage_says_where_it_came_from(served):
    forms, _ = served
    joint, _, results = forms["seed2"]
    composed = results["ranker"].lineage
    assert [p["name"] for p in composed["parts"]] == ["user", "item", "context"]
    assert [p["version"] for p in composed["parts"]] == [results[p].version for p in ("user", "item", "context")]
    joined = next(layer for layer in joint.layers if type(layer).__name__ == "Concatenate")
    assert composed["provenance"]["split"]["concatenation"] == joined.name
    assert composed["head"]["file"] == "tfsk_head.keras"
    head = keras.models.load_model(results["ranker"].path / "assets.extra" / "tfsk_head.keras", compile=False)
    final = joint.layers[-1]
    np.testing.assert_array_equal(head.layers[-1].get_weights()[0], final.get_weights()[0])
    tower = results["user"].lineage
    assert tower["provenance"]["split"]["tower"] == 0 and tower["provenance"]["split"]["composed"] == "ranker"


def test_a_second_split_publishes_the_next_version_of_every_model(tmp_path):
    first = exporter.export_split(seed_example_1(), tmp_path, "ranker")
    second = exporter.export_split(seed_example_1(), tmp_path, "ranker")
    assert {name: r.version for name, r in first.items()} == {"user": 1, "item": 1, "ranker": 1}
    assert {name: r.version for name, r in second.items()} == {"user": 2, "item": 2, "ranker": 2}
    assert [(p["name"], p["version"]) for p in second["ranker"].lineage["parts"]] == [("user", 2), ("item", 2)]


def test_parts_can_be_named_by_a_layer_or_by_their_inputs(tmp_path):
    results = exporter.export_split(nested_towers(), tmp_path, "ranker", parts={"q": "query_tower", "d": ["doc"]})
    assert list(results) == ["q", "d", "ranker"]
    assert list(results["ranker"].signatures["serving_default"].inputs) == ["q__query", "d__doc"]


# --- refusals: one line saying why and what to do; nothing published -----------------------------------


def _two_inputs():
    return keras.Input((4,), name="a"), keras.Input((3,), name="b")


def _no_concatenation():
    a, b = _two_inputs()
    return keras.Model([a, b], keras.layers.Add()([_dense(2, 1)(a), _dense(2, 2)(b)]))


def _two_heads():
    a, b = _two_inputs()
    ta, tb = _dense(2, 1)(a), _dense(2, 2)(b)
    first = _dense(1, 3)(keras.layers.Concatenate(name="join_1")([ta, tb]))
    second = _dense(1, 4)(keras.layers.Concatenate(name="join_2")([ta, tb]))
    return keras.Model([a, b], [first, second])


def _shared_input():
    a, b = _two_inputs()
    tb = _dense(2, 2)(keras.layers.Concatenate(name="inner")([keras.layers.Dense(3)(a), b]))
    return keras.Model([a, b], _dense(1, 3)(keras.layers.Concatenate(name="join")([_dense(2, 1)(a), tb])))


def _skip_connection():
    a, b = _two_inputs()
    ta = _dense(2, 1)(a)
    hidden = _dense(2, 3)(keras.layers.Concatenate(name="join")([ta, _dense(2, 2)(b)]))
    return keras.Model([a, b], _dense(1, 4)(keras.layers.Concatenate(name="late")([hidden, ta])))


def _input_to_head():
    a, b = _two_inputs()
    c = keras.Input((2,), name="c")
    hidden = _dense(2, 3)(keras.layers.Concatenate(name="join")([_dense(2, 1)(a), _dense(2, 2)(b)]))
    return keras.Model([a, b, c], _dense(1, 4)(keras.layers.Add(name="plus_c")([hidden, c])))


REFUSALS = {
    "no concatenation": (_no_concatenation, {}, r"has no concatenation .*build it as head\(concatenate"),
    "several candidates": (_two_heads, {}, r"several concatenations .*'join_\d' .*'join_\d'.* concatenation='NAME' "
                                           r"\(tfsk export split --concat NAME\)"),
    "named but unfit": (_two_heads, {"concatenation": "join_1"}, r"output 'dense_\d+' does not come after "
                                                                 r"concatenation 'join_1'"),
    "shared input": (_shared_input, {}, r"any of its concatenations: .*at 'join': model input 'a' feeds both "
                                         r"tower 0 and tower 1 of concatenation 'join'"),
    "skip connection": (_skip_connection, {}, r"'late' after concatenation 'join' also reads a tensor computed from "
                                              r"model input\(s\) 'a' without going through the concatenation"),
    "input to head": (_input_to_head, {}, r"model input\(s\) 'c' feed no tower of concatenation 'join'"),
    "unknown part": (seed_example_1, {"parts": {"x": "nope"}}, r"part 'x'='nope' names no tower"),
    "made-up names": (seed_example_3, {}, r"inputs named \[.*\] by Keras, not by you.*input_names="),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_a_model_that_does_not_separate_is_refused_and_nothing_is_published(tmp_path, case):
    build, options, message = REFUSALS[case]
    with pytest.raises(exporter.ExportError, match=message):
        exporter.export_split(build(), tmp_path / "models", "ranker", **options)
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


@keras.saving.register_keras_serializable(package="tfsk_test_split")
class _Unloadable(keras.layers.Layer):
    """Saves, but its config cannot rebuild it: the head cannot round-trip through a .keras file."""

    def __init__(self, scale, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, x):
        return x * self.scale

    def get_config(self):
        return {**super().get_config(), "scale": "not a number"}


def test_a_head_that_cannot_be_saved_is_still_served_and_says_so(tmp_path):
    a, b = _two_inputs()
    joined = keras.layers.Concatenate()([_dense(2, 1)(a), _dense(2, 2)(b)])
    joint = keras.Model([a, b], _Unloadable(2.0)(_dense(1, 3)(joined)))
    results = exporter.export_split(joint, tmp_path, "ranker")
    head = results["ranker"].lineage["head"]
    assert head["file"] is None and "does not round-trip" in head["not_stored"]
    inputs = {"a__a": np.ones((2, 4), "float32"), "b__b": np.ones((2, 3), "float32")}
    with ServerProcess("--model_name=ranker", f"--model_base_path={tmp_path / 'ranker'}") as server, \
            Client(server.address, timeout=60) as client:
        served = client.predict("ranker", inputs)["prediction"]
    np.testing.assert_allclose(served, joint([inputs["a__a"], inputs["b__b"]]).numpy(), atol=1e-6)


# --- the command line --------------------------------------------------------------------------------------


def test_tfsk_export_split_splits_a_saved_keras_file_with_named_parts(tmp_path):
    seed_example_3().save(tmp_path / "trained.keras")
    loaded = keras.models.load_model(tmp_path / "trained.keras")
    first, second = (t._keras_history.operation.name for t in loaded.inputs)  # the names Keras gave the Inputs
    assert first.startswith("input_layer") and second.startswith("input_layer")
    base = tmp_path / "models"
    done = tfsk("export", "split", str(tmp_path / "trained.keras"), "--base", str(base), "--name", "ranker",
                "--input-name", f"{first}=user", "--input-name", f"{second}=item",
                "--part", "tower_a=user", "--part", "tower_b=item", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [m["model"] for m in report["models"]] == ["tower_a", "tower_b", "ranker"]
    split = report["models"][-1]["lineage"]["provenance"]["split"]
    assert split["source"]["type"] == "keras_file" and split["source"]["path"] == str(tmp_path / "trained.keras")
    listing = tfsk("export", "list", "--base", str(base), "ranker")
    assert "split from" in listing.stdout and "trained.keras" in listing.stdout


def test_tfsk_export_split_refuses_with_one_line_and_publishes_nothing(tmp_path):
    _two_heads().save(tmp_path / "two_heads.keras")
    refused = tfsk("export", "split", str(tmp_path / "two_heads.keras"), "--base", str(tmp_path / "models"),
                   "--name", "ranker")
    assert refused.returncode == 1
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "several concatenations" in lines[0] and "--concat NAME" in lines[0], refused.stderr
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())
    bad = tfsk("export", "split", str(tmp_path / "two_heads.keras"), "--base", str(tmp_path / "models"),
               "--name", "ranker", "--part", "no_equals_sign")
    assert bad.returncode == 2 and "--part 'no_equals_sign': write NAME=LAYER_OR_INPUTS" in bad.stderr


@pytest.mark.parametrize("form", ["seed2", "nested"])
def test_a_split_model_comes_back_into_keras_with_its_towers_and_trained_head(served, form, tmp_path_factory):
    forms, client = served
    joint, names, results = forms[form]
    base = results["ranker"].path.parent.parent
    loaded = exporter.load_composed(base, "ranker@latest")
    inputs = _inputs_for(joint, names)
    composed_inputs = {}
    for part in list(results)[:-1]:
        assert loaded.get_layer(part).trainable
        for name in results[part].signatures["serving_default"].inputs:
            composed_inputs[f"{part}__{name}"] = inputs[name]
    served_answer = client.predict(f"{form}__ranker", composed_inputs)["prediction"]
    np.testing.assert_allclose(loaded(composed_inputs)["prediction"].numpy(), served_answer, atol=1e-5)
    np.testing.assert_allclose(served_answer, joint(_joint_args(joint, names, inputs)).numpy(), atol=1e-5)
