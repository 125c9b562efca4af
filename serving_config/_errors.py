"""One exception hierarchy for everything serving_config refuses to do."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tfsk._base.errors import TfskError

if TYPE_CHECKING:
    from ._findings import ValidationReport


class ConfigError(TfskError):
    """Base class: a config, declaration or request that serving_config cannot work with."""


class ConfigParseError(ConfigError):
    """A text-format file that TF Serving's parser would refuse too, with where it went wrong."""

    def __init__(self, source: str, line: int | None, column: int | None, reason: str, what: str) -> None:
        self.source = source
        self.line = line
        self.column = column
        self.reason = reason
        self.what = what
        where = source if line is None else f"{source}:{line}:{column}"
        super().__init__(
            f"{where}: {reason} (TF Serving refuses this {what} file with \"Invalid protobuf file\"; "
            f"fix the text at that position)"
        )


class DeclarationError(ConfigError):
    """A ``tfsk.toml`` declaration that cannot be turned into configs."""


class LabelPlanError(ConfigError):
    """A label move that cannot be planned (unknown model, version not on disk, ...)."""


class ConfigInvalidError(ConfigError):
    """Validation found errors; ``report`` holds every finding."""

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        lines = [f"{report.source}: {len(report.errors)} error(s)"] + [f"  {f}" for f in report.errors]
        super().__init__("\n".join(lines))
