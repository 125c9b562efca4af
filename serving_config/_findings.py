"""Findings: what validation reports, one problem each, with the fix."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ._errors import ConfigInvalidError


class Severity(enum.StrEnum):
    """``ERROR``: TF Serving refuses the file, hangs, or serves something broken. ``WARNING``: it
    works, but probably not the way it was meant to."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    """One problem: where (model, field), what is wrong, what to do.

    ``code`` is a stable identifier for scripts (``duplicate-name``, ``no-versions``, ...).
    ``server_message`` is the status TF Serving itself returns for this mistake, where it
    returns one, so an embedded server can answer with the same words.
    """

    severity: Severity
    code: str
    message: str
    action: str
    model: str | None = None
    field: str | None = None
    server_message: str | None = None
    #: TF Serving's status code name for ``server_message`` (``INVALID_ARGUMENT``, ...), where it has one.
    server_code: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def __str__(self) -> str:
        where = []
        if self.model is not None:
            where.append(f"model {self.model!r}")
        if self.field:
            where.append(self.field)
        location = f" {', '.join(where)}:" if where else ""
        return f"{self.severity.value} [{self.code}]{location} {self.message} -> {self.action}"

    def to_json(self) -> dict[str, Any]:
        return {
            "severity": self.severity.value,
            "code": self.code,
            "model": self.model,
            "field": self.field,
            "message": self.message,
            "action": self.action,
            "server_message": self.server_message,
            "server_code": self.server_code,
        }


@dataclass(frozen=True)
class ValidationReport:
    """Every finding for one config (``source`` names the file, or ``<string>``)."""

    source: str
    kind: str
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.is_error]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if not f.is_error]

    @property
    def ok(self) -> bool:
        """No errors (warnings allowed)."""
        return not self.errors

    def codes(self) -> set[str]:
        return {f.code for f in self.findings}

    def raise_for_errors(self) -> None:
        """Raise :class:`ConfigInvalidError` when any finding is an error."""
        if not self.ok:
            raise ConfigInvalidError(self)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kind": self.kind,
            "ok": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "findings": [f.to_json() for f in self.findings],
        }


class FindingList:
    """Collects findings for one model or one file; a small helper so every check reads alike."""

    def __init__(self, model: str | None = None) -> None:
        self.model = model
        self.items: list[Finding] = []

    def error(self, code: str, field: str | None, message: str, action: str,
              server_message: str | None = None, server_code: str | None = None) -> None:
        self.items.append(Finding(Severity.ERROR, code, message, action, self.model, field, server_message,
                                  server_code))

    def warning(self, code: str, field: str | None, message: str, action: str,
                server_message: str | None = None, server_code: str | None = None) -> None:
        self.items.append(Finding(Severity.WARNING, code, message, action, self.model, field, server_message,
                                  server_code))

    def extend(self, findings: Iterable[Finding]) -> None:
        self.items.extend(findings)
