"""Read SignatureDefs back from a SavedModel on disk, as TF Serving sees them."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from tfsk._base import layout

from ._specs import SignatureSpec, TensorSpecInfo

__all__ = ["PREDICT_METHOD", "read_signatures", "signature_spec"]

PREDICT_METHOD = "tensorflow/serving/predict"
SERVE_TAG = "serve"


def _tensor_info(info: meta_graph_pb2.TensorInfo) -> TensorSpecInfo:
    dtype = tf.as_dtype(info.dtype).name
    if info.tensor_shape.unknown_rank:
        return TensorSpecInfo(dtype, None)
    return TensorSpecInfo(dtype, tuple(None if d.size < 0 else d.size for d in info.tensor_shape.dim))


def signature_spec(signature: meta_graph_pb2.SignatureDef) -> SignatureSpec:
    """The signature's inputs and outputs, in name order (proto maps have none of their own)."""
    return SignatureSpec(
        {k: _tensor_info(v) for k, v in sorted(signature.inputs.items())},
        {k: _tensor_info(v) for k, v in sorted(signature.outputs.items())},
    )


def serving_signature_defs(meta_graph: meta_graph_pb2.MetaGraphDef) -> dict[str, meta_graph_pb2.SignatureDef]:
    """The signatures a client can call (TF's internal ``__saved_model_init_op`` left out)."""
    return {k: v for k, v in meta_graph.signature_def.items() if not k.startswith("__")}


def read_signatures(version_dir: Path) -> dict[str, SignatureSpec]:
    """Signatures of the ``serve`` MetaGraph in ``version_dir/saved_model.pb``, without loading it."""
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((Path(version_dir) / layout.SAVED_MODEL_FILE).read_bytes())
    for meta_graph in saved_model.meta_graphs:
        if SERVE_TAG in meta_graph.meta_info_def.tags:
            return {k: signature_spec(v) for k, v in sorted(serving_signature_defs(meta_graph).items())}
    raise ValueError(f"{version_dir} has no MetaGraph tagged '{SERVE_TAG}'")
