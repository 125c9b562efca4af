"""devserver: see the README; built in its own issue."""
