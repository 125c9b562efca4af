"""Serving in this process until told to stop: what ``tfsk serve`` (and ``python -m tfsk.devserver``) runs."""

from __future__ import annotations

from ._flags import ServerOptions

__all__ = ["run_server"]


def run_server(options: ServerOptions, *, whole_process: bool = False) -> int:
    """Serve with ``options`` until SIGTERM or SIGINT; the exit status TF Serving would give (255:
    it could not start, after printing why).

    ``whole_process``: this process is the server, so it first re-executes itself once with
    large buffers on huge pages (see ``_malloc``), before TensorFlow loads.
    """
    if whole_process:
        from ._malloc import reexec_with_huge_pages

        reexec_with_huge_pages()
    from ._server import run

    return run(options)
