"""Test-wide settings: one intra-op thread (small models run faster so on 2 shared cores), and the
tests folder on sys.path for shared fixtures such as gaussian_flow.py (tests are imported with
pytest's importlib mode, so files in different folders may share a name)."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
torch.set_num_threads(1)
