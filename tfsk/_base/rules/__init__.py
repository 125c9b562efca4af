"""TF Serving's config, version-folder and load rules, written once, with its exact messages.

The devserver raises these verdicts as gRPC statuses and the config validator turns them into
findings, so both say the same thing for the same config and folders:

- :mod:`.config`: base paths (``io::ParseURI``) and ``ServerCore::ReloadConfig``'s checks, in order;
- :mod:`.source`: what one file-system poll of a model aspires, and which folder of a version loads;
- :mod:`.load`: why a version folder fails to load, with the C++ loader's codes.

Pure Python and protobuf, no TensorFlow; the only I/O is reading local folders.
"""

from ._verdict import Verdict, servable_id
from .config import (
    DEVSERVER_SCHEMES,
    MODEL_TYPE_TENSORFLOW,
    TENSORFLOW_PLATFORM,
    TF_SERVING_SCHEMES,
    config_list_refusals,
    describe_unavailable,
    is_relative,
    label_admitted,
    label_refusal,
    label_refusals,
    local_path,
    platform_change_refusals,
    platform_of,
    reload_refusal,
    route_refusals,
    split_uri,
    transition_refusal,
    unreadable_scheme,
)
from .load import (
    folder_problem,
    missing_saved_model,
    not_a_directory,
    saved_model_bytes_problem,
    tags_not_found,
    unparsable,
    version_path,
)
from .source import Poll, poll_servable, select_versions

__all__ = [
    "DEVSERVER_SCHEMES",
    "MODEL_TYPE_TENSORFLOW",
    "TENSORFLOW_PLATFORM",
    "TF_SERVING_SCHEMES",
    "Poll",
    "Verdict",
    "config_list_refusals",
    "describe_unavailable",
    "folder_problem",
    "is_relative",
    "label_admitted",
    "label_refusal",
    "label_refusals",
    "local_path",
    "missing_saved_model",
    "not_a_directory",
    "platform_change_refusals",
    "platform_of",
    "poll_servable",
    "reload_refusal",
    "route_refusals",
    "saved_model_bytes_problem",
    "select_versions",
    "servable_id",
    "split_uri",
    "tags_not_found",
    "transition_refusal",
    "unparsable",
    "unreadable_scheme",
    "version_path",
]
