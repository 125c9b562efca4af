"""JSON as TF Serving's REST API reads and writes it (rapidjson in ``util/json_tensor.cc``).

Reading: the body is parsed with orjson (fast for large tensors) and, when orjson refuses it,
with the standard library, which also takes what rapidjson takes and orjson does not: the
``NaN``/``Infinity`` tokens and trailing text after the first complete value. Errors read as
rapidjson's (``JSON Parse error: <message> at offset: <n>``).

Writing: floats the way ``WriteDecimal`` prints them (``%g`` with 6 digits when that reads back
as the same value, else 9 digits for float and 17 for double; ``.0`` on whole numbers; bare
``NaN``/``Infinity``), done per array rather than per value, so large outputs stay cheap.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson

from .._status import StatusError

__all__ = ["JSON_DOC_LIMIT", "decimal_text", "float_texts", "json_type", "json_value_text", "nest", "parse_json"]

#: Values quoted in error messages are cut to about this many characters (a hostile body is not echoed whole).
JSON_DOC_LIMIT = 256



def _number_too_big(text: str) -> StatusError:
    return StatusError.invalid_argument(f"JSON Parse error: Number too big to be stored in double. (near: {text[:32]})")


def _parse_int(text: str) -> int | float:
    """rapidjson: an integer beyond 64 bits is a double; beyond a double, a parse error."""
    if len(text) <= 20:
        value = int(text)
        if -(2**63) <= value < 2**64:
            return value
    return _parse_float(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _number_too_big(text)
    return value


_DECODER = json.JSONDecoder(parse_int=_parse_int, parse_float=_parse_float)
_PYTHON_TO_RAPIDJSON = {
    "Expecting value": "Invalid value.",
    "Expecting property name enclosed in double quotes": "Missing a name for object member.",
    "Expecting ':' delimiter": "Missing a colon after a name of object member.",
    "Unterminated string starting at": "Missing a closing quotation mark in string.",
    "Invalid control character at": "Invalid encoding in string.",
    "Invalid \\escape": "Invalid escape character in string.",
    "Invalid \\uXXXX escape": "Incorrect hex digit after \\u escape in string.",
}


def _open_container(text: str, position: int) -> str:
    """Which bracket is open at ``position`` (for rapidjson's two "missing a comma" messages)."""
    stack: list[str] = []
    in_string = escaped = False
    for char in text[:position]:
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            in_string = True
        elif char in "[{":
            stack.append(char)
        elif char in "]}" and stack:
            stack.pop()
    return stack[-1] if stack else "{"


def _parse_error(error: json.JSONDecodeError, text: str, offset: int) -> StatusError:
    if error.msg == "Expecting ',' delimiter":
        message = ("Missing a comma or ']' after an array element." if _open_container(text, error.pos) == "["
                   else "Missing a comma or '}' after an object member.")
    else:
        message = _PYTHON_TO_RAPIDJSON.get(error.msg, "Invalid value.")
    return StatusError.invalid_argument(f"JSON Parse error: {message} at offset: {offset + error.pos}")


def parse_json(body: bytes) -> Any:
    """Parse one JSON document as rapidjson does (NaN/Infinity accepted, trailing text ignored)."""
    if not body:
        raise StatusError.invalid_argument("JSON Parse error: The document is empty")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass  # NaN tokens, trailing text, bad UTF-8 or a real syntax error: the standard parser decides
    # rapidjson does not validate UTF-8; keep the bytes as they are (surrogateescape round-trips them).
    text = body.decode("utf-8", errors="surrogateescape")
    start = len(text) - len(text.lstrip(" \t\n\r"))
    if start == len(text):
        raise StatusError.invalid_argument("JSON Parse error: The document is empty")
    try:
        value, _ = _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as error:
        raise _parse_error(error, text, 0) from None
    except RecursionError:
        raise StatusError.invalid_argument(
            "JSON Parse error: The document is nested too deeply to be a tensor at offset: 0") from None
    return value


def json_type(value: Any) -> str:
    """rapidjson's type names (``JsonTypeString``)."""
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def decimal_text(value: float, single: bool = False) -> str:
    """One float as ``WriteDecimal`` prints it (``single``: a float32, else a double)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    return float_texts(np.array([value], dtype=np.float32 if single else np.float64))[0]


def _pretty(value: Any, indent: int) -> Iterator[str]:
    """rapidjson PrettyWriter: objects over lines with 4-space indents, arrays on one line."""
    if isinstance(value, dict):
        if not value:
            yield "{}"
            return
        pad = " " * (indent + 4)
        yield "{\n"
        for index, (key, item) in enumerate(value.items()):
            yield f"{pad}{json.dumps(key, ensure_ascii=False)}: "
            yield from _pretty(item, indent + 4)
            yield ",\n" if index < len(value) - 1 else "\n"
        yield " " * indent + "}"
    elif isinstance(value, list):
        yield "["
        for index, item in enumerate(value):
            if index:
                yield ", "
            yield from _pretty(item, indent)
        yield "]"
    elif value is None or isinstance(value, bool):
        yield {None: "null", True: "true", False: "false"}[value]
    elif isinstance(value, float):
        yield decimal_text(value)
    elif isinstance(value, int):
        yield str(value)
    else:
        yield json.dumps(value, ensure_ascii=False)


def json_value_text(value: Any) -> str:
    """``JsonValueToString``: a value as it appears in an error message (cut at :data:`JSON_DOC_LIMIT`)."""
    parts: list[str] = []
    size = 0
    try:
        for part in _pretty(value, 0):
            parts.append(part)
            size += len(part)
            if size > JSON_DOC_LIMIT:
                return "".join(parts)[:JSON_DOC_LIMIT] + "..."
    except RecursionError:
        return "".join(parts)[:JSON_DOC_LIMIT] + "..."
    return "".join(parts)


def _float_reads_back_in_six_digits(flat: np.ndarray, wide: np.ndarray, finite: np.ndarray) -> np.ndarray:
    """Per float32 value: does ``%.6g`` read back as the same float? Decided numerically, per array.

    Rounding to 6 significant digits in double arithmetic errs by ~1e-16 relative, far below a
    float's spacing (~1e-7), so the answer is the text's except near a tie: where the 7th digit is
    a 5 or the rounded value lies half a float spacing from the value. Those few (and values whose
    scale overflows) are checked on the text, as TF checks every value. Doubles have no such margin
    and are always checked on the text.
    """
    nonzero = finite & (wide != 0)
    magnitude = np.abs(np.where(nonzero, wide, 1.0))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        scale = 10.0 ** (5 - np.floor(np.log10(magnitude)))
        scaled = wide * scale
        rounded = np.rint(scaled) / scale
        spacing = np.spacing(np.abs(flat)).astype(np.float64)
        from_midpoint = np.abs(np.abs(rounded - wide) / spacing - 0.5)
        near_tie = (np.abs(np.abs(scaled - np.trunc(scaled)) - 0.5) < 1e-6) | (from_midpoint < 1e-3)
        same = (rounded.astype(np.float32) == flat) | ~nonzero  # zeros print as "0"; non-finite values as tokens
    for index in np.flatnonzero(nonzero & (near_tie | ~np.isfinite(rounded))).tolist():
        same[index] = np.float32(float("%.6g" % wide[index])) == flat[index]
    return same


def float_texts(flat: np.ndarray) -> list[str]:
    """``WriteDecimal`` for every value of a 1-D float32/float64 array."""
    wide = flat.astype(np.float64, copy=False)
    finite = np.isfinite(wide)
    values = wide.tolist()
    six = "%.6g".__mod__  # absl::StrCat(float) is printf's %g
    if flat.dtype == np.float32:
        short = _float_reads_back_in_six_digits(flat, wide, finite).tolist()
        texts = [six(v) if s else "%.9g" % v for v, s in zip(values, short)]
    else:
        texts = list(map(six, values))
        back = np.fromiter(map(float, texts), np.float64, len(texts))
        for index in np.flatnonzero((back != wide) & finite).tolist():
            texts[index] = "%.17g" % values[index]
    for index in np.flatnonzero(finite & (wide == np.trunc(wide))).tolist():
        text = texts[index]
        if "." not in text and "e" not in text:
            texts[index] = text + ".0"
    for index in np.flatnonzero(~finite).tolist():
        value = values[index]
        texts[index] = "NaN" if value != value else ("-Infinity" if value < 0 else "Infinity")
    return texts


def _empty(shape: tuple[int, ...]) -> str:
    if not shape:
        return ""
    inner = _empty(shape[1:])
    return "[" + ", ".join([inner] * shape[0]) + "]" if shape[0] and inner else "[]"


def nest(texts: list[str], shape: tuple[int, ...], count: int = 1) -> list[str]:
    """Group flat value texts into ``count`` nested JSON lists of ``shape``, one text per group.

    ``nest(texts, array.shape)`` gives ``[whole tensor]``; ``nest(texts, shape[1:], shape[0])`` the rows.
    """
    if 0 in shape:
        return [_empty(shape)] * count
    items = texts
    for dim in reversed(shape):
        items = ["[" + ", ".join(items[start:start + dim]) + "]" for start in range(0, len(items), dim)]
    return items
