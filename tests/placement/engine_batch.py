"""The fixed batch and loss that the sharded-engine tests (FSDP2, DeepSpeed) train on in every rank."""

from __future__ import annotations

import numpy as np
import torch


def make_batch(policy, batch: int):
    """Forward inputs of `batch` random 64 px observations, plus advantages and returns."""
    rng = np.random.default_rng(0)
    obs = {"images": {"main": rng.integers(0, 255, (batch, 64, 64, 3), dtype=np.uint8)},
           "proprio": np.zeros((batch, 8), np.float32), "instruction": ["pick up the cube", "push it"] * (batch // 2)}
    torch.manual_seed(1)
    inputs = policy.act(obs).forward_inputs
    return inputs, torch.linspace(-1.0, 1.0, batch), torch.linspace(0.0, 0.5, batch)


def loss_of(policy, inputs, adv, ret):
    """A policy-gradient term plus a value regression term, mean over the samples."""
    out = policy.evaluate(inputs)
    return -(out.logprobs.sum((1, 2)) * adv).mean() + 0.5 * ((out.values - ret) ** 2).mean()
