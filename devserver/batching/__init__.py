"""Server-side batching (``--enable_batching``), as TensorFlow and TF Serving do it.

- :mod:`._session`: ``BatchingSession`` around each loaded version's session, and the server's
  batching settings (:class:`ServerBatching`).
- :mod:`._scheduler`: TensorFlow's ``SharedBatchScheduler``: one pool of batch threads for every queue.
"""

from ._session import PER_MODEL_FILE, BatchingSession, MetricsRecorder, ServerBatching

__all__ = ["PER_MODEL_FILE", "BatchingSession", "MetricsRecorder", "ServerBatching"]
