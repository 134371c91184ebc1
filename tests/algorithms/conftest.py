"""Shared settings for the algorithm-layer tests: one torch thread, double precision goldens."""

import torch

torch.set_num_threads(1)
