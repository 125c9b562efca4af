"""Base paths as TF Serving reads them, and the host <-> container mapping.

The compose stack mounts one host folder (``host_root``) at one container folder
(``container_root``); the devserver reads the host folder directly. A model's base path is
``<root>/<folder>`` on either side, so both configs come from the same declaration and a
container path can be checked on the host it is mounted from.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tfsk._base import rules

from ._errors import ConfigError


def split_uri(base_path: str) -> tuple[str, str, str]:
    """``(scheme, host, path)`` the way ``tensorflow::io::ParseURI`` splits it."""
    return rules.split_uri(base_path)


def is_relative_base_path(base_path: str) -> bool:
    """TF Serving's ``UriIsRelativePath``: no scheme, no host, and not starting with ``/``.

    Such a base path is refused (the empty string included). ``s3://b/m`` and ``gs://b/m`` are
    URIs (accepted); a one-letter scheme such as ``s://x`` is not one for TensorFlow (refused).
    """
    return rules.is_relative(base_path)


def local_path(base_path: str) -> str | None:
    """The local file-system path of a base path, or ``None`` for a remote URI (``s3://``, ``gs://``)."""
    return rules.local_path(base_path)


@dataclass(frozen=True)
class PathMapping:
    """``host_root`` (a folder on this machine) is mounted at ``container_root`` in the container."""

    host_root: Path
    container_root: PurePosixPath

    def __post_init__(self) -> None:
        if not self.host_root.is_absolute():
            raise ConfigError(f"host root {str(self.host_root)!r} is not absolute; use PathMapping.of(), "
                              f"which makes it absolute against the current folder")
        if not self.container_root.is_absolute():
            raise ConfigError(f"container root {str(self.container_root)!r} is not absolute; TF Serving "
                              f"needs absolute base paths, so give e.g. '/models'")

    @classmethod
    def of(cls, host_root: str | os.PathLike[str], container_root: str) -> PathMapping:
        """A mapping from user input: ``host_root`` may be relative (to the current folder)."""
        container = posixpath.normpath(container_root) if container_root else container_root
        return cls(Path(os.path.abspath(host_root)), PurePosixPath(container))

    def container_path(self, relative: str | os.PathLike[str] = "") -> str:
        """The container path of ``relative`` (a path under the roots)."""
        return str(self.container_root / Path(relative).as_posix())

    def host_path(self, relative: str | os.PathLike[str] = "") -> Path:
        """The absolute host path of ``relative``."""
        return Path(os.path.normpath(self.host_root / relative))

    def to_container(self, host_path: str | os.PathLike[str]) -> str | None:
        """Where ``host_path`` is seen inside the container, or ``None`` if it is not under the mount."""
        absolute = Path(os.path.abspath(host_path))
        if not absolute.is_relative_to(self.host_root):
            return None
        return self.container_path(absolute.relative_to(self.host_root))

    def to_host(self, container_path: str) -> Path | None:
        """The host folder a container path is mounted from, or ``None`` if it is outside the mount."""
        path = PurePosixPath(posixpath.normpath(container_path))
        if not path.is_absolute() or not path.is_relative_to(self.container_root):
            return None
        return self.host_path(path.relative_to(self.container_root))

    def to_json(self) -> dict[str, str]:
        return {"host_root": str(self.host_root), "container_root": str(self.container_root)}
