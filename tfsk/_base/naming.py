"""The names the exporter writes and the client reads: the contract of a composed model's signatures.

A composed version's ``serving_default`` takes ``<part>__<input>`` for every part input and
returns :data:`HEAD_OUTPUT_NAME` plus ``<part>__<output>`` for every part output; it carries one
``part_<name>`` signature per part (the part's own input and output names) and a no-input
:data:`LINEAGE_SIGNATURE` whose :data:`LINEAGE_OUTPUT` is the lineage JSON. Both sides import these
names from here, so they cannot drift apart.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_SIGNATURE",
    "HEAD_OUTPUT_NAME",
    "INPUT_SEPARATOR",
    "LINEAGE_OUTPUT",
    "LINEAGE_SIGNATURE",
    "MAX_WARMUP_RECORDS",
    "PART_SIGNATURE_PREFIX",
    "composed_key",
    "part_of_signature",
    "part_signature",
]

#: The signature TF Serving runs when a request names none (``kDefaultServingSignatureDefKey``).
DEFAULT_SIGNATURE = "serving_default"
#: Joins a part name and one of its input or output names in the composed signature.
INPUT_SEPARATOR = "__"
#: Prefix of the per-part signatures of a composed model.
PART_SIGNATURE_PREFIX = "part_"
#: The composed model's head output in ``serving_default``.
HEAD_OUTPUT_NAME = "prediction"
#: The no-input signature that returns a composed version's lineage over the wire.
LINEAGE_SIGNATURE = "tfsk_lineage"
#: Its one output: the lineage JSON as a scalar string.
LINEAGE_OUTPUT = "lineage"
#: TF Serving refuses a version whose warmup file holds more records than this.
MAX_WARMUP_RECORDS = 1000


def composed_key(part: str, name: str) -> str:
    """The composed signature's key for a part's input or output ``name``."""
    return f"{part}{INPUT_SEPARATOR}{name}"


def part_signature(part: str) -> str:
    """The composed model's signature that runs ``part`` alone."""
    return PART_SIGNATURE_PREFIX + part


def part_of_signature(signature: str) -> str | None:
    """The part a ``part_<name>`` signature runs, or None for any other signature."""
    return signature[len(PART_SIGNATURE_PREFIX):] if signature.startswith(PART_SIGNATURE_PREFIX) else None
