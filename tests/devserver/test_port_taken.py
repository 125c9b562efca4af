"""A taken port fails the devserver cleanly and before any model loads (TF Serving's wording, exit 255)."""

import socket

from support import tfsk


def test_a_taken_port_fails_cleanly_before_loading_models(tmp_path):
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        (tmp_path / "m" / "1").mkdir(parents=True)  # never loaded: the port is checked first
        run = tfsk("serve", f"--port={port}", "--model_name=m", f"--model_base_path={tmp_path / 'm'}", timeout=120)
    assert run.returncode == 255, run.stdout + run.stderr
    assert run.stdout.startswith(f"Failed to start server. Error: UNAVAILABLE: could not listen on 127.0.0.1:{port}")
    assert "terminate called" not in run.stderr and "Traceback" not in run.stderr
    assert "Loading servable" not in run.stderr and "Successfully loaded" not in run.stderr
