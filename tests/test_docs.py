"""The README and docs/ as a reader uses them: every ``tfsk`` command they show is accepted by the real
command line, every Python snippet runs as written, in order, against the demo on a real devserver.

A Python block preceded by ``<!-- test: NAME ... -->`` is run by the named test instead (it needs a
scenario of its own, e.g. a rollout); :data:`CLAIMED` says which, and this file checks they exist.
Names a snippet leaves to the reader ("your trained model") are in :data:`READER_NAMES`.
"""

from __future__ import annotations

import re
import shutil

import pytest
from doc_snippets import REPO, blocks, shell_commands

DOCUMENTS = ["README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md")),
             "benchmarks/README.md"]
#: marker name -> the test file that runs those blocks
CLAIMED = {"retrain-one-tower": "tests/exporter/test_load_composed.py",
           "life-of-a-deployment": "tests/deploy/test_life_of_a_deployment.py"}
#: Lines that show a synopsis rather than a command to type (optional parts, alternatives).
SYNOPSIS = re.compile(r"\[|\||\.\.\.|…|NAME|FILE|PART\b|COMPOSED\b|MODEL\b|LABEL\b")


def commands(code: str, language: str) -> list[list[str]]:
    """The ``tfsk`` command lines of a block (arguments after ``tfsk``), synopsis lines left out."""
    return [argv[1:] for argv in shell_commands(code, language)
            if argv[:1] == ["tfsk"] and not SYNOPSIS.search(" ".join(argv))]


class _Parsed(BaseException):
    """Raised right after a command line was accepted: nothing of the command runs."""


def parses(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from tfsk import cli
    from tfsk._base.flags import DEVSERVER_FLAGS, parse_command_line
    from tfsk.cli import _console

    if argv[0] == "serve":  # tensorflow_model_server's flags, not argparse
        parsed = parse_command_line(argv[1:], DEVSERVER_FLAGS)
        assert not parsed.errors and not parsed.unknown, (argv, parsed.errors, parsed.unknown)
        return
    original = _console.ArgumentParser.parse_args

    def accept(self, args=None, namespace=None):  # type: ignore[no-untyped-def]
        original(self, args, namespace)
        raise _Parsed

    monkeypatch.setattr(_console.ArgumentParser, "parse_args", accept)
    with pytest.raises(_Parsed):
        cli.main(argv)


ALL_COMMANDS = [(document, argv) for document in DOCUMENTS for _, language, code in blocks(document)
                if language in ("sh", "") for argv in commands(code, language)]


def test_the_docs_show_commands():
    assert len(ALL_COMMANDS) > 40


@pytest.mark.parametrize(("document", "argv"), ALL_COMMANDS, ids=[f"{d}:{' '.join(a)[:60]}" for d, a in ALL_COMMANDS])
def test_every_tfsk_command_in_the_docs_is_accepted_by_the_command_line(document, argv, monkeypatch, capsys):
    parses(argv, monkeypatch)


def test_every_claimed_snippet_is_run_by_its_test():
    names = {name for document in DOCUMENTS for name, language, _ in blocks(document) if name}
    assert names <= set(CLAIMED), f"markers without a test: {names - set(CLAIMED)}"
    for name, test_file in CLAIMED.items():
        assert name in names, f"{name} is claimed but no document has it"
        assert f'"{name}"' in (REPO / test_file).read_text(), f"{test_file} does not run {name}"


def _seed_example_1():
    import keras

    user, item = keras.Input((10,), name="user"), keras.Input((10,), name="item")
    tower_a = keras.Sequential([keras.Input((10,)), keras.layers.Dense(8)], name="tower_a")
    tower_b = keras.Sequential([keras.Input((10,)), keras.layers.Dense(8)], name="tower_b")
    joined = keras.layers.concatenate([tower_a(user), tower_b(item)])
    return keras.Model([user, item], keras.layers.Dense(1, activation="sigmoid")(joined))


#: What snippets leave to the reader, given to them.
READER_NAMES = {"trained_model": _seed_example_1}


@pytest.fixture(scope="module")
def sandbox(demo_base, tmp_path_factory):
    """A folder like a user's checkout after `make demo`: tfsk.toml, demo-models/ with its configs, and the
    demo served by a real devserver whose address is $TFSK_TARGET."""
    from server_process import ServerProcess

    from tfsk import serving_config as sc

    folder = tmp_path_factory.mktemp("docs")
    shutil.copy(REPO / "tfsk.toml", folder / "tfsk.toml")
    shutil.copytree(demo_base, folder / "demo-models")
    sc.write_configs(sc.load_declaration(folder / "tfsk.toml"))
    with ServerProcess(f"--model_config_file={folder / 'demo-models' / 'models.host.config'}",
                       "--allow_version_labels_for_unavailable_models=true") as server:
        yield folder, server.address


PYTHON_DOCUMENTS = [d for d in DOCUMENTS if any(lang == "python" and not name for name, lang, _ in blocks(d))]


@pytest.mark.parametrize("document", PYTHON_DOCUMENTS)
def test_every_python_snippet_runs_as_written(document, sandbox, monkeypatch, tmp_path, capsys):
    folder, address = sandbox
    work = tmp_path / "work"
    shutil.copytree(folder, work, ignore=shutil.ignore_patterns("*.log"))
    monkeypatch.chdir(work)
    monkeypatch.setenv("TFSK_TARGET", address)
    namespace: dict[str, object] = {"__name__": "__doc_snippet__"}
    for number, (name, language, code) in enumerate(blocks(document)):
        if language != "python" or name:
            continue
        namespace.update({key: make() for key, make in READER_NAMES.items() if key in code})
        exec(compile(code, f"{document}#python-block-{number}", "exec"), namespace)
