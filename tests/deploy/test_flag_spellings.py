"""Every spelling of a bool flag means one thing to every reader of a ``tensorflow_model_server`` command.

The readers: the devserver's options (and its command line), the compose reader, the devserver stack
engine, the Kubernetes renderer and the compose and Kubernetes checks. What TF Serving's parser
does with each spelling (reference §1.5, ``command_line_flags.cc``): ``--f``, ``--f=true`` and
``--f=false`` set the flag; ``--f=1`` (anything but true/false after ``=``) is refused, with usage
and exit 255; ``--f true`` is two items, the bare ``--f`` (true) and an unknown argument ``true``,
which is printed and ignored, so ``--f false`` turns the flag on.
"""

import pytest
import yaml
from support import REPO

from tfsk import deploy
from tfsk import serving_config as sc
from tfsk._base.flags import BOOL_FLAGS, FLAGS
from tfsk.devserver import FlagError, parse_flags

#: spelling (items of the command, {} is the flag's name) -> the value TF Serving takes, the items it ignores
ACCEPTED = {
    ("--{}",): (True, []),
    ("--{}=true",): (True, []),
    ("--{}=false",): (False, []),
    ("--{}", "true"): (True, ["true"]),
    ("--{}", "false"): (True, ["false"]),
}
REFUSED = [("--{}=1",), ("--{}=0",), ("--{}=True",), ("--{}=yes",), ("--{}=",)]
ALL_SPELLINGS = [*ACCEPTED, *REFUSED]


def items(spelling, name):
    return [item.format(name) for item in spelling]


def with_command(stack_dir, name, extra):
    """The repository's stack with ``extra`` in place of what its serving command says about flag ``name``."""
    compose = stack_dir / "docker-compose.yml"
    data = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    command = data["services"]["serving"]["command"]
    command[:] = [a for a in command if a != f"--{name}" and not a.startswith(f"--{name}=")] + extra
    compose.write_text(yaml.safe_dump(data, sort_keys=False))
    return deploy.load_stack(compose, environ={})


@pytest.mark.parametrize("name", sorted(BOOL_FLAGS))
@pytest.mark.parametrize("spelling", list(ACCEPTED))
def test_the_devserver_takes_what_tf_serving_takes(name, spelling):
    value, ignored = ACCEPTED[spelling]
    options = parse_flags(items(spelling, name))
    if FLAGS[name].devserver:
        assert getattr(options, name) is value
    else:
        assert options.not_implemented == [items(spelling, name)[0]]
    assert options.unknown == ignored


@pytest.mark.parametrize("name", sorted(BOOL_FLAGS))
@pytest.mark.parametrize("spelling", REFUSED)
def test_the_devserver_refuses_what_tf_serving_refuses(name, spelling, capsys):
    from tfsk.cli.serve import main

    with pytest.raises(FlagError, match=f"for bool flag --{name}"):
        parse_flags(items(spelling, name))
    assert main(items(spelling, name)) == 255
    assert "usage: tfsk serve" in capsys.readouterr().err


@pytest.mark.parametrize("spelling", ALL_SPELLINGS)
def test_every_stack_reader_and_check_agrees(stack_dir, spelling):
    for name in sorted(BOOL_FLAGS - {"version"}):  # --version makes the server print and exit
        extra = items(spelling, name)
        spec = with_command(stack_dir, name, extra)
        line = spec.serving.command_line()
        findings = [f for r in deploy.check_stack(spec.compose, spec.declaration, check_disk=False) for f in r.findings
                    if f.severity is sc.Severity.ERROR]
        codes = {f.code for f in findings}
        if spelling in REFUSED:
            assert line.errors and not line.given(name), extra
            assert "bool-flag" in codes, (extra, codes)
            continue
        value, ignored = ACCEPTED[spelling]
        # the compose reader
        assert line.value(name) is value and spec.serving.flags()[name] == str(value).lower()
        assert line.unknown == ignored and not line.errors
        # the checks: a value TF Serving ignores is an error, nothing else about this flag is
        assert codes == ({"flag-form"} if ignored else set()), (extra, [str(f) for f in findings])
        if ignored:
            assert any(f"{extra[0]} {ignored[0]} is two items" in f.message for f in findings)
        # Kubernetes: the pods run the same items, and the manifest checks read them alike
        manifests = deploy.render_kubernetes(spec)
        args = manifests.find("Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[-len(extra):] == extra
        manifest_codes = {f.code for f in deploy.check_manifests(manifests, spec).findings}
        assert ("flag-form" in manifest_codes) == bool(ignored), extra


@pytest.mark.parametrize("spelling", ALL_SPELLINGS)
def test_the_devserver_stack_engine_reads_them_alike(served_stack_dir, spelling):
    name = "enable_grpc_healthcheck_service"
    extra = items(spelling, name)
    spec = with_command(served_stack_dir, name, extra)
    arguments = deploy.devserver_arguments(spec)
    assert arguments[-1].startswith("--bind_address=") and arguments[-1 - len(extra):-1] == extra
    if spelling in REFUSED:
        with pytest.raises(FlagError):
            parse_flags(arguments)
        return
    options = parse_flags(arguments)
    assert options.enable_grpc_healthcheck_service is ACCEPTED[spelling][0]
    assert options.unknown == ACCEPTED[spelling][1]
