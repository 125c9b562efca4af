#!/bin/sh
# The exporter container's entrypoint. It starts as root only to hand the model folder to the host
# user who owns the mounted tfsk.toml (Docker creates a missing bind-mount folder root-owned, and a
# fresh clone has no demo-models/ yet), then runs `tfsk` as that user: every file it writes belongs
# to the user, whatever their uid, and nothing else runs as root.
set -eu
declaration="${TFSK_DECLARATION:-/app/tfsk.toml}"
models="${TFSK_MODELS:-/app/demo-models}"
if [ "$(id -u)" = 0 ]; then
  owner="$(stat -c %u:%g "$declaration")"
  chown "$owner" "$models"
  exec setpriv --reuid="${owner%:*}" --regid="${owner#*:}" --clear-groups -- tfsk "$@"
fi
exec tfsk "$@"
