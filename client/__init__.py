"""client: see the README; built in its own issue."""
