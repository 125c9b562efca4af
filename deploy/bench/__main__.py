"""A generator process of ``tfsk bench`` (started by it with pipes; not a command of its own)."""

import os
import sys

from ._workers import serve

if sys.stdin.isatty():
    sys.stderr.write("this is tfsk bench's generator process, started by 'tfsk bench'; run that instead\n")
    sys.exit(2)
# The answers get stdout's pipe to themselves: anything else that writes to file descriptor 1 (a
# library's print, a C library's warning) goes to stderr instead of into the pickled stream.
answers = os.fdopen(os.dup(1), "wb")
os.dup2(2, 1)
sys.stdout = sys.stderr
serve(sys.stdin.buffer, answers)
