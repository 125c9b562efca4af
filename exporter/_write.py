"""The sequence every export shares: stage, write, verify, record lineage, publish."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras

from ._errors import ExportError
from ._lineage import build_lineage, write_lineage
from ._publish import VersionWriter
from ._result import ExportResult, ProgressCallback
from ._specs import SignatureSpec
from ._verify import SignatureRun, verify_saved_model
from ._warmup import WarmupRequest, write_warmup

__all__ = ["write_and_publish"]


def write_and_publish(
    archive: keras.export.ExportArchive,
    *,
    model_dir: Path,
    model_name: str,
    kind: str,
    version: int | None,
    expected: Mapping[str, SignatureSpec],
    runs: Sequence[SignatureRun],
    warmup: Sequence[WarmupRequest],
    facts: Mapping[str, Any],
    atol: float,
    rtol: float,
    on_step: ProgressCallback,
) -> ExportResult:
    """Write ``archive`` as the next (or the given) version of ``model_dir``, or leave no trace."""
    with VersionWriter(model_dir, version) as writer:
        on_step("write")
        try:
            archive.write_out(str(writer.path), verbose=False)
            if warmup:
                write_warmup(writer.path, model_name, warmup)
        except ExportError:
            raise
        except Exception as error:  # TF raises its own error types for I/O (disk full, permissions)
            raise ExportError(
                f"writing '{model_name}' failed: {type(error).__name__}: {error}. Nothing was published; "
                f"earlier versions in {model_dir} are untouched"
            ) from error
        on_step("verify")
        report = verify_saved_model(writer.path, expected, runs, atol=atol, rtol=rtol)
        signatures = {name: spec.to_json() for name, spec in sorted(expected.items())}
        lineage = build_lineage(
            kind, model_name, signatures=signatures, verification=report, warmup_records=len(warmup), **facts
        )
        try:
            write_lineage(writer.path, lineage)
        except OSError as error:
            raise ExportError(f"writing the lineage of '{model_name}' failed: {error}. Nothing was published") from error
        on_step("publish")
        published = writer.publish()
    return ExportResult(model_name, published, model_dir / str(published), dict(expected), lineage)
