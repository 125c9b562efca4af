"""Reading and writing protobuf text format the way TF Serving reads it.

TF Serving parses every config file with ``TextFormat::ParseFromString`` and refuses the whole
file on the first problem. Python's ``text_format.Parse`` accepts and refuses the same texts
(unknown fields, a singular field given twice, two members of a oneof, unbalanced braces), so a
file that parses here parses there.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

from google.protobuf import text_format
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from ._errors import ConfigError, ConfigParseError

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)

_POSITION_PREFIX = re.compile(r"^\d+:\d+ : ")
_NO_FIELD = re.compile(r'Message type "([\w.]+)" has no field named "(\w+)"')


def parse_text(text: str, message_class: type[M], source: str = "<string>", what: str = "config") -> M:
    """Parse ``text`` into a new ``message_class``; :class:`ConfigParseError` with line and column."""
    message: M = message_class()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as error:
        reason = _POSITION_PREFIX.sub("", str(error))
        raise ConfigParseError(source, error.GetLine(), error.GetColumn(),
                               reason + _suggestion(reason, cast(Descriptor, message.DESCRIPTOR)), what) from None
    return message


def read_text(path: str | os.PathLike[str], what: str) -> str:
    """The file's text, or :class:`ConfigError` saying why it cannot be read."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read {what} file {os.fspath(path)!r}: {error.strerror or error}; "
                          f"check the path") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigParseError(os.fspath(path), None, None,
                               f"not UTF-8 text (byte {error.start} is {data[error.start]:#04x})", what) from None


def one_line_fields(message: Message) -> str:
    """Each top-level field on its own line in one-line form, as TF Serving's docs write small
    configs: ``max_batch_size { value: 128 }``, ``batch_timeout_micros { value: 0 }``."""
    lines = []
    for descriptor, value in message.ListFields():
        for item in value if descriptor.is_repeated else [value]:
            single = type(message)()
            if descriptor.is_repeated:
                getattr(single, descriptor.name).append(item)
            elif descriptor.message_type is not None:
                getattr(single, descriptor.name).CopyFrom(item)
            else:
                setattr(single, descriptor.name, item)
            lines.append(text_format.MessageToString(single, as_one_line=True, message_formatter=_explicit_wrapper))
    return "\n".join(lines) + ("\n" if lines else "")


def _explicit_wrapper(message: Message, indent: int, as_one_line: bool) -> str | None:
    # proto3 drops a wrapper's zero value from the text ("batch_timeout_micros { }"); TF Serving's
    # examples spell it out, and so do we, so the file says what it means.
    if message.DESCRIPTOR.file.name != "google/protobuf/wrappers.proto":
        return None
    value = cast(Any, message).value
    if value:
        return None  # printed as usual
    return {bool: "value: false", str: 'value: ""'}.get(type(value), "value: 0")


def with_header(header: str | None, body: str) -> str:
    """Prefix ``#`` comment lines (text format allows them, TF Serving skips them)."""
    if not header:
        return body
    comment = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    return comment + body


def write_atomic(path: str | os.PathLike[str], text: str) -> bool:
    """Write ``text`` to ``path`` by rename; return whether the content changed.

    A server polling the file (``--model_config_file_poll_wait_seconds``) must never read half
    a config: it would log a parse error each poll until the write finished. An unchanged file is
    left alone so its modification time keeps meaning something.
    """
    target = Path(path)
    try:
        if target.read_text(encoding="utf-8") == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    target.parent.mkdir(parents=True, exist_ok=True)
    _publish(target, text, os.replace)
    logger.info("wrote %s", target)
    return True


def write_new(path: str | os.PathLike[str], text: str) -> bool:
    """Create ``path`` complete with ``text`` unless it exists (then leave it alone); return whether it was created."""
    target = Path(path)
    if target.exists() or target.is_symlink():
        return False
    try:
        _publish(target, text, os.link)  # link: atomic, and refuses a file another writer created meanwhile
    except FileExistsError:
        return False
    logger.info("wrote %s", target)
    return True


def _publish(target: Path, text: str, place: Callable[[str, Path], None]) -> None:
    """Write a complete temporary file next to ``target`` and ``place`` it there."""
    # The temporary name starts with a dot and is not numeric: neither a version nor a model to anyone.
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tfsk-tmp", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        place(temporary, target)
    finally:
        Path(temporary).unlink(missing_ok=True)


def _suggestion(reason: str, root: Descriptor) -> str:
    match = _NO_FIELD.search(reason)
    if not match:
        return ""
    descriptor = next((d for d in _descriptors(root) if d.full_name == match.group(1)), None)
    if descriptor is None:
        return ""
    names = [f.name for f in descriptor.fields]
    close = difflib.get_close_matches(match.group(2), names, n=1)
    hint = f" did you mean {close[0]!r}?" if close else ""
    return f";{hint} fields of {descriptor.name}: {', '.join(names)}"


def _descriptors(root: Descriptor) -> Iterator[Descriptor]:
    seen: set[str] = set()
    stack = [root]
    while stack:
        descriptor = stack.pop()
        if descriptor.full_name in seen:
            continue
        seen.add(descriptor.full_name)
        yield descriptor
        stack.extend(f.message_type for f in descriptor.fields if f.message_type is not None)
