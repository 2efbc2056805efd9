"""Domain adapters built on the sciflow core, imported as ``sciflow.domains.<name>``."""
