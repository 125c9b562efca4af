"""TF Serving's REST API (``--rest_api_port``): a transport over the same handlers as gRPC.

- :mod:`._server`: the HTTP server (waitress), its URLs, and TF Serving's HTTP status per code.
- :mod:`._json`: predict request and answer bodies in the row and column formats.
- :mod:`._examples`: Classify and Regress bodies (``tf.Example`` as JSON).
- :mod:`._json_values`: JSON numbers and strings printed and parsed as TF Serving does.
"""

from ._server import HTTP_STATUS, RestServer

__all__ = ["HTTP_STATUS", "RestServer"]
