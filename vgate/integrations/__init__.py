"""Integrations with data-processing engines; each needs its own extra (``vgate-cli[ray]``)."""
