"""sciflow: flow matching for the physical and chemical sciences.

The core lives here; domain adapters are ``sciflow.domains.*`` and data builders/loaders are
``sciflow.datasets.*``.
"""

__version__ = "0.1.0"
