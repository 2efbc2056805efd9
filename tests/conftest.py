"""Test-wide settings: one intra-op thread (small models run faster so on 2 shared cores), and the
tests folder on sys.path for the shared fixtures in gaussian_flow.py."""

import torch

torch.set_num_threads(1)
