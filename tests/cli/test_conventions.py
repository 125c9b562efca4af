"""What every ``tfsk`` command shares, checked on the real command in fresh processes: help and
usage errors answer without importing TensorFlow, exit codes, JSON errors, a closed pipe."""

import json
import re
import subprocess
import sys

import pytest
from support import REPO, tfsk

# Each of these must answer without TensorFlow: help, usage errors, name and folder checks.
LIGHT = [
    ("export", "--help"),
    ("export", "part", "--help"),
    ("export", "demo", "--help"),
    ("export", "part", "m.keras", "--base", "/tmp/tfsk-never", "--name", "x", "--version", "-3"),
    ("export", "part", "m.keras", "--base", "/tmp/tfsk-never", "--name", "a b"),
    ("export", "composed", "--base", "/tmp/tfsk-never", "--name", "c", "--part", "t@x", "--head", "h.keras"),
    ("export", "list", "--base", "/nonexistent-tfsk-models"),
    ("export", "prune", "m", "--base", "/nonexistent-tfsk-models", "--keep", "1"),
    ("demo", "--help"),
    ("serve", "--help"),
    ("serve", "--version"),
    ("config", "--help"),
    ("stack", "--help"),
    ("stack", "check", "--help"),
    ("rollout", "--help"),
    ("rollout", "start", "--help"),
    ("predict", "--help"),
    ("bench", "--help"),
    ("bench", "compare", "--help"),
    ("bench", "m", "--rate", "fast"),
    ("tune", "--help"),
    ("tune", "batching", "--help"),
    ("tune", "batching", "m", "--rate", "fast", "--p99", "50ms"),
    ("--version",),
    (),
]


@pytest.mark.parametrize("args", LIGHT, ids=" ".join)
def test_help_usage_and_checks_never_import_tensorflow(args):
    # -X importtime lists every module the process imports, on stderr.
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "tfsk", *args], capture_output=True,
                         text=True, cwd=REPO, timeout=120)
    imported = {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}
    assert imported, run.stderr  # the listing is there, so its silence about TensorFlow means something
    assert not {name for name in imported if name.split(".")[0] in ("tensorflow", "keras")}
    messages = [line for line in run.stderr.splitlines() if not line.startswith("import time:")]
    assert not [line for line in messages if "cuInit" in line or "absl" in line or "oneDNN" in line]
    assert run.returncode in (0, 2), run.stdout + run.stderr


def test_no_arguments_prints_help_on_stdout_and_exits_0():
    run = tfsk()
    assert run.returncode == 0 and run.stderr == ""
    assert run.stdout.startswith("usage: tfsk COMMAND") and "Exit status: 0 done, 1" in run.stdout


def test_usage_errors_exit_2_and_name_what_was_wrong():
    version = tfsk("export", "part", "m.keras", "--base", "/tmp/tfsk-never", "--name", "x", "--version", "-3")
    assert version.returncode == 2 and "argument --version: expected 1 or more, got -3" in version.stderr
    name = tfsk("export", "part", "m.keras", "--base", "/tmp/tfsk-never", "--name", "a b")
    assert name.returncode == 2 and "invalid part name 'a b'" in name.stderr
    listing = tfsk("export", "list", "--base", "/nonexistent-tfsk-models")
    assert listing.returncode == 2 and listing.stdout == ""
    assert "tfsk export list: error: --base /nonexistent-tfsk-models: no such folder" in listing.stderr


def test_errors_under_json_are_json_on_stdout():
    for args in (("export", "list", "--base", "/nonexistent-tfsk-models", "--json"),
                 ("export", "part", "--json", "--base", "/tmp/tfsk-never"),  # usage error: SOURCE and --name missing
                 ("demo", "--declaration", "/nonexistent/tfsk.toml", "--json"),
                 ("status", "m", "--target", "127.0.0.1:1", "--timeout", "2", "--json"),
                 ("stack", "status", "--compose-file", "/nonexistent/docker-compose.yml", "--json"),
                 ("stack", "bogus", "--json"),
                 ("rollout", "status", "composed", "--declaration", "/nonexistent/tfsk.toml", "--json"),
                 ("nonsense", "--json")):
        run = tfsk(*args)
        answer = json.loads(run.stdout)
        assert run.returncode == 2 and answer["ok"] is False and answer["exit_code"] == 2 and answer["error"], args
        assert run.stderr == "", args


def test_a_closed_pipe_ends_quietly():
    for args in (("--help",), ("export", "--help"), ("config", "monitoring")):
        process = subprocess.Popen([sys.executable, "-m", "tfsk", *args], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, cwd=REPO)
        process.stdout.close()  # the reader is gone before the command writes (like `| head -0`)
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert b"Traceback" not in err and b"BrokenPipeError" not in err


def _positional_entries(help_text: str) -> list[tuple[str, bool]]:
    """(name, has help) for each entry under 'positional arguments:'."""
    lines = help_text.split("positional arguments:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    entries = []
    for index, line in enumerate(lines):
        if re.match(r"^  \S", line):
            same_line = re.match(r"^  \S+\s{2,}\S", line) is not None
            next_line = index + 1 < len(lines) and re.match(r"^\s{6,}\S", lines[index + 1]) is not None
            entries.append((line.split()[0], same_line or next_line))
    return entries


def test_every_positional_argument_has_help_and_demo_help_is_plain_text():
    commands = [("export", c) for c in ("part", "list", "prune")] + [("config", c) for c in ("validate", "plan-label", "diff")]
    commands += [(c,) for c in ("predict", "metadata", "status", "parts", "check")] + [("export",), ("config",)]
    for command in commands:
        run = tfsk(*command, "--help")
        assert run.returncode == 0, command
        entries = _positional_entries(run.stdout)
        assert entries and all(has_help for _, has_help in entries), (command, entries)
    demo = tfsk("demo", "--help")
    assert demo.returncode == 0 and "`" not in demo.stdout and "--keep-serving" in demo.stdout
