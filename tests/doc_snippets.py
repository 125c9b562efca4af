"""The fenced code blocks of the README and docs/, and the commands in them, so tests run the text a reader
copies. A block may carry a marker, ``<!-- test: NAME ... -->`` on the line above it, naming the test that
runs it."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_FENCE = re.compile(r"^(<!-- test: ([\w-]+)[^\n]*-->\n)?```(\w*)\n(.*?)^```", re.S | re.M)
_HEADING = re.compile(r"^#{1,6} ", re.M)


def blocks(document: str) -> list[tuple[str | None, str, str]]:
    """``(marker name or None, language, code)`` of every fenced block of ``document``."""
    text = (REPO / document).read_text()
    return [(m.group(2), m.group(3), m.group(4)) for m in _FENCE.finditer(text)]


def marked_blocks(document: str, name: str) -> list[tuple[str, str]]:
    """``(language, code)`` of the block marked ``name`` and the blocks after it, up to the next heading."""
    text = (REPO / document).read_text()
    found: list[tuple[str, str]] = []
    end = None
    for match in _FENCE.finditer(text):
        if end is None:
            if match.group(2) != name:
                continue
        elif match.group(2) or _HEADING.search(text, end, match.start()):
            break
        found.append((match.group(3), match.group(4)))
        end = match.end()
    if not found:
        raise AssertionError(f"{document} has no '<!-- test: {name} -->' marker")
    return found


def shell_commands(code: str, language: str = "sh") -> list[list[str]]:
    """The commands of a block as argv lists: every line of a ``sh`` block; in a plain block, the lines
    after a ``$ `` prompt. Continuations, comments and ``VAR=value`` prefixes are handled."""
    found = []
    for line in code.replace("\\\n", " ").splitlines():
        if language != "sh":
            if not line.startswith("$ "):
                continue
            line = line[2:]
        words = shlex.split(line, comments=True)
        while words and "=" in words[0] and not words[0].startswith("-"):
            words = words[1:]
        if words:
            found.append(words)
    return found
