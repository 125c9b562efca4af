"""The one exception root of tfsk: every package's own errors derive from :class:`TfskError`.

``except tfsk.TfskError`` catches whatever any package of tfsk refuses or fails to do (and only
that). Each package keeps its own root under it (``ExportError``, ``ConfigError``,
``ClientError``, ``StackError``, ...), and classes that are also a built-in error keep that base
too (a ``FlagError`` is still a ``ValueError``), so code that caught them before still does.
"""

from __future__ import annotations

__all__ = ["EXIT_COULD_NOT_RUN", "EXIT_NOT_RIGHT", "TfskError"]

#: The ``tfsk`` command's exit status for an error: what was checked is not right (a verification,
#: a contract, a split that does not hold) ...
EXIT_NOT_RIGHT = 1
#: ... or the command could not do its work (a missing file, a refused request, no server).
EXIT_COULD_NOT_RUN = 2


class TfskError(Exception):
    """Base class of every error tfsk raises on purpose.

    ``exit_code`` is the ``tfsk`` command's exit status when the error ends a command:
    :data:`EXIT_COULD_NOT_RUN` (2) unless a class says that what it checked is not right
    (:data:`EXIT_NOT_RIGHT`, 1). The command line maps it in one place (``tfsk.cli``).
    """

    exit_code: int = EXIT_COULD_NOT_RUN
