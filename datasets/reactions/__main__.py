"""``python -m sciflow.datasets.reactions build-dataset ...`` (same as ``sciflow ts build-dataset``)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
