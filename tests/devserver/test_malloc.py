"""``tfsk serve`` runs with glibc's malloc.hugetlb tunable (devserver/_malloc.py): the same process,
re-executed once at start-up, unless the user chose a value. Checked by its effect: TensorFlow's
large start-up buffers on transparent huge pages, which in the kernel's ``madvise`` mode only an
advice (the tunable's) puts there."""

import sys
from pathlib import Path

import pytest

from tests.server_process import ServerProcess

THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")
pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not THP.exists() or "[madvise]" not in THP.read_text(),
    reason="needs Linux with transparent huge pages in madvise mode (only then is the tunable's effect visible)")


def _huge_kb(pid: int) -> int:
    line = next(line for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines() if "AnonHugePages" in line)
    return int(line.split()[1])


@pytest.mark.parametrize("before", [None, "glibc.malloc.arena_max=2"])  # the user's other tunables stay
def test_the_server_process_gets_the_tunable(half_plus, monkeypatch, before):
    if before is None:
        monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    else:
        monkeypatch.setenv("GLIBC_TUNABLES", before)
    with ServerProcess("--model_name=default", f"--model_base_path={half_plus / 'half_plus_two'}") as server:
        # The PID started is the PID serving: the re-execution replaced the process, it did not fork.
        assert server.process.poll() is None
        assert _huge_kb(server.process.pid) > 0


def test_a_value_the_user_set_is_kept(half_plus, monkeypatch):
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.hugetlb=0")
    with ServerProcess("--model_name=default", f"--model_base_path={half_plus / 'half_plus_two'}") as server:
        assert _huge_kb(server.process.pid) == 0
