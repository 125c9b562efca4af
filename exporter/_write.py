"""The sequence every export shares: stage, write, verify, record lineage, publish."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfsk._base import layout
from tfsk._base.naming import LINEAGE_OUTPUT, LINEAGE_SIGNATURE

from ._contract import LayoutEntry, check_contract
from ._errors import ExportError
from ._lineage import build_lineage, write_lineage
from ._publish import VersionWriter
from ._result import ExportResult, ProgressCallback
from ._signature_defs import read_signatures
from ._specs import SignatureSpec, TensorSpecInfo
from ._verify import SignatureRun, verify_saved_model
from ._warmup import WarmupRequest, write_warmup

__all__ = ["write_and_publish"]


def _add_lineage_signature(archive: keras.export.ExportArchive, lineage: Mapping[str, Any]) -> tuple[SignatureSpec, bytes]:
    text = json.dumps(lineage, sort_keys=True).encode("utf-8")
    archive.add_endpoint(LINEAGE_SIGNATURE, lambda: {LINEAGE_OUTPUT: tf.constant(text)}, input_signature=[])
    return SignatureSpec({}, {LINEAGE_OUTPUT: TensorSpecInfo("string", ())}), text


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
    provenance: Mapping[str, Any] | None = None,
    atol: float,
    rtol: float,
    on_step: ProgressCallback,
    allow_contract_change: bool = False,
    concatenation: Sequence[LayoutEntry] | None = None,
    extra_files: Mapping[str, Path] | None = None,
) -> ExportResult:
    """Write ``archive`` as the next (or the given) version of ``model_dir``, or leave no trace.

    Before publishing, the written signatures (and a composed model's ``concatenation`` layout)
    are compared with the newest version on disk (:func:`check_contract`); ``extra_files`` are
    copied into ``assets.extra/`` under the given names.
    """
    # What is known before writing goes into the graph; the file adds the verification results.
    if provenance is not None:  # where the caller says the model came from (e.g. a split of a joint model)
        facts = {**facts, "provenance": dict(provenance)}
    lineage = build_lineage(kind, model_name, **facts)
    lineage_spec, lineage_text = _add_lineage_signature(archive, lineage)
    expected = {**expected, LINEAGE_SIGNATURE: lineage_spec}
    runs = [*runs, SignatureRun(LINEAGE_SIGNATURE, {}, {LINEAGE_OUTPUT: np.array(lineage_text, dtype=object)})]
    with VersionWriter(model_dir, version) as writer:
        on_step("write")
        try:
            archive.write_out(str(writer.path), verbose=False)
            if warmup:
                write_warmup(writer.path, model_name, warmup)
            for file_name, source in (extra_files or {}).items():
                (writer.path / layout.ASSETS_EXTRA).mkdir(exist_ok=True)
                shutil.copyfile(source, writer.path / layout.ASSETS_EXTRA / file_name)
        except ExportError:
            raise
        except Exception as error:  # TF raises its own error types for I/O (disk full, permissions)
            raise ExportError(
                f"writing '{model_name}' failed: {type(error).__name__}: {error}. Nothing was published; "
                f"earlier versions in {model_dir} are untouched"
            ) from error
        on_step("verify")
        report = verify_saved_model(writer.path, expected, runs, atol=atol, rtol=rtol)
        written = read_signatures(writer.path)  # the contract is what was written, as a server reads it
        contract = check_contract(model_dir, written, layout=concatenation, allow_change=allow_contract_change)
        signatures = {name: spec.to_json() for name, spec in sorted(expected.items())}
        lineage = {**lineage, "signatures": signatures, "verification": report, "warmup_records": len(warmup),
                   "contract": contract.to_json()}
        try:
            write_lineage(writer.path, lineage)
        except OSError as error:
            raise ExportError(f"writing the lineage of '{model_name}' failed: {error}. Nothing was published") from error
        on_step("publish")

        def recheck() -> None:  # under the lock: another exporter may have published meanwhile
            newest = [v.version for v in layout.list_versions(model_dir) if v.complete]
            if newest and newest[-1] != contract.previous_version:
                check_contract(model_dir, written, layout=concatenation, allow_change=allow_contract_change)

        published = writer.publish(recheck)
    return ExportResult(model_name, published, model_dir / str(published), dict(expected), lineage)
