"""What every ``tfsk`` command shares: exit codes, errors, JSON, a quiet closed pipe, quiet TensorFlow,
and a console with progress on terminals only.

Exit codes, the same for every command:

- 0: done, and what was checked is right;
- 1: done, but what was checked is not right (differences, validation errors, inconsistency);
- 2: usage error, or the command could not do its work (a missing file, a refused export, no server);
- 130: interrupted (Ctrl-C) before anything was changed.

Under ``--json`` every outcome, errors included, is one JSON document on stdout; without it,
errors are one line on stderr: ``tfsk COMMAND: error: what was wrong; what to do``.

Errors map to exit codes here, in :func:`guarded`, and nowhere else: every error tfsk raises is a
:class:`tfsk.TfskError` and carries its ``exit_code`` (1 for the errors that say what was checked
is not right: ``VerificationError``, ``ContractChangeError``, ``HeadReuseError``, ``SplitError``,
``GateFailedError``;
2 for everything else, :class:`CommandError` included unless it says otherwise). An ``OSError``
is exit 2 with what failed, where, and what to do. A command catches an error itself only to say
more than the error does (where a rollout stopped, that the demo's export failed).
Top layer only: the command modules and the demo's job import it, the libraries never do.
"""

from __future__ import annotations

import argparse
import errno
import io
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

from tfsk._base.errors import EXIT_COULD_NOT_RUN, EXIT_NOT_RIGHT, TfskError

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_NOT_RIGHT",
    "EXIT_OK",
    "EXIT_USAGE",
    "ArgumentParser",
    "CommandError",
    "ExportSteps",
    "Progress",
    "describe_error",
    "describe_os_error",
    "emit_json",
    "finish",
    "guarded",
    "positive_int",
    "print_table",
    "quiet_native_stderr",
    "report_error",
    "setup_logging",
    "wants_json",
]

EXIT_OK = 0
EXIT_USAGE = EXIT_COULD_NOT_RUN
EXIT_INTERRUPTED = 130


class CommandError(TfskError):
    """A command that cannot go on: ``str()`` is the one line shown; ``code`` the exit status.

    ``details`` go into the JSON document of the error under ``--json``.
    """

    def __init__(self, message: str, code: int = EXIT_USAGE, **details: Any) -> None:
        super().__init__(message)
        self.code = self.exit_code = code
        self.details = details


def describe_error(error: TfskError) -> str:
    """What a command shows for ``error``: its message, and the server's last log lines when it has them
    (a :class:`tfsk.deploy.StackError` whose server exited or never became healthy)."""
    tail = getattr(error, "log_tail", "")
    return f"{error}\n--- last lines of the server's log ---\n{tail}" if tail else str(error)


def wants_json(argv: Sequence[str]) -> bool:
    return "--json" in argv


def emit_json(data: Any) -> None:
    import json

    print(json.dumps(data, indent=2, default=str), flush=True)


def report_error(prog: str, message: str, code: int, as_json: bool, **details: Any) -> int:
    if as_json:
        emit_json({"ok": False, "command": prog, "exit_code": code, "error": message, **details})
    elif _is_terminal(sys.stderr):
        from rich.console import Console
        from rich.text import Text

        Console(file=sys.stderr, soft_wrap=True).print(Text.assemble((f"{prog}: error:", "bold red"), f" {message}"))
    else:
        print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    return code


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty()) and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], plain: Sequence[str]) -> None:
    """A table on a terminal; the ``plain`` lines (stable, for scripts) anywhere else."""
    if not _is_terminal(sys.stdout):
        for line in plain:
            print(line)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(*headers, header_style="bold")
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    Console().print(table)


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors are one JSON document on stdout under ``--json`` (exit 2 either way)."""

    def __init__(self, *args: Any, json_mode: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.json_mode = json_mode

    def add_subparsers(self, **kwargs: Any) -> Any:
        commands = super().add_subparsers(**kwargs)
        json_mode = self.json_mode

        class _Sub(ArgumentParser):
            def __init__(self, *a: Any, **k: Any) -> None:
                super().__init__(*a, json_mode=json_mode, **k)

        commands._parser_class = _Sub  # subcommands report usage errors the same way
        return commands

    def error(self, message: str) -> NoReturn:
        if self.json_mode:
            report_error(self.prog, message, EXIT_USAGE, True, usage=self.format_usage().strip())
            sys.exit(EXIT_USAGE)
        super().error(message)


def positive_int(text: str) -> int:
    """An argparse type: a version number or a count, 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


_OS_ADVICE = {
    errno.EROFS: "the file system is read-only: choose a folder you can write to",
    errno.EACCES: "no permission: choose a folder you can write to, or fix its permissions",
    errno.EPERM: "not permitted: choose a folder you can write to, or fix its permissions",
    errno.ENOSPC: "the disk is full: free some space and try again",
    errno.EDQUOT: "the disk quota is used up: free some space and try again",
    errno.ENOENT: "it does not exist: check the path (and that its parent folders exist)",
    errno.ENOTDIR: "a part of the path is a file, not a folder: check the path",
}


def describe_os_error(error: OSError) -> str:
    """One line: what failed, where, and what to do."""
    where = os.fspath(error.filename) if error.filename is not None else "?"
    advice = _OS_ADVICE.get(error.errno or 0)
    reason = error.strerror or str(error)
    return f"{where}: {reason}" + (f"; {advice}" if advice else "")


