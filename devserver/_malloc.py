"""Large buffers on transparent huge pages: glibc's ``glibc.malloc.hugetlb=1`` tunable.

glibc serves every allocation over 32 MiB (its largest mmap threshold) with a fresh mmap, and
the first touch of each 4 KiB page faults: copying a 38 MB tensor into fresh memory took 13–15 ms
on this project's 2-core VM, and 3–4 ms when the mapping is advised onto huge pages. A large
request's bytes, TensorFlow's copy of a feed and the answer are all such buffers, so the tunable
takes a 64x150528 float32 Predict from ~180 ms to ~65 ms. glibc reads tunables only when a
process starts, so ``tfsk serve`` re-executes itself once with the tunable added (same PID, same
arguments), before TensorFlow is imported. A ``glibc.malloc.hugetlb`` the user already set (``=0``
to keep glibc's default) is left as it is; elsewhere than Linux nothing changes.
"""

from __future__ import annotations

import os
import sys

__all__ = ["TUNABLE", "reexec_with_huge_pages"]

TUNABLE = "glibc.malloc.hugetlb"


def reexec_with_huge_pages() -> None:
    """Replace this process by itself with ``TUNABLE=1`` added to GLIBC_TUNABLES (returns when it is set)."""
    if not sys.platform.startswith("linux") or not getattr(sys, "orig_argv", None):
        return
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if TUNABLE in tunables:  # set already: by the user, or by the re-execution that is running now
        return
    environment = {**os.environ, "GLIBC_TUNABLES": ":".join(filter(None, [tunables, f"{TUNABLE}=1"]))}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environment)
