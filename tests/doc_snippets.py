"""The fenced code blocks of the README and docs/, found by the marker comment above them, so a test
runs the text a reader copies (``<!-- test: NAME ... -->`` then the blocks up to the next heading)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def marked_blocks(document: str, name: str) -> list[tuple[str, str]]:
    """``(language, code)`` of each block after ``<!-- test: name`` until the next heading."""
    text = (REPO / document).read_text()
    marker = re.search(rf"^<!-- test: {re.escape(name)}\b.*?-->\n", text, re.M)
    if marker is None:
        raise AssertionError(f"{document} has no '<!-- test: {name} -->' marker")
    rest = text[marker.end():]
    heading = re.search(r"^#", rest, re.M)
    section = rest[: heading.start()] if heading else rest
    return [(match.group(1), match.group(2)) for match in _FENCE.finditer(section)]


def shell_commands(code: str) -> list[list[str]]:
    """The commands of a ``sh`` block, one per line, comments and continuations handled."""
    import shlex

    joined = code.replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in joined.splitlines() if shlex.split(line, comments=True)]
