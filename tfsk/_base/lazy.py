"""Packages whose public names load on first use, so that importing one for a light job (its CLI's
``--help``, a name check) never loads TensorFlow."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, where: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: public name -> the submodule (``._x``) defining it.

    Use: ``__getattr__, __dir__ = lazy_exports(__name__, _WHERE)`` and ``__all__`` as a literal list of the same names (a test checks they agree).
    """
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value  # later look-ups do not come here again
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(where))

    return __getattr__, __dir__
