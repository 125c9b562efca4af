"""``tfsk serve`` runs with glibc's malloc.hugetlb tunable (devserver/_malloc.py): the same process,
re-executed once at start-up, unless the user chose a value."""

import sys
from pathlib import Path

import pytest

from tests.server_process import ServerProcess

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the tunable is glibc's, on Linux")


def _environment(pid: int) -> dict[str, str]:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(pair.decode().split("=", 1) for pair in pairs if b"=" in pair)


@pytest.mark.parametrize("before, after", [
    (None, "glibc.malloc.hugetlb=1"),
    ("glibc.malloc.arena_max=2", "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"),  # the user's other tunables stay
])
def test_the_server_process_gets_the_tunable(half_plus, monkeypatch, before, after):
    if before is None:
        monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    else:
        monkeypatch.setenv("GLIBC_TUNABLES", before)
    with ServerProcess("--model_name=default", f"--model_base_path={half_plus / 'half_plus_two'}") as server:
        # The PID started is the PID serving: the re-execution replaced the process, it did not fork.
        assert server.process.poll() is None
        assert _environment(server.process.pid).get("GLIBC_TUNABLES") == after


def test_a_value_the_user_set_is_kept(half_plus, monkeypatch):
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.hugetlb=0")
    with ServerProcess("--model_name=default", f"--model_base_path={half_plus / 'half_plus_two'}") as server:
        assert _environment(server.process.pid).get("GLIBC_TUNABLES") == "glibc.malloc.hugetlb=0"
