"""One exception root with one exit-code mapping, and public APIs that say what they export."""

from __future__ import annotations

import importlib
import inspect

import pytest

import tfsk
from tfsk.cli import EXIT_NOT_RIGHT, EXIT_USAGE, CommandError, guarded

PACKAGES = ("tfsk.exporter", "tfsk.serving_config", "tfsk.client", "tfsk.devserver", "tfsk.deploy", "tfsk.demo",
            "tfsk.cli")
#: The errors that say what was checked is not right (exit 1); every other error is exit 2.
NOT_RIGHT = {"VerificationError", "ContractChangeError", "HeadReuseError", "SplitError", "GateFailedError"}


def _public_errors() -> dict[str, type[BaseException]]:
    found = {}
    for name in PACKAGES:
        package = importlib.import_module(name)
        for attribute in package.__all__:
            value = getattr(package, attribute)
            if inspect.isclass(value) and issubclass(value, BaseException):
                found[f"{name}.{attribute}"] = value
    from tfsk._base import codec, layout

    found["tfsk._base.layout.InvalidNameError"] = layout.InvalidNameError
    found["tfsk._base.codec.TensorDecodeError"] = codec.TensorDecodeError
    return found


def test_every_public_error_of_every_package_is_a_tfsk_error():
    errors = _public_errors()
    assert {"tfsk.exporter.ExportError", "tfsk.serving_config.ConfigError", "tfsk.client.ClientError",
            "tfsk.deploy.StackError", "tfsk.devserver.StartupError", "tfsk.devserver.FlagError",
            "tfsk.cli.CommandError"} <= set(errors)
    assert not [name for name, cls in errors.items() if not issubclass(cls, tfsk.TfskError)]


def test_the_package_roots_keep_their_other_bases():
    from tfsk import client, devserver, exporter
    from tfsk._base import codec, layout
    from tfsk.devserver._status import StatusError

    assert issubclass(devserver.FlagError, ValueError) and issubclass(layout.InvalidNameError, ValueError)
    assert issubclass(codec.TensorDecodeError, ValueError) and issubclass(client.TensorDecodeError, ValueError)
    assert issubclass(exporter.InvalidNameError, layout.InvalidNameError)
    assert issubclass(client.WaitTimeoutError, TimeoutError) and issubclass(client.InputError, ValueError)
    assert issubclass(StatusError, tfsk.TfskError)


def test_each_error_carries_its_documented_exit_code():
    for name, cls in _public_errors().items():
        expected = EXIT_NOT_RIGHT if cls.__name__ in NOT_RIGHT else EXIT_USAGE
        assert cls.exit_code == expected, name
    assert tfsk.TfskError.exit_code == EXIT_USAGE


@pytest.mark.parametrize("error, code", [
    ("tfsk.exporter:VerificationError", 1),
    ("tfsk.exporter:ContractChangeError", 1),
    ("tfsk.exporter:HeadReuseError", 1),
    ("tfsk.exporter:SplitError", 1),
    ("tfsk.exporter:ExportError", 2),
    ("tfsk.exporter:VersionExistsError", 2),
    ("tfsk.serving_config:ConfigInvalidError", None),
    ("tfsk.serving_config:DeclarationError", 2),
    ("tfsk.client:ClientError", 2),
    ("tfsk.client:UnavailableError", 2),
    ("tfsk.deploy:StackError", 2),
    ("tfsk.deploy:RolloutError", 2),
    ("tfsk.devserver:StartupError", 2),
])
def test_the_command_line_maps_the_root_to_exit_codes_in_one_place(error, code, capsys):
    module, _, name = error.partition(":")
    cls = getattr(importlib.import_module(module), name)
    if code is None:  # built from a report: checked with the plain root's code instead
        cls, code = tfsk.TfskError, 2

    def body() -> int:
        raise cls("what was wrong; what to do")

    assert guarded("tfsk test", [], body) == code
    assert capsys.readouterr().err == f"tfsk test: error: {cls('what was wrong; what to do')}\n"


