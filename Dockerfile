# tfsk images for the compose stack (docker-compose.yml builds both):
#   light     the default install: client, config tools, `tfsk stack` (no TensorFlow); the smoke service
#   exporter  light + the [export] extra (TensorFlow, Keras); the one-shot exporter service
# Pinned base and dependencies (constraints.txt pins every package); runs as a non-root user.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS light
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    HOME=/tmp
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY tfsk ./tfsk
COPY exporter ./exporter
COPY serving_config ./serving_config
COPY client ./client
COPY devserver ./devserver
COPY deploy ./deploy
RUN pip install --constraint constraints.txt . \
    && useradd --uid 1000 --user-group --no-create-home --home-dir /tmp tfsk
# The compose file runs it as the host user (TFSK_UID/TFSK_GID) so files it writes stay the user's.
USER 1000:1000
ENTRYPOINT ["tfsk"]
CMD ["--help"]

FROM light AS exporter
USER root
RUN pip install --constraint constraints.txt ".[export]" \
    && install -m 0755 deploy/exporter-entrypoint.sh /usr/local/bin/tfsk-exporter
# The compose file starts it as root so the entrypoint can give the model folder to the host user
# who owns tfsk.toml; it then drops to that user (setpriv) before running tfsk.
ENTRYPOINT ["tfsk-exporter"]
USER 1000:1000
