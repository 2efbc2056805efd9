"""Packaging glue: `domains/` and `datasets/` install as `sciflow.domains` and `sciflow.datasets`.

pyproject.toml holds the metadata; this file only maps the three source trees onto one import
package, which setuptools' declarative configuration cannot express for subpackages found at build
time. Never make `datasets` or `domains` a top-level import package: `datasets` would shadow the
Hugging Face package in users' environments.
"""

from setuptools import find_packages, setup

ROOTS = {"sciflow": "sciflow", "sciflow.domains": "domains", "sciflow.datasets": "datasets"}


def _mapped(prefix: str, root: str) -> list[str]:
    return [prefix] + [f"{prefix}.{name}" for name in find_packages(root)]


setup(
    packages=[pkg for prefix, root in ROOTS.items() for pkg in _mapped(prefix, root)],
    package_dir=ROOTS,
)
