"""serving_config: see the README; built in its own issue."""