def test_the_command_line_keeps_its_own_codes_details_and_log_tails(capsys):
    import json

    from tfsk.deploy import StackError

    def refused() -> int:
        raise CommandError("not as asked", code=EXIT_NOT_RIGHT, log="/tmp/x.log")

    assert guarded("tfsk test", ["--json"], refused) == 1
    assert json.loads(capsys.readouterr().out) == {"ok": False, "command": "tfsk test", "exit_code": 1,
                                                   "error": "not as asked", "log": "/tmp/x.log"}

    def exited() -> int:
        raise StackError("the devserver exited", "last line")

    assert guarded("tfsk test", [], exited) == 2
    assert capsys.readouterr().err == ("tfsk test: error: the devserver exited\n--- last lines of the server's log ---\n"
                                       "last line\n")

    def missing() -> int:
        open("/nonexistent-tfsk/file")
        return 0

    assert guarded("tfsk test", [], missing) == 2
    assert "/nonexistent-tfsk/file: No such file or directory; it does not exist" in capsys.readouterr().err


def test_deploy_exports_each_public_name_once():
    from tfsk import deploy

    assert len(deploy.__all__) == len(set(deploy.__all__)), "a name is listed twice"
    exported = {name for name in vars(deploy) if not name.startswith("_") and name not in ("bench", "k8s", "rollout", "stack", "tune")}
    assert set(deploy.__all__) == exported
    for sub in ("bench", "stack", "k8s", "rollout", "tune"):  # every subpackage's public names are the package's
        assert set(importlib.import_module(f"tfsk.deploy.{sub}").__all__) <= set(deploy.__all__), sub


def test_the_demo_is_not_in_the_libraries_public_apis():
    from tfsk import deploy, exporter

    assert "export_demo" not in exporter.__all__ and not hasattr(exporter, "export_demo")
    assert "DEMO_MODELS" not in deploy.__all__
    from tfsk.demo import DEMO_MODELS, HEAD_FACTORY

    assert DEMO_MODELS == {"tower_a", "tower_b", "tower_c", "composed"} and HEAD_FACTORY == "tfsk.demo:build_head"


def test_import_tfsk_stays_light():
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", "import sys, tfsk; tfsk.TfskError; print(sorted(m for m in sys.modules "
                          "if m.startswith('tfsk')))"], capture_output=True, text=True, timeout=60)
    assert run.stdout.strip() == "['tfsk', 'tfsk._base', 'tfsk._base.errors']", run.stderr


#: The packages whose public names load on first use (tfsk._base.lazy.lazy_exports).
LAZY_PACKAGES = ("tfsk.exporter", "tfsk.devserver", "tfsk.demo")


@pytest.mark.parametrize("name", LAZY_PACKAGES)
def test_a_lazy_package_lists_what_it_loads_statically(name):
    """``__all__`` is a literal sorted list (what type checkers and linters read), equal to the lazy
    table; the ``TYPE_CHECKING`` imports name the same modules; every name resolves."""
    import ast

    package = importlib.import_module(name)
    tree = ast.parse(inspect.getsource(package))
    literal = [node.value for node in tree.body
               if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["__all__"]]
    assert len(literal) == 1 and isinstance(literal[0], ast.List), "__all__ must be one literal list"
    assert ast.literal_eval(literal[0]) == sorted(package._WHERE) == package.__all__
    seen = {alias.asname or alias.name: f".{node.module}"
            for block in tree.body if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
            for node in block.body if isinstance(node, ast.ImportFrom)
            for alias in node.names}
    assert seen == package._WHERE, "the TYPE_CHECKING imports and _WHERE disagree"
    for attribute in package.__all__:
        value = getattr(package, attribute)
        source = importlib.import_module(package._WHERE[attribute], name)
        assert value is getattr(source, attribute), attribute
