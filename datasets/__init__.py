"""Dataset builders and loaders, imported as ``sciflow.datasets.<name>``."""
