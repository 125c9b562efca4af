"""Every common Keras 3 model form exports as a part, serves, and answers what the model answers.

All forms are exported once (by ``export_part`` and, for two Sequential ``.keras`` files, by the
``tfsk export part`` command) into one base, served by ONE real devserver process, and asked over
real gRPC; each test compares one form's answer with ``model(x, training=False)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import pytest
from server_process import ServerProcess
from support import numeric_children, tfsk

from tfsk import exporter, serving_config
from tfsk.client import Client

RNG = np.random.default_rng(19)


def _floats(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype("float32")


@dataclass
class Form:
    model: keras.Model
    batch: dict[str, np.ndarray]  # signature input name -> array, as a client sends it
    to_model: Callable[[dict[str, np.ndarray]], Any]  # the same batch as the model takes it
    export: dict[str, Any] = field(default_factory=dict)  # export_part keyword arguments

    def expected(self) -> dict[str, np.ndarray] | np.ndarray:
        result = self.model(self.to_model(self.batch), training=False)
        if isinstance(result, dict):
            return {k: keras.ops.convert_to_numpy(v) for k, v in result.items()}
        if isinstance(result, (list, tuple)):  # named after the output layers, as the signature is
            return {k: keras.ops.convert_to_numpy(v) for k, v in zip(self.model.output_names, result)}
        return keras.ops.convert_to_numpy(result)


def _single(name: str) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    return lambda batch: batch[name]


def sequential_with_named_input() -> Form:
    model = keras.Sequential([keras.Input((10,), name="features"), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(3)], name="seq_named")
    return Form(model, {"features": _floats(4, 10)}, _single("features"))


def sequential_with_input_shape() -> Form:
    # The seed article's form: never called, built by Keras from input_shape=.
    model = keras.Sequential([keras.layers.Dense(64, activation="relu", input_shape=(10,)), keras.layers.Dense(32)])
    return Form(model, {"features": _floats(4, 10)}, _single("features"), {"input_names": ["features"]})


def nested_in_functional() -> Form:
    inner_sequential = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, activation="tanh")], name="inner_seq")
    inner_input = keras.Input((5,))
    inner_model = keras.Model(inner_input, keras.layers.Dense(4)(inner_input), name="inner_model")
    features = keras.Input((6,), name="features")
    model = keras.Model(features, keras.layers.Dense(2)(inner_model(inner_sequential(features))), name="outer")
    return Form(model, {"features": _floats(3, 6)}, _single("features"))


def nested_in_sequential() -> Form:
    # No keras.Input on the Sequential: its input name is the nested model's own Input name.
    inner_input = keras.Input((6,), name="features")
    inner_model = keras.Model(inner_input, keras.layers.Dense(5, activation="relu")(inner_input), name="inner_model")
    inner_sequential = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4)], name="inner_seq")
    model = keras.Sequential([inner_model, inner_sequential, keras.layers.Dense(2)], name="outer_seq")
    return Form(model, {"features": _floats(3, 6)}, _single("features"))


def functional_single_input() -> Form:
    features = keras.Input((10,), name="features")
    model = keras.Model(features, keras.layers.Dense(4)(keras.layers.Dense(8, activation="relu")(features)))
    return Form(model, {"features": _floats(4, 10)}, _single("features"))


def functional_dict_inputs() -> Form:
    query, context = keras.Input((3,), name="query"), keras.Input((5,), name="context")
    merged = keras.layers.Concatenate()([query, context])
    model = keras.Model({"query": query, "context": context}, keras.layers.Dense(2)(merged))
    batch = {"query": _floats(4, 3), "context": _floats(4, 5)}
    return Form(model, batch, lambda b: {"query": b["query"], "context": b["context"]})


def string_lookup() -> Form:
    words = keras.Input((3,), dtype="string", name="words")
    ids = keras.layers.StringLookup(vocabulary=["red", "green", "blue"])(words)
    embedded = keras.layers.Embedding(4, 5)(ids)
    model = keras.Model(words, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(embedded)))
    batch = {"words": np.array([[b"red", b"blue", b"unknown"], [b"green", b"green", b"red"]], dtype=object)}
    return Form(model, batch, _single("words"))


def text_vectorization() -> Form:
    vectorize = keras.layers.TextVectorization(max_tokens=20, output_sequence_length=6)
    vectorize.adapt(["the cat sat on the mat", "a dog ate the bone", "cats and dogs"])
    text = keras.Input((1,), dtype="string", name="text")
    embedded = keras.layers.Embedding(20, 4)(vectorize(text))
    model = keras.Model(text, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling1D()(embedded)))
    batch = {"text": np.array([[b"the cat ate"], [b"dogs on the mat"], [b"zebra"]], dtype=object)}
    return Form(model, batch, _single("text"))


def int64_ids() -> Form:
    ids = keras.Input((4,), dtype="int64", name="ids")
    embedded = keras.layers.Embedding(50, 3)(ids)
    model = keras.Model(ids, keras.layers.Dense(2)(keras.layers.Flatten()(embedded)))
    return Form(model, {"ids": RNG.integers(0, 50, (3, 4)).astype("int64")}, _single("ids"))


def adapted_normalization() -> Form:
    normalize = keras.layers.Normalization()
    normalize.adapt(RNG.normal(5.0, 3.0, (200, 4)).astype("float32"))
    features = keras.Input((4,), name="features")
    model = keras.Model(features, keras.layers.Dense(2)(normalize(features)))
    return Form(model, {"features": RNG.normal(5.0, 3.0, (3, 4)).astype("float32")}, _single("features"))


def batch_norm_and_dropout() -> Form:
    features = keras.Input((6,), name="features")
    norm = keras.layers.BatchNormalization()
    x = keras.layers.Dropout(0.5)(keras.layers.Dense(8, activation="relu")(norm(features)))
    model = keras.Model(features, keras.layers.Dense(3)(x))
    # Trained-looking statistics: with the fresh ones (mean 0, variance 1) inference would be near identity.
    norm.set_weights([RNG.uniform(0.5, 2.0, 6), RNG.normal(0, 1, 6), RNG.normal(1, 1, 6), RNG.uniform(0.5, 4.0, 6)])
    return Form(model, {"features": _floats(8, 6)}, _single("features"))


def rank3_output() -> Form:
    sequence = keras.Input((5, 3), name="sequence")
    model = keras.Model(sequence, keras.layers.Conv1D(4, 2, padding="same")(sequence))
    return Form(model, {"sequence": _floats(2, 5, 3)}, _single("sequence"))


def named_outputs() -> Form:
    features = keras.Input((6,), name="features")
    hidden = keras.layers.Dense(8, activation="relu")(features)
    model = keras.Model(features, [keras.layers.Dense(1, name="score")(hidden),
                                   keras.layers.Dense(3, activation="softmax", name="category")(hidden)])
    return Form(model, {"features": _floats(4, 6)}, _single("features"))


def mixed_precision() -> Form:
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        features = keras.Input((6,), name="features")
        model = keras.Model(features, keras.layers.Dense(3)(keras.layers.Dense(8, activation="relu")(features)))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return Form(model, {"features": _floats(4, 6)}, _single("features"), {"atol": 1e-3, "rtol": 1e-3})


class SubclassedTower(keras.Model):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = keras.layers.Dense(5, activation="relu")
        self.out = keras.layers.Dense(2)

    def call(self, x):
        return self.out(self.hidden(x))


def subclassed_with_specs() -> Form:
    model = SubclassedTower()
    model(np.zeros((1, 3), "float32"))
    return Form(model, {"features": _floats(4, 3)}, _single("features"),
                {"input_specs": {"features": ((None, 3), "float32")}})


FORMS: dict[str, Callable[[], Form]] = {
    "seq_named_input": sequential_with_named_input,
    "seq_input_shape": sequential_with_input_shape,
    "nested_in_functional": nested_in_functional,
    "nested_in_sequential": nested_in_sequential,
    "functional_single": functional_single_input,
    "functional_dict": functional_dict_inputs,
    "string_lookup": string_lookup,
    "text_vectorization": text_vectorization,
    "int64_ids": int64_ids,
    "normalization": adapted_normalization,
    "batch_norm_dropout": batch_norm_and_dropout,
    "rank3_output": rank3_output,
    "named_outputs": named_outputs,
    "mixed_precision": mixed_precision,
    "subclassed": subclassed_with_specs,
}
# Exported by `tfsk export part FILE.keras` from these forms' models, saved as .keras files.
CLI_FORMS: dict[str, tuple[Callable[[], Form], list[str]]] = {
    "cli_seq_named_input": (sequential_with_named_input, []),
    "cli_seq_input_shape": (sequential_with_input_shape, ["--input-name", "features"]),
}


@dataclass
class Served:
    client: Client
    forms: dict[str, Form]
    exports: dict[str, exporter.ExportResult | exporter.ExportError]
    cli_runs: dict[str, Any]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    base = tmp_path_factory.mktemp("forms")
    files = tmp_path_factory.mktemp("keras_files")
    forms = {name: build() for name, build in FORMS.items()}
    exports: dict[str, exporter.ExportResult | exporter.ExportError] = {}
    for name, form in forms.items():
        try:
            exports[name] = exporter.export_part(form.model, base, name, **form.export)
        except exporter.ExportError as error:  # that form's test fails with it; the others still run
            exports[name] = error
    cli_runs = {}
    for name, (build, flags) in CLI_FORMS.items():
        form = forms[name] = build()
        form.model.save(files / f"{name}.keras")
        cli_runs[name] = tfsk("export", "part", str(files / f"{name}.keras"), "--base", str(base), "--name", name,
                              *flags)
    # A failed export is that test's failure, not every test's: serve what was published.
    names = [name for name in forms if (base / name / "1").is_dir()]
    config = base / "models.config"
    serving_config.write_model_server_config(
        serving_config.model_server_config(serving_config.model_config(n, str(base / n)) for n in names), config)
    with ServerProcess(f"--model_config_file={config}") as server, Client(server.address, timeout=30) as client:
        for name in names:
            client.wait_until_available(name, 1, timeout=120)
        yield Served(client, forms, exports, cli_runs)


def _assert_serves_like_keras(served: Served, name: str, rtol: float = 1e-5,
                              atol: float = 1e-6) -> dict[str, np.ndarray]:
    """The server's answer for the form's batch equals model(x, training=False); returns the answer."""
    form = served.forms[name]
    if isinstance(served.exports.get(name), Exception):
        raise served.exports[name]
    answer = served.client.predict(name, form.batch)
    assert answer.version == 1
    expected = form.expected()
    if isinstance(expected, dict):
        assert set(answer) == set(expected)
        pairs = [(answer[k], expected[k]) for k in expected]
    else:
        assert list(answer) == ["embedding"]
        pairs = [(answer["embedding"], expected)]
    for got, want in pairs:
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
    return dict(answer)


def _signature_inputs(served: Served, name: str) -> list[str]:
    return list(served.client.metadata(name).signatures["serving_default"].inputs)


def test_sequential_starting_with_a_named_input(served):
    _assert_serves_like_keras(served, "seq_named_input")
    assert _signature_inputs(served, "seq_named_input") == ["features"]


def test_sequential_with_input_shape_and_input_names(served):
    assert served.forms["seq_input_shape"].model.built  # Keras built it from input_shape=; never called
    answer = _assert_serves_like_keras(served, "seq_input_shape")
    assert answer["embedding"].shape == (4, 32)
    assert _signature_inputs(served, "seq_input_shape") == ["features"]


def test_nested_sequential_and_model_inside_a_functional_model(served):
    _assert_serves_like_keras(served, "nested_in_functional")


def test_nested_model_and_sequential_inside_a_sequential(served):
    _assert_serves_like_keras(served, "nested_in_sequential")
    assert _signature_inputs(served, "nested_in_sequential") == ["features"]  # the nested model's Input name


def test_functional_single_input(served):
    _assert_serves_like_keras(served, "functional_single")


def test_functional_dict_inputs(served):
    _assert_serves_like_keras(served, "functional_dict")
    assert sorted(_signature_inputs(served, "functional_dict")) == ["context", "query"]


def test_string_inputs_through_string_lookup(served):
    answer = _assert_serves_like_keras(served, "string_lookup")
    # The out-of-vocabulary word really went through the lookup: rows with different words differ.
    assert not np.allclose(answer["embedding"][0], answer["embedding"][1])


def test_string_inputs_through_text_vectorization(served):
    _assert_serves_like_keras(served, "text_vectorization")
    assert served.client.metadata("text_vectorization").signatures["serving_default"].inputs["text"].dtype == object


def test_int64_ids_through_embedding(served):
    _assert_serves_like_keras(served, "int64_ids")
    assert served.client.metadata("int64_ids").signatures["serving_default"].inputs["ids"].dtype == np.int64


def test_adapted_normalization(served):
    _assert_serves_like_keras(served, "normalization")


def test_batch_norm_and_dropout_answer_in_inference_mode(served):
    answer = _assert_serves_like_keras(served, "batch_norm_dropout")
    form = served.forms["batch_norm_dropout"]
    training = keras.ops.convert_to_numpy(form.model(form.batch["features"], training=True))
    assert not np.allclose(answer["embedding"], training, atol=1e-3)  # the served graph is not the training one


def test_rank3_outputs(served):
    answer = _assert_serves_like_keras(served, "rank3_output")
    assert answer["embedding"].shape == (2, 5, 4)


def test_several_named_outputs(served):
    answer = _assert_serves_like_keras(served, "named_outputs")
    assert sorted(answer) == ["category", "score"]


def test_mixed_precision(served):
    assert keras.mixed_precision.global_policy().name == "float32"  # the fixture put the policy back
    answer = _assert_serves_like_keras(served, "mixed_precision", rtol=1e-3, atol=1e-3)
    assert answer["embedding"].dtype == np.float16


def test_subclassed_model_with_input_specs(served):
    _assert_serves_like_keras(served, "subclassed")


def test_cli_exports_a_sequential_keras_file_with_input_name(served):
    run = served.cli_runs["cli_seq_input_shape"]
    assert run.returncode == 0, run.stderr
    assert "cli_seq_input_shape: published version 1" in run.stdout
    _assert_serves_like_keras(served, "cli_seq_input_shape")
    assert _signature_inputs(served, "cli_seq_input_shape") == ["features"]


def test_cli_exports_a_sequential_keras_file_that_starts_with_a_named_input(served):
    run = served.cli_runs["cli_seq_named_input"]
    assert run.returncode == 0, run.stderr
    _assert_serves_like_keras(served, "cli_seq_named_input")
    assert _signature_inputs(served, "cli_seq_named_input") == ["features"]


# --- refusals: the message matches what the user did, and nothing is published -----------------


def _refusal(tmp_path, model: keras.Model, **kwargs: Any) -> str:
    with pytest.raises(exporter.InputNamingError) as caught:
        exporter.export_part(model, tmp_path, "refused", **kwargs)
    assert not (tmp_path / "refused").exists() or numeric_children(tmp_path / "refused") == []
    return str(caught.value)


def test_sequential_with_input_shape_and_no_names_is_refused(tmp_path):
    model = keras.Sequential([keras.layers.Dense(4, input_shape=(10,), name="first"), keras.layers.Dense(2)], name="x")
    message = _refusal(tmp_path, model)
    assert message.startswith("Sequential 'x' has an input Keras named 'input_layer")
    assert "(from input_shape= on its first layer 'first')" in message
    assert "input_names=[...] (--input-name NAME on the command line)" in message
    assert 'start it with keras.Input(shape, name="features")' in message
    assert "subclassed" not in message


def test_sequential_with_an_unnamed_input_is_refused(tmp_path):
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(2)], name="unnamed")
    message = _refusal(tmp_path, model)
    assert message.startswith("Sequential 'unnamed' has an input Keras named 'input_layer")
    assert "input_names=[...]" in message and "subclassed" not in message
    assert exporter.export_part(model, tmp_path, "named", input_names=["features"]).version == 1


def test_unbuilt_sequential_is_refused_with_what_to_give(tmp_path):
    model = keras.Sequential([keras.layers.Dense(4), keras.layers.Dense(2)], name="unbuilt")
    message = _refusal(tmp_path, model)
    assert message == (
        "Sequential 'unbuilt' has no input shape yet: it does not start with keras.Input, its first layer has no "
        "input_shape=, and it was never built; start it with keras.Input(shape, name=\"features\"), or pass "
        "input_specs, e.g. {'features': ((None, 10), 'float32')}")
    assert "subclassed" not in message
    # input_names cannot help without a shape: still the same refusal.
    assert _refusal(tmp_path, model, input_names=["features"]) == message
    only_input = keras.Sequential([keras.Input((3,), name="features")], name="only_input")
    assert _refusal(tmp_path, only_input) == (
        "Sequential 'only_input' has no layers after its keras.Input, so Keras never built it; "
        "add the model's layers (model.add(...)) before exporting it")


def test_subclassed_model_without_specs_is_refused_as_subclassed(tmp_path):
    model = SubclassedTower()
    model(np.zeros((1, 3), "float32"))
    message = _refusal(tmp_path, model)
    assert message.startswith("cannot name the inputs of subclassed model SubclassedTower ")
    assert "pass input_specs" in message


def test_cli_refuses_an_input_shape_sequential_without_input_name(tmp_path):
    model = keras.Sequential([keras.layers.Dense(4, input_shape=(10,)), keras.layers.Dense(2)], name="seed")
    model.save(tmp_path / "seed.keras")
    run = tfsk("export", "part", str(tmp_path / "seed.keras"), "--base", str(tmp_path / "models"), "--name", "seed")
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    # A reloaded file no longer says input_shape= was used: the message names every way it can arise.
    assert lines[0].startswith("tfsk export part: error: Sequential 'seed' has an input Keras named 'input_layer")
    assert "(from input_shape=, model.build(), a first call or an unnamed keras.Input)" in lines[0]
    assert "--input-name NAME" in lines[0]
    assert not (tmp_path / "models" / "seed").exists() or numeric_children(tmp_path / "models" / "seed") == []
