#!/usr/bin/env bash
# The serving container's healthcheck: healthy only when every model named in the served
# models.config has a version AVAILABLE, asked over TF Serving's REST status endpoint
# (GET /v1/models/<name>). The tensorflow/serving image has no curl or wget, so bash's
# /dev/tcp speaks HTTP; only bash builtins are used here.
#
# usage: tfsk-healthcheck REST_PORT MODEL_CONFIG_FILE
set -u
port="${1:-8501}"
config="${2:-/models/models.config}"

names=()
while IFS= read -r line || [[ -n "$line" ]]; do
  if [[ "$line" =~ ^[[:space:]]*name:[[:space:]]*\"([^\"]+)\" ]]; then
    names+=("${BASH_REMATCH[1]}")
  fi
done < "$config" || { echo "cannot read $config"; exit 1; }
if (( ${#names[@]} == 0 )); then
  echo "no model in $config"
  exit 1
fi

for name in "${names[@]}"; do
  if ! exec 3<>"/dev/tcp/127.0.0.1/$port"; then
    echo "REST port $port is not open yet"
    exit 1
  fi
  printf 'GET /v1/models/%s HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$name" >&3
  # Status line and headers up to the empty line; then Content-Length characters of body (or
  # up to the end of the stream), so a server that keeps the connection open does not stall us.
  status="" length="" body=""
  while IFS= read -r -t 5 line <&3; do
    line="${line%$'\r'}"
    [[ -z "$status" ]] && status="$line" && continue
    [[ -z "$line" ]] && break
    if [[ "${line,,}" =~ ^content-length:[[:space:]]*([0-9]+) ]]; then length="${BASH_REMATCH[1]}"; fi
  done
  if [[ -n "$length" ]]; then
    IFS= read -r -N "$length" -t 5 body <&3
  else
    while IFS= read -r -t 5 chunk <&3 || [[ -n "$chunk" ]]; do body+="$chunk"$'\n'; done
  fi
  exec 3>&-
  if [[ ! "$body" =~ \"state\"[[:space:]]*:[[:space:]]*\"AVAILABLE\" ]]; then
    echo "model $name: no version AVAILABLE (${status:-no answer})"
    exit 1
  fi
  echo "model $name: AVAILABLE"
done
