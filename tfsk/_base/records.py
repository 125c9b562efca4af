"""TFRecord files without TensorFlow: what warmup records, TF Serving's request logs and the
client's capture are stored in.

A record is ``uint64 length`` (little-endian), ``uint32 masked CRC32C of those 8 bytes``, the
data, ``uint32 masked CRC32C of the data`` (TensorFlow's ``core/lib/io/record_writer.cc``; the
mask is ``core/lib/hash/crc32c.h``'s ``Mask``). CRC32C comes from ``google-crc32c`` (hardware
instructions where the CPU has them), not from code of ours. Only uncompressed files: TF Serving
reads warmup records uncompressed.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import google_crc32c

from .errors import TfskError

__all__ = ["RecordError", "RecordWriter", "masked_crc32c", "read_record_at", "read_records", "record_size",
           "write_records"]

_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")
_HEADER = _LENGTH.size + _CRC.size
_MASK_DELTA = 0xA282EAD8


class RecordError(TfskError, ValueError):
    """A file that is not a well-formed TFRecord file (truncated, corrupt, or compressed)."""


def masked_crc32c(data: bytes | memoryview) -> int:
    """CRC32C rotated and offset as TFRecord stores it (a CRC of data holding CRCs is otherwise weak)."""
    crc: int = google_crc32c.value(bytes(data))
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def record_size(data_length: int) -> int:
    """Bytes one record of ``data_length`` bytes takes in the file."""
    return _HEADER + data_length + _CRC.size


def _frame(data: bytes) -> bytes:
    length = _LENGTH.pack(len(data))
    return b"".join((length, _CRC.pack(masked_crc32c(length)), data, _CRC.pack(masked_crc32c(data))))


class RecordWriter:
    """Appends records to a TFRecord file (created when missing); ``offset`` is where the next one starts.

    Each :meth:`write` reaches the operating system whole before it returns (one ``write`` call,
    flushed), so a reader in another process never sees half a record that a sidecar points to.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._file: BinaryIO = open(self.path, "ab")  # noqa: SIM115 - closed by close() / the context manager
        self.offset = self._file.tell()

    def write(self, data: bytes) -> int:
        """Append one record; return the offset it starts at."""
        start = self.offset
        self._file.write(_frame(data))
        self._file.flush()
        self.offset += record_size(len(data))
        return start

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def write_records(path: str | os.PathLike[str], records: Iterable[bytes]) -> int:
    """Write ``records`` as a new TFRecord file (replacing one there); return how many."""
    count = 0
    with open(path, "wb") as out:
        for data in records:
            out.write(_frame(data))
            count += 1
    return count


def _read_one(file: BinaryIO, path: Path, offset: int) -> bytes | None:
    """The record at ``offset`` (the file positioned there); None at the end of the file."""
    header = file.read(_HEADER)
    if not header:
        return None
    where = f"{path} at byte {offset}"
    if len(header) < _HEADER:
        raise RecordError(f"{where}: truncated record header ({len(header)} of {_HEADER} bytes); the file was cut "
                          f"short, e.g. copied while still being written")
    length_bytes, (length_crc,) = header[:_LENGTH.size], _CRC.unpack(header[_LENGTH.size:])
    if masked_crc32c(length_bytes) != length_crc:
        raise RecordError(f"{where}: the record length's CRC does not match: not a TFRecord file, a compressed one "
                          f"(GZIP/ZLIB: decompress it first), or corrupt")
    (length,) = _LENGTH.unpack(length_bytes)
    body = file.read(length + _CRC.size)
    if len(body) < length + _CRC.size:
        raise RecordError(f"{where}: truncated record ({len(body)} of {length + _CRC.size} bytes after the "
                          f"header); the file was cut short, e.g. copied while still being written")
    data = body[:length]
    if masked_crc32c(data) != _CRC.unpack(body[length:])[0]:
        raise RecordError(f"{where}: the record's data CRC does not match: the file is corrupt")
    return data


def read_records(path: str | os.PathLike[str]) -> Iterator[bytes]:
    """Every record of a TFRecord file, CRCs checked; :class:`RecordError` names the file and offset of a bad one."""
    where = Path(path)
    with open(where, "rb") as file:
        offset = 0
        while (data := _read_one(file, where, offset)) is not None:
            yield data
            offset += record_size(len(data))


def read_record_at(file: BinaryIO, path: str | os.PathLike[str], offset: int) -> bytes:
    """The one record starting at ``offset`` of an open file (as :meth:`RecordWriter.write` returned it)."""
    file.seek(offset)
    data = _read_one(file, Path(path), offset)
    if data is None:
        raise RecordError(f"{path} at byte {offset}: no record there (the file ends before it)")
    return data