def _quiet_closed_pipe() -> None:
    # The reader (``| head``) went away: point stdout at /dev/null so the interpreter's final flush
    # does not raise a second time on the way out.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def guarded(prog: str, argv: Sequence[str], body: Callable[[], int],
            on_interrupt: Callable[[], tuple[str, int]] | None = None) -> int:
    """Run a command's body with the shared error conventions; return its exit status.

    The one place where errors become exit codes: a :class:`tfsk.TfskError` exits with its
    ``exit_code``, an ``OSError`` with 2. ``on_interrupt`` says, after Ctrl-C, what was and was
    not done and which status to exit with (default: ``interrupted``, 130).
    """
    as_json = wants_json(argv)
    try:
        return body()
    except TfskError as error:
        details = error.details if isinstance(error, CommandError) else {}
        return report_error(prog, describe_error(error), error.exit_code, as_json, **details)
    except BrokenPipeError:
        _quiet_closed_pipe()
        return EXIT_OK
    except OSError as error:
        return report_error(prog, describe_os_error(error), EXIT_USAGE, as_json)
    except KeyboardInterrupt:
        message, code = on_interrupt() if on_interrupt else ("interrupted", EXIT_INTERRUPTED)
        return report_error(prog, message, code, as_json, interrupted=True)


def finish(code: int) -> NoReturn:
    """Exit the process; skip TensorFlow's slow interpreter teardown once everything is flushed."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    if "tensorflow" in sys.modules:
        os._exit(code)  # everything is published and flushed; TF's atexit work only costs time
    sys.exit(code)


@contextmanager
def quiet_native_stderr(verbose: bool = False) -> Iterator[None]:
    """Keep TensorFlow's C++ logs (start-up banner, cuInit, oneDNN notes) off the terminal.

    They are written straight to file descriptor 2, before TensorFlow's log level applies, so the
    descriptor points at /dev/null while the block runs; Python's own ``sys.stderr`` (our
    messages, logging, the progress bar) keeps writing to the real stderr. TensorFlow's failures
    still reach the user as Python exceptions; ``verbose`` shows everything.
    """
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable stderr: nothing to protect
        yield
        return
    original = sys.stderr
    sink = os.open(os.devnull, os.O_WRONLY)
    os.dup2(sink, 2)
    os.close(sink)
    sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(saved), "wb", buffering=0), write_through=True,
                                  encoding=getattr(original, "encoding", None) or "utf-8", errors="replace")
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        sys.stderr = original


def setup_logging(verbose: bool, progress: Progress | None = None) -> None:
    """Library log lines go through the progress display (so they never break its bar), or to stderr."""
    import logging

    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    if progress is not None and progress.console is not None:
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(console=progress.console, show_time=False, show_path=False,
                                               markup=False, rich_tracebacks=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    for noisy in ("tensorflow", "absl", "h5py", "keras"):
        logging.getLogger(noisy).setLevel(logging.INFO if verbose else logging.ERROR)


class Progress:
    """One bar for a whole command, on a terminal's stderr only (never under ``--json`` or in a pipe).

    ``total`` may be unknown at first (``None``: a spinner) and set once known; ``step(text)``
    advances by one and says what is being done now.
    """

    def __init__(self, title: str, enabled: bool = True) -> None:
        self.console = None
        self._bar: Any = None
        self._task: Any = None
        if enabled and _is_terminal(sys.stderr):
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import Progress as RichProgress

            self.console = Console(file=sys.stderr)
            self._bar = RichProgress(SpinnerColumn(), TextColumn("[bold]{task.fields[title]}"), BarColumn(),
                                     MofNCompleteColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                     console=self.console, transient=True,
                                     redirect_stdout=False, redirect_stderr=False)  # stdout stays ours
            self._task = self._bar.add_task("starting", total=None, title=title)

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Take the bar off the terminal (before printing results on stdout)."""
        if self._bar is not None:
            self._bar.stop()

    def set_total(self, total: int) -> None:
        if self._bar is not None:
            self._bar.update(self._task, total=total)

    def note(self, text: str) -> None:
        """Say what is happening without advancing."""
        if self._bar is not None:
            self._bar.update(self._task, description=text)

    def step(self, text: str) -> None:
        """One step done; ``text`` is the one that starts."""
        if self._bar is not None:
            self._bar.update(self._task, advance=1, description=text)

    def print(self, text: str) -> None:
        """A line for the user on stderr, above the bar."""
        if self.console is not None:
            self.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=sys.stderr, flush=True)


class ExportSteps:
    """An exporter ``on_step`` callback: one bar step per step of each model, models in ``names`` order.

    The bar's first step is the import of TensorFlow, which comes before any model.
    """

    def __init__(self, progress: Progress, names: Sequence[str], steps_per_model: int) -> None:
        self.progress, self.names, self.index = progress, list(names), -1
        progress.set_total(1 + steps_per_model * len(self.names))

    def __call__(self, step: str) -> None:
        if step == "load":  # the first step of each model
            self.index += 1
        name = self.names[self.index] if 0 <= self.index < len(self.names) else "model"
        self.progress.step(f"{name}: {step}")

    def done(self) -> None:
        self.progress.step("done")
