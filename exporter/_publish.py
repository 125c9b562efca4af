"""Atomic, never-overwriting publication of a version folder.

A version is written under a non-numeric temporary name inside the model folder (so a polling
TF Serving ignores it), flushed to disk, and renamed to its number only when complete and
verified. The number is chosen, and the rename done, under an advisory lock on the model folder,
so two exporters racing for the same model get two distinct versions. The rename itself refuses
to replace anything that is already there.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import logging
import os
import shutil
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from tfsk._base import layout

from ._errors import ExportError, VersionExistsError

__all__ = ["VersionWriter", "model_lock", "remove_version"]

logger = logging.getLogger(__name__)

TEMP_PREFIX = ".tfsk-tmp-"
TRASH_PREFIX = ".tfsk-trash-"
LOCK_NAME = ".tfsk.lock"
_RENAME_NOREPLACE = 1


@contextmanager
def model_lock(model_dir: Path) -> Iterator[None]:
    """Hold the model folder's advisory lock (shared by exporters and pruning)."""
    model_dir.mkdir(parents=True, exist_ok=True)
    with open(model_dir / LOCK_NAME, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _load_renameat2():  # type: ignore[no-untyped-def]
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return function


_renameat2 = _load_renameat2()
_AT_FDCWD = -100


def _rename_no_replace(source: Path, target: Path) -> None:
    """Rename, failing with FileExistsError if ``target`` exists (even as an empty folder)."""
    if _renameat2 is not None:
        result = _renameat2(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), _RENAME_NOREPLACE)
        if result == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.ENOSYS, errno.EINVAL):  # EINVAL: file system without the flag
            raise OSError(code, os.strerror(code), str(target))
    # Fallback, still under the model lock: plain rename would replace an empty folder.
    if os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target))
    os.rename(source, target)


def _fsync_tree(root: Path) -> None:
    """Flush every file and folder under ``root`` so a published version survives a power cut."""
    for folder, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(folder))


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_temporaries(model_dir: Path) -> None:
    """Remove folders left by exporters on this host that died (e.g. killed mid-export)."""
    host = socket.gethostname()
    for child in model_dir.iterdir():
        if child.name.startswith(TRASH_PREFIX):
            shutil.rmtree(child, ignore_errors=True)
            continue
        if not child.name.startswith(TEMP_PREFIX):
            continue
        try:
            owner_host, pid_text, _ = child.name[len(TEMP_PREFIX) :].rsplit("-", 2)
            pid = int(pid_text)
        except ValueError:
            continue
        if owner_host == host and not _process_alive(pid):
            logger.info("removing %s, left behind by an export that did not finish", child)
            shutil.rmtree(child, ignore_errors=True)


def version_taken(model_dir: Path, version: int) -> Path | None:
    """The existing child that TF Serving would read as ``version`` (``5`` or ``005``), if any."""
    for found in layout.list_versions(model_dir):
        if found.version == version:
            return found.path
    return None


def next_version(model_dir: Path) -> int:
    """Highest version on disk + 1 (1 for an empty or new model folder)."""
    versions = [v.version for v in layout.list_versions(model_dir)]
    return max([0, *versions]) + 1


class VersionWriter:
    """Stage a version in a temporary folder; publish it atomically, or leave no trace.

    ``with VersionWriter(model_dir, version) as writer:`` gives ``writer.path`` to write into;
    ``writer.publish()`` renames it into place and returns the version number. Leaving the block
    without publishing (or with an exception) deletes the temporary folder.
    """

    def __init__(self, model_dir: Path, version: int | None = None) -> None:
        if version is not None and not (1 <= version <= layout.INT64_MAX):
            raise ExportError(f"version must be a positive 64-bit integer, got {version}")
        self.model_dir = Path(model_dir)
        self.requested_version = version
        self.path = self.model_dir / f"{TEMP_PREFIX}{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.version: int | None = None

    def __enter__(self) -> VersionWriter:
        self._created_model_dir = not self.model_dir.exists()
        self.model_dir.mkdir(parents=True, exist_ok=True)
        if self.requested_version is not None:
            self._refuse_existing(self.requested_version)  # fail before the expensive work
        with model_lock(self.model_dir):
            _remove_stale_temporaries(self.model_dir)
        self.path.mkdir(parents=True)  # parents: another writer's clean-up may have just removed an empty model folder
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.version is None:
            shutil.rmtree(self.path, ignore_errors=True)
            if self._created_model_dir:
                self._remove_empty_model_dir()

    def _remove_empty_model_dir(self) -> None:
        """A model folder this writer created and left holding only the lock (an interrupted or failed
        first export) is removed, so no empty model folder is left for a server to watch."""
        try:
            with model_lock(self.model_dir):
                if {child.name for child in self.model_dir.iterdir()} != {LOCK_NAME}:
                    return  # another exporter's work, or a version: keep it
                (self.model_dir / LOCK_NAME).unlink()
                self.model_dir.rmdir()
        except OSError:
            pass  # best effort: an empty folder is untidy, not wrong

    def _refuse_existing(self, version: int) -> None:
        existing = version_taken(self.model_dir, version)
        if existing is not None:
            raise VersionExistsError(
                f"version {version} of '{self.model_dir.name}' already exists at {existing}; "
                "versions are never overwritten: omit --version to take the next free one, "
                "or prune the old version first"
            )

    def publish(self, check: Callable[[], None] | None = None) -> int:
        """Flush, pick the version number and rename into place; return the version.

        ``check`` runs under the model lock just before the rename (a last look at the neighbours
        that no other exporter can change meanwhile); raising there publishes nothing.
        """
        _fsync_tree(self.path)
        with model_lock(self.model_dir):
            version = self.requested_version or next_version(self.model_dir)
            self._refuse_existing(version)
            if check is not None:
                check()
            target = self.model_dir / str(version)
            try:
                _rename_no_replace(self.path, target)
            except FileExistsError:
                raise VersionExistsError(
                    f"{target} appeared while exporting; nothing was overwritten, nothing published"
                ) from None
            _fsync_dir(self.model_dir)
        self.version = version
        logger.info("published %s", target)
        return version


def remove_version(model_dir: Path, child: Path) -> None:
    """Delete a version so that a polling server never sees it half-deleted.

    The folder first disappears from the server's view in one rename to a non-numeric name, and is
    deleted afterwards. Call with the model lock held.
    """
    trash = model_dir / f"{TRASH_PREFIX}{child.name}-{uuid.uuid4().hex[:12]}"
    os.rename(child, trash)
    _fsync_dir(model_dir)
    shutil.rmtree(trash)
